"""Microsoft Responsible AI Toolbox (responsibleai 0.36) on UCI Adult: explainer + error analysis.

Runs inside its own virtual environment (benchmarks/.venvs/rai, created by `benchmarks.run`), never
inside aiaudit's.  Usage:  python rai_job.py CONFIG.json   ->  prints one line `RAI_RESULT {json}`.

CONFIG: {"data": "adult.csv.gz", "variants": ["default_sample", "full_split"], "threads": 2}
With "serve": true it trains once, prints `RAI_READY {json}`, then computes the variant named on
each stdin line and prints `RAI_RESULT {json}` for it (the harness interleaves these with aiaudit's
runs so both see the same machine load).

The model mirrors the aiaudit demo (XGBoost, 200 trees, depth 6, learning rate 0.1, hist, same
inputs: sex and race are not model inputs); categoricals are ordinal-encoded here because RAI's
surrogate explainer and error-analysis tree take numeric frames.

Variants:
- default_sample: the 5,000 test rows RAI uses by default (with `maximum_rows_for_test=5000` it
  keeps the first 5,000 rows of the test set, with only a warning).
- full_split: the whole 15,060-row test split with both limits lifted: the documented
  `maximum_rows_for_test` argument set to the row count, and the module constant
  `explainer_manager.MAXIMUM_ROWS_FOR_GLOBAL_EXPLANATIONS` (10,000) raised above it.
"""
from __future__ import annotations

import contextlib
import io
import json
import sys
import time
import warnings

import numpy as np
import pandas as pd

LABEL = "income"
EXCLUDE = ("sex", "race")
DEFAULT_ROWS = 5000


def _prepare(path: str) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    df = pd.read_csv(path)
    feats = [c for c in df.columns if c not in (LABEL, "split", *EXCLUDE)]
    cats = [c for c in feats if not pd.api.types.is_numeric_dtype(df[c])]
    train = df[df["split"] == "train"].reset_index(drop=True)
    test = df[df["split"] == "test"].reset_index(drop=True)
    for c in cats:  # ordinal codes from the training categories; unseen -> -1
        levels = sorted(train[c].astype(str).unique())
        mapping = {v: i for i, v in enumerate(levels)}
        train[c] = train[c].astype(str).map(mapping).fillna(-1).astype(int)
        test[c] = test[c].astype(str).map(mapping).fillna(-1).astype(int)
    return train[feats + [LABEL]], test[feats + [LABEL]], cats


def _model(train: pd.DataFrame, threads: int):
    import xgboost as xgb
    est = xgb.XGBClassifier(n_estimators=200, max_depth=6, learning_rate=0.1, tree_method="hist",
                            n_jobs=threads, random_state=0)
    est.fit(train.drop(columns=[LABEL]), train[LABEL])
    return est


def _variant(name: str, model, train: pd.DataFrame, test: pd.DataFrame, cats: list[str]) -> dict:
    import responsibleai.managers.explainer_manager as em
    from responsibleai import FeatureMetadata, RAIInsights

    if name == "default_sample":
        rows, limit = test.iloc[:DEFAULT_ROWS].reset_index(drop=True), DEFAULT_ROWS
        em.MAXIMUM_ROWS_FOR_GLOBAL_EXPLANATIONS = 10000
    else:
        rows, limit = test, len(test)
        em.MAXIMUM_ROWS_FOR_GLOBAL_EXPLANATIONS = len(test) + 1
    log = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(log):
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        rai = RAIInsights(model, train, rows, LABEL, "classification",
                          feature_metadata=FeatureMetadata(categorical_features=cats),
                          maximum_rows_for_test=limit)
        rai.explainer.add()
        rai.error_analysis.add()
        setup = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        rai.compute()
        compute, compute_cpu = time.perf_counter() - t0, time.process_time() - c0
    expl = rai.explainer.get()[0]
    importance = dict(zip(expl.get_ranked_global_names()[:5],
                          [float(v) for v in expl.get_ranked_global_values()[:5]]))
    tree = rai.error_analysis.get()[0].tree
    parents = {node.get("parentId") for node in tree}
    leaves = sum(1 for node in tree if node.get("id") not in parents)
    return {"rows": len(rows), "setup_seconds": setup, "compute_seconds": compute,
            "compute_cpu_seconds": compute_cpu,
            "explained_rows": int(np.asarray(expl.local_importance_values).shape[-2]),
            "top_features": importance, "error_tree_leaves": leaves,
            "explanation_method": getattr(expl, "method", "mimic")}


def main() -> None:
    cfg = json.loads(open(sys.argv[1]).read())
    threads = int(cfg.get("threads", 2))
    train, test, cats = _prepare(cfg["data"])
    t0 = time.perf_counter()
    model = _model(train, threads)
    train_s = time.perf_counter() - t0
    import responsibleai
    head = {"responsibleai": responsibleai.__version__, "train_seconds": train_s, "test_rows": len(test)}

    def one(name: str) -> dict:
        try:
            return _variant(name, model, train, test, cats)
        except Exception as e:  # report, do not hide: the harness records the reason
            return {"error": f"{type(e).__name__}: {e}"[:400]}

    if cfg.get("serve"):  # one variant per stdin line, so a caller can interleave its own timings
        print("RAI_READY " + json.dumps(head), flush=True)
        for line in sys.stdin:
            name = line.strip()
            if not name or name == "quit":
                break
            print("RAI_RESULT " + json.dumps(one(name)), flush=True)
        return
    variants = {name: one(name) for name in cfg.get("variants", ["default_sample", "full_split"])}
    print("RAI_RESULT " + json.dumps({**head, "variants": variants}), flush=True)


if __name__ == "__main__":
    main()
