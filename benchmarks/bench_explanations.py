"""Explanation throughput on UCI Adult (45,222 rows) with the demo XGBoost model (200 trees).

    python -m benchmarks.bench_explanations

- SHAP for every row through `interpret.shap_explain.ShapExplainer` (exact path-dependent
  TreeSHAP from the model's Shapley tables, `interpret.path_tables`, plus preparation and the
  additivity output) against XGBoost's own `pred_contribs` on the same rows, measured in the same run (best of `REPEATS`,
  alternating, so background load hits both alike). Target: ratio <= 1.3.
- LIME for 20 decisions x 5 seeds (the audit's settings, 2,000 samples each). Target: <= 60 s.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np
import pandas as pd

REPEATS = int(os.environ.get("BENCH_REPEATS", "2"))
SHAP_TARGET_RATIO = 1.3
LIME_BUDGET_SECONDS = 60.0


def _adult_model() -> tuple[Any, pd.DataFrame, list[Any]]:
    from audit.datasets import builtin_path, read_table
    from audit.demo import DEMO_MODELS, train
    from audit.model_io import infer_features
    demo = next(d for d in DEMO_MODELS if d.name == "adult-income-xgb")
    est, X_train, _ = train(demo)
    df = read_table(builtin_path(demo.dataset))
    X_all = df[list(X_train.columns)].reset_index(drop=True)
    return est, X_all, infer_features(X_train)


def run() -> dict[str, Any]:
    import xgboost as xgb

    from audit.model_io import categorise
    from interpret.encoding import TabularEncoder
    from interpret.lime_explain import explain_rows
    from interpret.models import ModelAdapter
    from interpret.shap_explain import ShapExplainer

    est, X_all, feats = _adult_model()
    features = [f.name for f in feats]
    prepare = lambda d: categorise(d[features], feats)  # noqa: E731  (what LoadedModel.prepare does)
    adapter = ModelAdapter(est, features, "binary", 1, prepare=prepare,
                           predict_proba=lambda d: est.predict_proba(prepare(d)),
                           categories={f.name: list(f.categories) for f in feats if f.kind == "categorical"})
    rng = np.random.default_rng(0)
    background = X_all.iloc[rng.choice(len(X_all), 300, replace=False)]
    t0 = time.perf_counter()
    explainer = ShapExplainer(adapter, background, feature_perturbation="tree_path_dependent")
    setup = time.perf_counter() - t0
    booster = est.get_booster()

    def native() -> np.ndarray:
        return booster.predict(xgb.DMatrix(prepare(X_all), enable_categorical=True), pred_contribs=True)

    explainer.explain(X_all.head(500))  # warm-up, both paths
    native_t, shap_t, result = [], [], None
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        contribs = native()
        native_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        result = explainer.explain(X_all)
        shap_t.append(time.perf_counter() - t0)
    same = float(np.abs(result.values - contribs[:, :-1]).max())

    encoder = TabularEncoder.fit([X_all], features, adapter.categories)
    bg_enc = encoder.encode(background)
    rows = encoder.encode(X_all.iloc[rng.choice(len(X_all), 20, replace=False)])
    t0 = time.perf_counter()
    lime = explain_rows(rows, lambda A: explainer.output(encoder.decode(A)), bg_enc, encoder,
                        seeds=[0, 1, 2, 3, 4], num_samples=2000)
    lime_s = time.perf_counter() - t0

    out = {
        "rows": len(X_all), "trees": int(est.n_estimators), "repeats": REPEATS,
        "cpu_count": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "explainer": explainer.provenance()["explainer"], "explainer_setup_seconds": setup,
        "shap_seconds": min(shap_t), "pred_contribs_seconds": min(native_t),
        "shap_time_ratio_vs_pred_contribs": min(shap_t) / min(native_t),
        "shap_rows_per_second": len(X_all) / min(shap_t),
        "shap_max_abs_diff_vs_pred_contribs": same,
        "additivity_max_error": float(result.additivity_error.max()),
        "lime_seconds_20x5": lime_s, "lime_num_samples": 2000,
        "lime_time_ratio_vs_budget": lime_s / LIME_BUDGET_SECONDS,
        "lime_calls": int(lime.weights.shape[0] * lime.weights.shape[1]),
    }
    return out


def main() -> None:
    out = run()
    print(json.dumps(out, indent=2))
    print(f"SHAP / pred_contribs time ratio: {out['shap_time_ratio_vs_pred_contribs']:.3f} "
          f"(target <= {SHAP_TARGET_RATIO}; {out['shap_seconds']:.1f} s vs {out['pred_contribs_seconds']:.1f} s "
          f"for {out['rows']:,} rows)")
    print(f"LIME 20 decisions x 5 seeds / 60 s budget: {out['lime_time_ratio_vs_budget']:.3f} "
          f"({out['lime_seconds_20x5']:.1f} s)")


if __name__ == "__main__":
    main()
