"""Runs inside benchmarks/.venvs/monitoring (Evidently and NannyML; never aiaudit's packages).

    python monitoring_job.py CONFIG.json     # prints one JSON line per round: seconds and the library's figures

drift: Evidently's data-drift preset on the given columns, with the tests aiaudit runs (two-sample KS for
numeric columns, chi-square for categorical ones), `Report.run(current, reference)` timed.
cbpe:  NannyML's CBPE (ROC AUC, binary), fitted on the reference and estimated on the analysis window as one
chunk; fit + estimate timed.
"""
from __future__ import annotations

import json
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

import pandas as pd  # noqa: E402


def drift(cfg: dict) -> dict:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset
    ref, cur = pd.read_parquet(cfg["reference"]), pd.read_parquet(cfg["current"])
    definition = DataDefinition(numerical_columns=cfg["numeric"], categorical_columns=cfg["categorical"])
    t0 = time.perf_counter()
    report = Report([DataDriftPreset(columns=cfg["numeric"] + cfg["categorical"], num_method="ks",
                                     cat_method="chisquare", threshold=0.05)])
    snapshot = report.run(Dataset.from_pandas(cur, data_definition=definition),
                          Dataset.from_pandas(ref, data_definition=definition))
    seconds = time.perf_counter() - t0
    scores = {}
    for m in snapshot.dict()["metrics"]:
        cfg_m = m.get("config") or {}
        column = cfg_m.get("column")
        if column is not None and isinstance(m.get("value"), (int, float)):
            scores[column] = float(m["value"])
    return {"seconds": seconds, "p_values": scores}


def cbpe(cfg: dict) -> dict:
    import nannyml as nml
    ref, cur = pd.read_parquet(cfg["reference"]), pd.read_parquet(cfg["current"])
    t0 = time.perf_counter()
    est = nml.CBPE(y_pred_proba="score", y_pred="pred", y_true="y", metrics=["roc_auc"],
                   problem_type="classification_binary", chunk_number=1)
    est.fit(ref)
    result = est.estimate(cur.drop(columns=["y"]))
    seconds = time.perf_counter() - t0
    frame = result.filter(period="analysis").to_df()
    value = float(frame[("roc_auc", "value")].iloc[0])
    return {"seconds": seconds, "estimated_auc": value}


def main() -> None:
    cfg = json.loads(open(sys.argv[1]).read())
    run = {"drift": drift, "cbpe": cbpe}[cfg["task"]]
    for _ in range(cfg.get("repeats", 1)):
        print(json.dumps(run(cfg)), flush=True)


if __name__ == "__main__":
    main()
