"""The monitoring check's statistics against the libraries made for them, on the same data in one run.

    python -m benchmarks.bench_monitoring_peers [--rows 1000000] [--repeats 3]

- drift: a 1M-row, 20-feature window (15 numeric, 5 categorical) against a 200k-row baseline. aiaudit: per
  feature PSI with its 500-replicate bootstrap interval, Jensen-Shannon distance and the test (KS with the
  missing share / chi-square of homogeneity) -- `metrics.drift.feature_drift`, what the check runs. Evidently:
  `DataDriftPreset(num_method="ks", cat_method="chisquare")` on the same columns. KS p-values must agree.
- cbpe: a 1M-row window of calibrated scores. aiaudit: `expected_auc` plus its 1,000-draw prediction interval
  on the check's 50,000-row cap (what the check runs). NannyML: `CBPE(metrics=["roc_auc"])` fit on the
  reference and estimate on the window as one chunk. Estimates must agree within 0.005 AUC.

The libraries run in their own venv (benchmarks/.venvs/monitoring, created on first use) as a subprocess;
each side's best of --repeats is compared. Results: benchmarks/results/monitoring_peers.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "benchmarks" / ".venvs" / "monitoring"
JOB = ROOT / "benchmarks" / "peers" / "monitoring_job.py"
REQUIREMENTS = ["evidently==0.7.23", "nannyml==0.13.1"]  # + aiaudit's pandas (Evidently 0.7 does not import on pandas 3)
OUT = ROOT / "benchmarks" / "results" / "monitoring_peers.json"
NUMERIC, CATEGORICAL = 15, 5


def peer_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "PYTHONNOUSERSITE": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "import evidently, nannyml"]
    with tempfile.TemporaryDirectory() as cwd:
        if python.exists() and subprocess.run(probe, capture_output=True, cwd=cwd, env=peer_env()).returncode == 0:
            return python
        print(f"creating {VENV.relative_to(ROOT)} ({' '.join(REQUIREMENTS)}); this takes minutes", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, capture_output=True)
        pandas = f"pandas=={metadata.version('pandas')}"
        proc = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS, pandas], capture_output=True,
                              text=True, timeout=2400, cwd=cwd, env=peer_env())
        if proc.returncode != 0:
            raise RuntimeError("pip install failed: " + proc.stderr.strip().splitlines()[-1][:300])
    return python


def frames(rows: int, base_rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Baseline and window with a mild shift in a third of the features (so both sides compute real p-values)."""
    rng = np.random.default_rng(seed)

    def draw(n: int, shift: float) -> pd.DataFrame:
        cols = {}
        for j in range(NUMERIC):
            s = shift if j % 3 == 0 else 0.0
            cols[f"x{j}"] = np.round(rng.gamma(2.0 + s, 10.0, n), 2) if j % 2 else rng.normal(s, 1.0, n)
        for j in range(CATEGORICAL):
            p = np.array([0.4, 0.3, 0.2, 0.1]) + (np.array([-0.05, 0, 0, 0.05]) if j == 0 else 0) * (shift > 0)
            cols[f"c{j}"] = rng.choice(np.array(["a", "b", "c", "d"], dtype=object), n, p=p / p.sum())
        return pd.DataFrame(cols)
    return draw(base_rows, 0.0), draw(rows, 0.05)


def scores(rows: int, seed: int) -> pd.DataFrame:
    """Calibrated scores: y ~ Bernoulli(score), so CBPE's assumption holds and both estimates target one value."""
    rng = np.random.default_rng(seed)
    s = 1 / (1 + np.exp(-rng.normal(-0.4, 1.6, rows)))
    return pd.DataFrame({"score": s, "pred": (s >= 0.5).astype(int), "y": (rng.random(rows) < s).astype(int)})


def ours_drift(base: pd.DataFrame, win: pd.DataFrame) -> dict:
    """What the check computes per input (timed); then, untimed, the bare KS p-value Evidently reports."""
    from audit.metrics.drift import feature_drift, ks_cells, ks_from_cells, ks_grid
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    out = {c: feature_drift(base[c], win[c], c.startswith("x"), rng) for c in base.columns}
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "p_values": {c: d.p for c, d in out.items()},
            "ks": {c: ks_from_cells(g := ks_grid(base[c]), ks_cells(g, win[c]))[1] for c in base.columns if c.startswith("x")}}


def ours_cbpe(win: pd.DataFrame) -> dict:
    from audit.checks.monitoring import MonitoringConfig
    from audit.metrics.estimation import expected_auc, realised_draws
    cfg, rng = MonitoringConfig(), np.random.default_rng(0)
    t0 = time.perf_counter()
    s = win["score"].to_numpy()
    estimate = expected_auc(s)
    capped = s if len(s) <= cfg.max_rows else s[np.sort(rng.choice(len(s), cfg.max_rows, replace=False))]
    aucs, _ = realised_draws(capped, rng, cfg.n_sim)
    lo, hi = np.quantile(aucs, [0.025, 0.975])
    return {"seconds": time.perf_counter() - t0, "estimated_auc": estimate, "interval": [float(lo), float(hi)]}


def peer(python: Path, cfg: dict, workdir: Path) -> list[dict]:
    path = workdir / f"{cfg['task']}.json"
    path.write_text(json.dumps(cfg))
    proc = subprocess.run([str(python), str(JOB), str(path)], capture_output=True, text=True, cwd=workdir,
                          env=peer_env(), timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{cfg['task']} peer failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1][:400])
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--base-rows", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    python = ensure_venv()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base, win = frames(args.rows, args.base_rows)
        base.to_parquet(work / "ref.parquet"), win.to_parquet(work / "cur.parquet")
        ref_s, cur_s = scores(args.base_rows, 1), scores(args.rows, 2)
        ref_s.to_parquet(work / "ref_s.parquet"), cur_s.to_parquet(work / "cur_s.parquet")
        numeric = [c for c in base.columns if c.startswith("x")]
        categorical = [c for c in base.columns if c.startswith("c")]
        ev = peer(python, {"task": "drift", "reference": str(work / "ref.parquet"), "current": str(work / "cur.parquet"),
                           "numeric": numeric, "categorical": categorical, "repeats": args.repeats}, work)
        nm = peer(python, {"task": "cbpe", "reference": str(work / "ref_s.parquet"),
                           "current": str(work / "cur_s.parquet"), "repeats": args.repeats}, work)
        ours_d = [ours_drift(base, win) for _ in range(args.repeats)]
        ours_c = [ours_cbpe(cur_s) for _ in range(args.repeats)]
    best = lambda runs: min(r["seconds"] for r in runs)  # noqa: E731
    ks_diff = max(abs(ours_d[0]["ks"][c] - ev[0]["p_values"][c]) for c in numeric)
    versions = {}
    for name in ("evidently", "nannyml"):
        try:
            versions[name] = subprocess.run([str(python), "-c", f"import importlib.metadata as m; print(m.version('{name}'))"],
                                            capture_output=True, text=True, env=peer_env()).stdout.strip()
        except OSError:
            versions[name] = None
    result = {
        "rows": args.rows, "baseline_rows": args.base_rows, "features": {"numeric": NUMERIC, "categorical": CATEGORICAL},
        "versions": {**versions, "aiaudit": metadata.version("aiaudit")},
        "drift": {"aiaudit_seconds": round(best(ours_d), 3), "evidently_seconds": round(best(ev), 3),
                  "speedup": round(best(ev) / best(ours_d), 2), "max_ks_p_difference": ks_diff,
                  "aiaudit_also_computes": "PSI with a 500-replicate bootstrap interval, Jensen-Shannon distance, and "
                                           "Fisher's test of the missing share (Bonferroni with KS)",
                  "categorical_tests": "aiaudit: chi-square test of homogeneity (both samples random); Evidently: "
                                       "chi-square goodness of fit against the reference shares taken as known",
                  "p_values": {"aiaudit": ours_d[0]["p_values"], "evidently": ev[0]["p_values"]}},
        "cbpe": {"aiaudit_seconds": round(best(ours_c), 3), "nannyml_seconds": round(best(nm), 3),
                 "speedup": round(best(nm) / best(ours_c), 2), "aiaudit_estimate": ours_c[0]["estimated_auc"],
                 "nannyml_estimate": nm[0]["estimated_auc"],
                 "difference": abs(ours_c[0]["estimated_auc"] - nm[0]["estimated_auc"]),
                 "aiaudit_interval": ours_c[0]["interval"], "realised_auc": _auc(cur_s)},
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k in ("drift", "cbpe")}, indent=1, default=str)[:2000])
    return result


def _auc(frame: pd.DataFrame) -> float:
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(frame["y"], frame["score"]))


if __name__ == "__main__":
    main()
