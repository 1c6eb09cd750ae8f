"""Calibration study of the monitoring check: false alarms on windows from the baseline's distribution, power
against planted shifts, and coverage of the label-free performance estimate (CBPE), and
coverage of the intervals of the rate changes, the realised AUC change and an input's PSI against population
truths (200,000-row draws; PSI on the bins the baseline sample fixes).

    python -m benchmarks.bench_monitoring [--quick]   # about 3 minutes (quick: 1 minute) on 2 cores

Baseline and window are independent draws of 2,000 rows from `benchmarks.monitoring_sim` (a calibrated
logistic model): null windows; a covariate shift (debt +0.3 sd); a fairness decay (group B's income -0.5 sd:
its selection rate falls, group A's does not); a concept shift (income's log-odds slope 1.2 -> 0.4: labels
follow the inputs differently, the inputs do not move); a label (prior) shift (the positive share 0.54 -> 0.40
with P(x | y) kept). Writes benchmarks/results/monitoring.json.
"""
from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from audit.metrics.inference import wilson
from audit.metrics.drift import binned, psi
from benchmarks.monitoring_sim import FEATURES, Shift, Simulation, draw, fit_model

OUT = Path(__file__).resolve().parent / "results" / "monitoring.json"
OUT_QUICK = OUT.with_name("monitoring-quick.json")
ROWS = 2000
SCENARIOS = {
    "null": (Shift(), None),
    "covariate_shift": (Shift(covariate=0.3), "monitoring.feature_psi"),
    "fairness_decay": (Shift(group_b_income=-0.5), "monitoring.selection_rate_change"),
    "concept_shift": (Shift(concept=-0.8), "monitoring.realised_auc_change"),
    "label_shift": (Shift(positive_share=0.40), "monitoring.label_rate_change"),
}


def _rate(hits: int, n: int) -> dict:
    lo, hi = wilson(np.array([hits]), np.array([n]), 1.959964)
    return {"rate": hits / n, "hits": hits, "windows": n, "ci": [round(float(lo[0]), 4), round(float(hi[0]), 4)]}


COVERED = ("monitoring.positive_rate_change", "monitoring.label_rate_change", "monitoring.realised_auc_change")
PSI_FEATURE = "debt"  # the input the covariate shift moves
TRUTH_ROWS = 200_000


def _population(model, shift: Shift, seed: int) -> dict:
    from sklearn.metrics import roc_auc_score
    pool = draw(TRUTH_ROWS, np.random.default_rng(seed), shift)
    score = model.predict_proba(pool[FEATURES])[:, 1]
    return {"pool": pool, "positive_rate": float((score >= 0.5).mean()), "label_rate": float(pool.y.mean()),
            "auc": float(roc_auc_score(pool.y, score))}


def _true_psi(base: pd.DataFrame, pop_b: dict, pop_w: dict) -> float:
    """PSI between the two populations on the bins this baseline sample fixes (the estimand of the check)."""
    shares = [binned(base[PSI_FEATURE], pop[PSI_FEATURE], True).window for pop in (pop_b["pool"], pop_w["pool"])]
    return float(psi(*shares)[0])


def study(windows: int, names: list[str]) -> dict:
    sim = Simulation(fit_model(), {"n_boot": 200})
    pop_b = _population(sim.estimator, Shift(), 1)
    out: dict = {}
    for name in names:
        shift, target = SCENARIOS[name]
        pop_w = pop_b if shift == Shift() else _population(sim.estimator, shift, 2)  # null: the truth is no change
        truth = {"monitoring.positive_rate_change": pop_w["positive_rate"] - pop_b["positive_rate"],
                 "monitoring.label_rate_change": pop_w["label_rate"] - pop_b["label_rate"],
                 "monitoring.realised_auc_change": pop_w["auc"] - pop_b["auc"]}
        t0 = time.perf_counter()
        alarms = detected = covered = estimated = 0
        hits = dict.fromkeys((*COVERED, "monitoring.feature_psi"), 0)
        for r in range(windows):
            rng = np.random.default_rng(10_000 + r)
            base, win = draw(ROWS, rng), draw(ROWS, rng, shift)
            labelled = sim.run(base, win, seed=r)
            bad = [f for f in labelled.findings if f.status.value != "pass"]
            alarms += bool(bad)
            detected += target is not None and any(f.metric == target for f in bad)
            found = {f.metric: f for f in labelled.findings if f.group is None}
            for metric in COVERED:
                lo, hi = found[metric].ci
                hits[metric] += lo <= truth[metric] <= hi
            lo, hi = next(f.ci for f in labelled.findings if f.metric == "monitoring.feature_psi" and f.group == PSI_FEATURE)
            hits["monitoring.feature_psi"] += lo <= _true_psi(base, pop_b, pop_w) <= hi
            blind = sim.run(base, win, seed=r, labels=False)  # the same window before its labels arrive
            est = next(f for f in blind.findings if f.metric == "monitoring.estimated_auc")
            actual = found["monitoring.realised_auc_change"].data["window_auc"]
            estimated += 1
            covered += est.ci[0] <= actual <= est.ci[1]
        out[name] = {"any_alarm": _rate(alarms, windows), "estimated_auc_coverage": _rate(covered, estimated),
                     "interval_coverage": {k: _rate(v, windows) for k, v in hits.items()},
                     "truth": {**truth, "population_auc": pop_w["auc"]},
                     "seconds_per_window": round((time.perf_counter() - t0) / windows / 2, 3)}
        if target:
            out[name]["power"] = {"finding": target, **_rate(detected, windows)}
        print(name, json.dumps(out[name]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 windows per scenario instead of 200")
    parser.add_argument("--only", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS),
                        help="run these scenarios and keep the others' stored results")
    args = parser.parse_args()
    windows = 50 if args.quick else 200
    out = OUT_QUICK if args.quick else OUT
    kept = json.loads(out.read_text())["scenarios"] if out.is_file() and args.only != list(SCENARIOS) else {}
    write({**kept, **study(windows, args.only)}, windows, args.quick)
    print(f"wrote {out}")


def write(scenarios: dict, windows: int, quick: bool) -> dict:
    results = {"generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "rows": ROWS,
               "windows_per_scenario": windows, "alpha": 0.05,
               "scenarios": {k: scenarios[k] for k in SCENARIOS if k in scenarios}}
    out = OUT_QUICK if quick else OUT
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    return {**results, "file": str(out.relative_to(out.parents[2]))}


if __name__ == "__main__":
    main()
