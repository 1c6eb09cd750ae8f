"""Weak-slice discovery and perturbation robustness on UCI Adult's test split (15,060 rows).

    python -m benchmarks.bench_robustness

- The `slices` and `robustness` checks end to end (evidence files and plots included) with the
  default policy pack, on the demo XGBoost model (200 trees).  Target: the two together plus the
  model's predictions < 10 s on 2 cores.  Also timed: perturbing all 15,060 rows instead of the
  default 2,000-row sample.
- Giskard 2.x `scan` (its performance-bias and robustness detectors: slices and perturbations) on
  the same model file and rows, in its own virtual environment (created here on first use:
  `python -m venv /tmp/giskard-venv && pip install "giskard<3"`, plus the same xgboost to load the
  model).  Reported as giskard_seconds / aiaudit_seconds, or null with the reason it could not run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

TARGET_SECONDS = 10.0
GISKARD_VENV = Path(os.environ.get("GISKARD_VENV", "/tmp/giskard-venv"))
GISKARD_TIMEOUT = int(os.environ.get("GISKARD_TIMEOUT", "1800"))
ROOT = Path(__file__).resolve().parent.parent

GISKARD_SCRIPT = r'''
import json, sys, time
import pandas as pd, xgboost as xgb, giskard
cfg = json.loads(open(sys.argv[1]).read())
df = pd.read_csv(cfg["data"])
features, cats = cfg["features"], cfg["categories"]
clf = xgb.XGBClassifier()
clf.load_model(cfg["model"])
def predict(frame):
    X = frame[features].copy()
    for c, levels in cats.items():
        X[c] = pd.Categorical(X[c].astype(str), categories=levels)
    return clf.predict_proba(X)
model = giskard.Model(model=predict, model_type="classification", classification_labels=[0, 1],
                      feature_names=features, name="adult-income-xgb")
dataset = giskard.Dataset(df[features + [cfg["label"]]], target=cfg["label"], cat_columns=list(cats))
t0 = time.perf_counter()
report = giskard.scan(model, dataset, only=["performance", "robustness"], verbose=False, raise_exceptions=True)
seconds = time.perf_counter() - t0
issues = report.issues if hasattr(report, "issues") else []
print("GISKARD_RESULT " + json.dumps({"seconds": seconds, "issues": len(issues), "giskard": giskard.__version__,
      "groups": sorted({str(getattr(getattr(i, "group", None), "name", "?")) for i in issues})}))
'''


def _context(tmp: Path):
    """An AuditContext over Adult's test split with the demo model saved and loaded as an audit would."""
    from audit.checks.base import AuditContext, AuditData
    from audit.datasets import builtin_path, read_table
    from audit.demo import DEMO_MODELS, train
    from audit.model_io import load_model_dir, save_model
    from audit.policy import load_policy
    from audit.spec import load_spec

    demo = next(d for d in DEMO_MODELS if d.name == "adult-income-xgb")
    est, X_train, lineage = train(demo)
    meta = save_model(est, X_train, tmp / "model", lineage)
    model = load_model_dir(tmp / "model", meta.sha256)
    df = read_table(builtin_path("adult"))
    test = df[df["split"] == "test"].reset_index(drop=True)
    spec = load_spec(ROOT / "examples" / "adult" / "audit.yaml")
    policy = load_policy(spec.spec.policy, Path(spec.base_dir))
    data = AuditData(frame=test, label="income", protected=list(spec.spec.dataset.protected))
    (tmp / "audit" / "evidence").mkdir(parents=True)
    ctx = AuditContext(spec=spec, policy=policy, model=model, data=data, evidence_dir=tmp / "audit" / "evidence",
                       seed=0, domain=spec.spec.domain)
    return ctx, tmp / "model" / meta.file, test


def _aiaudit(ctx) -> dict[str, Any]:
    from audit.checks.robustness import CHECK as ROBUSTNESS
    from audit.checks.slices import CHECK as SLICES

    t0 = time.perf_counter()
    _ = ctx.predictions
    t_pred = time.perf_counter() - t0
    cfg_s, cfg_r = ctx.settings(SLICES), ctx.settings(ROBUSTNESS)
    t0 = time.perf_counter()
    slices = SLICES.run(ctx, cfg_s)
    t_slices = time.perf_counter() - t0
    t0 = time.perf_counter()
    robust = ROBUSTNESS.run(ctx, cfg_r)
    t_robust = time.perf_counter() - t0
    full_cfg = cfg_r.model_copy(update={"sample_size": len(ctx.data.frame)})
    t0 = time.perf_counter()
    full = ROBUSTNESS.run(ctx, full_cfg)
    t_full = time.perf_counter() - t0
    total = t_pred + t_slices + t_robust
    return {
        "rows": len(ctx.data.frame), "predict_seconds": round(t_pred, 3), "slices_seconds": round(t_slices, 3),
        "robustness_seconds": round(t_robust, 3), "total_seconds": round(total, 3),
        "target_seconds": TARGET_SECONDS, "within_target": total < TARGET_SECONDS,
        "robustness_all_rows_seconds": round(t_full, 3),
        "slices": {k: slices.metrics[k] for k in ("slices.tested", "slices.significant", "slices.count")},
        "robustness": {k: robust.metrics.get(k) for k in ("robustness.flip_rate", "robustness.missing.flip_rate",
                                                           "robustness.evasion.success_rate")},
        "robustness_all_rows_flip_rate": full.metrics.get("robustness.flip_rate"),
    }


def _ensure_giskard_venv() -> Path:
    python = GISKARD_VENV / "bin" / "python"
    probe = [str(python), "-c", "import giskard, xgboost"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(GISKARD_VENV)], check=True, capture_output=True, timeout=300)
    xgb = metadata.version("xgboost")
    proc = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "giskard<3", f"xgboost=={xgb}"],
                          capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        raise RuntimeError("pip install failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1][:300])
    return python


def _giskard(model_file: Path, test, features: list[str], categories: dict[str, list], tmp: Path) -> dict[str, Any]:
    try:
        python = _ensure_giskard_venv()
    except Exception as e:  # no network, no pip, no compatible wheel
        return {"seconds": None, "reason": f"giskard environment unavailable: {type(e).__name__}: {e}"[:400]}
    data = tmp / "adult_test.csv"
    test[features + ["income"]].to_csv(data, index=False)
    script = tmp / "giskard_scan.py"
    script.write_text(GISKARD_SCRIPT)
    cfg = tmp / "giskard.json"
    cfg.write_text(json.dumps({"data": str(data), "model": str(model_file), "features": features,
                               "categories": categories, "label": "income"}))
    env = {**os.environ, "GSK_DISABLE_ANALYTICS": "True", "OMP_NUM_THREADS": "2"}
    try:
        proc = subprocess.run([str(python), str(script), str(cfg)], capture_output=True, text=True,
                              timeout=GISKARD_TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        return {"seconds": None, "reason": f"giskard scan exceeded {GISKARD_TIMEOUT} s"}
    line = next((l for l in proc.stdout.splitlines() if l.startswith("GISKARD_RESULT ")), None)
    if proc.returncode != 0 or line is None:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"seconds": None, "reason": f"giskard scan failed: {tail[:300]}"}
    return json.loads(line.removeprefix("GISKARD_RESULT "))


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-robustness-") as d:
        tmp = Path(d)
        ctx, model_file, test = _context(tmp)
        ours = _aiaudit(ctx)
        features = ctx.model.feature_names
        categories = {f.name: list(f.categories) for f in ctx.model.meta.features if f.kind == "categorical"}
        gk = _giskard(model_file, test, features, categories, tmp)
    ratio = round(gk["seconds"] / ours["total_seconds"], 2) if gk.get("seconds") else None
    return {"benchmark": "robustness", "dataset": "adult test split", "cpu_count": os.cpu_count(), "aiaudit": ours,
            "giskard": gk, "giskard_over_aiaudit": ratio,
            "giskard_scope": "scan(only=['performance', 'robustness']): performance-bias slices and perturbation detectors"}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
