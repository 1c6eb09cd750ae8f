"""aiaudit benchmark harness: every figure measured side by side in one run on this machine.

    python -m benchmarks.run            # everything (make bench); writes benchmarks/results/latest.json
    python -m benchmarks.run --quick    # no 1M/10M scaling points, no SAE; writes benchmarks/results/quick.json

Each part runs in its own subprocess (clean memory, its own time limit) and a part that is missing,
fails or times out is recorded as null with the reason; the harness itself does not fail.

Parts
- fairness      benchmarks.bench_fairness: the fairness check's score-based intervals and family-wise
                tests vs Fairlearn's row bootstrap at 1,000 replicates.
- calibration   benchmarks.bench_calibration: coverage of the fairness and performance intervals and
                the false-alarm rate of the fairness verdicts on synthetic data with known truth
                (200 redraws per scenario, --quick: 50); the full tables go to
                benchmarks/results/calibration.json (--quick: calibration-quick.json).
- monitoring    benchmarks.bench_monitoring: false alarms of the monitoring check on windows from the
                baseline's distribution, power against planted covariate, label, concept and fairness
                shifts, coverage of the label-free AUC estimate (200 windows per scenario, --quick: 50);
                the full table goes to benchmarks/results/monitoring.json.
- monitoring_peers  benchmarks.bench_monitoring_peers: the monitoring check's drift statistics on a 1M-row,
                20-feature window vs Evidently's data-drift preset with the same tests, and its label-free AUC
                estimate vs NannyML's CBPE (own venv benchmarks/.venvs/monitoring); --quick: 200k rows.
- monitoring_scale  benchmarks.bench_monitoring_scale: a 10M-row window through `aiaudit monitor --stream`,
                local and Dask: seconds, peak memory of the process tree, identical findings (--quick: 1M).
- ledger        benchmarks.bench_ledger: ledger appends vs a plain SQLite insert of the same rows, and verify of a
                1M-entry ledger (--quick: 100k).
- explanations  benchmarks.bench_explanations: SHAP vs XGBoost pred_contribs; LIME 20 x 5.
- robustness    benchmarks.bench_robustness: slices + robustness vs a Giskard 2.x scan (own venv).
- rai           Microsoft Responsible AI Toolbox (responsibleai 0.36, own venv under
                benchmarks/.venvs/rai): explainer + error analysis on Adult, compute() timed,
                alternating with aiaudit's like-for-like on the same rows (the `explanations`
                check's global SHAP + the `slices` check, through engine.run), one untimed warm-up
                round on both sides, then the best of --repeats;
                audit_speedup_vs_rai = RAI seconds / aiaudit seconds on RAI's default 5,000 rows.
- full_audit    the default Adult audit (examples/adult/audit.yaml: every check, risk
                classification, a model-card export) against the irreducible library work it calls
                (predictions + native TreeSHAP + LIME's own explain_instance for the same rows);
                warm-up round, then the best of --repeats.
- scale         benchmarks.bench_scale: rows -> seconds, peak memory (local and Dask).
- sae           benchmarks.bench_sae (slow; only with --sae).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
ADULT = ROOT / "data" / "adult.csv.gz"
ADULT_SPEC = ROOT / "examples" / "adult" / "audit.yaml"
RAI_DEFAULT_ROWS = 5000  # RAIInsights(maximum_rows_for_test=5000): it keeps the first 5,000 test rows
POLICY_SAMPLE = 2000     # the default policy's explanations.sample_size
LIBRARIES = ("aiaudit", "numpy", "pandas", "scikit-learn", "xgboost", "lightgbm", "shap", "lime", "fairlearn",
             "dask", "distributed", "pyarrow", "mlflow", "torch")
TARGETS = {  # metric -> (comparison, bound, statement)
    "audit_speedup_vs_rai": (">=", 2.0, "like-for-like at least 2x faster than the Responsible AI Toolbox"),
    "audit_speedup_vs_giskard": (">=", 2.0, "like-for-like at least 2x faster than Giskard's scan"),
    "audit_overhead_ratio": ("<=", 1.5, "full default audit at most 1.5x the irreducible library work"),
    "fairness_ci_speedup_vs_fairlearn": (">=", 1000.0, "fairness CIs at least 1,000x faster than Fairlearn's bootstrap"),
    "calibration_min_fairness_coverage": (">=", 0.93, ("every kind of fairness interval covers its truth in at least 93% "
                                                       "of redraws in every scenario (pooled over groups and attribute sets)")),
    "calibration_max_false_alarm": ("<=", 0.05, "on fair data, any fairness warn/fail in at most 5% of redraws"),
    "monitoring_null_alarm_rate": ("<=", 0.05, "windows from the baseline's distribution raise any alarm in at most 5%"),
    "monitoring_min_power": (">=", 0.9, "every planted shift is detected by its finding in at least 90% of windows"),
    "drift_speedup_vs_evidently": (">=", 5.0, "1M-row, 20-feature drift report at least 5x faster than Evidently's "
                                              "data-drift preset with the same tests"),
    "cbpe_speedup_vs_nannyml": (">=", 3.0, "label-free AUC estimate on 1M rows at least 3x faster than NannyML's CBPE"),
    "cbpe_difference_vs_nannyml": ("<=", 0.005, "the two label-free AUC estimates within 0.005"),
    "monitoring_10m_peak_mb": ("<=", 2048.0, "a 10M-row monitoring window streams within 2 GB peak resident memory"),
    "monitoring_10m_backends_identical": (">=", 1.0, "the 10M-row window gives identical findings locally and on Dask"),
    "ledger_append_overhead": ("<=", 2.0, "hash-chained ledger appends at most 2x a plain SQLite insert of the same rows"),
    "ledger_verify_1m_seconds": ("<=", 10.0, "verify a 1M-entry ledger in at most 10 s"),
    "shap_time_ratio_vs_pred_contribs": ("<=", 1.3, "SHAP within 1.3x of XGBoost pred_contribs"),
    "scaling_10m_peak_mb": ("<=", 2048.0, "10M-row audit within 2 GB peak resident memory"),
}
TIMEOUTS = {"fairness": 1800, "calibration": 3600, "monitoring": 3600, "monitoring_peers": 3600, "monitoring_scale": 3600, "ledger": 1800, "explanations": 1800, "robustness": 4800, "rai": 7200,
            "full_audit": 2400, "scale": 5400, "sae": 5400, "setup": 900}
ORDER = ["setup", "fairness", "calibration", "monitoring", "monitoring_peers", "monitoring_scale", "ledger", "explanations", "robustness", "rai", "full_audit", "scale", "sae"]


# -- machine ---------------------------------------------------------------------------------

def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _commit() -> str | None:
    try:
        proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() or None


def machine() -> dict[str, Any]:
    return {"cpu_model": _cpu_model(), "aiaudit_commit": _commit(), "cores": os.cpu_count(),
            "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "memory_gb": _memory_gb(), "os": platform.platform(), "python": platform.python_version(),
            "libraries": {lib: _version(lib) for lib in LIBRARIES}}


def _load() -> float:
    return round(os.getloadavg()[0], 2)


# -- part: setup (a fresh AIAUDIT_HOME with the demo models) ----------------------------------

def part_setup(opts: argparse.Namespace) -> dict[str, Any]:
    from audit.config import Settings
    from audit.demo import register_demo_models
    from audit.registry import Registry
    t0 = time.perf_counter()
    uris = register_demo_models(Registry(Settings.from_env()), progress=lambda m: print(f"setup: {m}", flush=True))
    return {"home": os.environ["AIAUDIT_HOME"], "models": uris, "seconds": round(time.perf_counter() - t0, 1)}


# -- parts owned by other modules --------------------------------------------------------------

def part_fairness(opts: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.bench_fairness import run
    return run()


def part_calibration(opts: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.bench_calibration import compact, run, write
    out = run(50 if opts.quick else 200, truth_rows=200_000 if opts.quick else 2_000_000)
    path = write(out, quick=opts.quick)
    return {**compact(out), "file": str(path.relative_to(ROOT))}


def part_monitoring(opts: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.bench_monitoring import SCENARIOS, study, write
    return write(study(50 if opts.quick else 200, list(SCENARIOS)), 50 if opts.quick else 200, quick=opts.quick)


def part_monitoring_peers(opts: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.bench_monitoring_peers import main
    quick = ["--rows", "200000", "--repeats", "1", "--out", str(RESULTS / "monitoring_peers-quick.json")]
    return main(quick if opts.quick else [])


def part_monitoring_scale(opts: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.bench_monitoring_scale import main
    return main(["--rows", "1000000", "--out", str(RESULTS / "monitoring_scale-quick.json")] if opts.quick else [])


def part_ledger(opts: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.bench_ledger import main
    return main(["--verify-entries", "100000", "--out", str(RESULTS / "ledger-quick.json")] if opts.quick else [])


def part_explanations(opts: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.bench_explanations import run
    return run()


def part_robustness(opts: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.bench_robustness import run
    return run()


def part_scale(opts: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.bench_scale import run
    return run(opts.rows, opts.dask_max, home=Path(os.environ["AIAUDIT_HOME"]))


def part_sae(opts: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.bench_sae import run
    return run()


# -- aiaudit audits: shared helpers ----------------------------------------------------------------

def _warm_imports() -> None:
    """Import the libraries the checks load lazily, so a process's one-off import cost is not
    charged to whichever audit runs first (the peers are imported before they are timed, too)."""
    import matplotlib
    matplotlib.use("Agg")
    import lime.lime_tabular  # noqa: F401
    import matplotlib.pyplot  # noqa: F401
    import shap  # noqa: F401

    import audit.documents  # noqa: F401
    from audit.checks import available_checks
    available_checks()


def _write_yaml(path: Path, data: dict[str, Any]) -> Path:
    import yaml
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _spec(path: Path, dataset: Path, policy: Path, checks: list[str] | None, card: Path | None) -> Path:
    spec: dict[str, Any] = {
        "name": "bench-adult", "model": "models:/adult-income-xgb@candidate",
        "dataset": {"path": str(dataset), "label": "income", "positive_label": 1, "protected": ["sex", "race"],
                    "split_column": "split", "audit_split": "test", "train_split": "train"},
        "policy": str(policy), "domain": "employment", "seed": 0}
    if card is not None:
        spec["system_card"] = str(card)
    if checks:
        spec["checks"] = checks
    return _write_yaml(path, spec)


def like_for_like_policy(path: Path, explained_rows: int) -> Path:
    """The default pack with the explanation check reduced to what RAI's explainer computes: a
    global explanation of `explained_rows` rows, local/LIME/quality parts at their minimum, no plots."""
    import yaml

    from audit.policy import bundled_policies
    pack = yaml.safe_load(bundled_policies()["eu-ai-act-default"].read_text())
    pack["name"] = "bench-like-for-like"
    pack["checks"]["explanations"] = {
        **pack["checks"].get("explanations", {}),
        "sample_size": explained_rows, "n_local": 1, "lime_seeds": 5, "lime_num_samples": 100,
        "deletion_rows": 10, "deletion_background_draws": 1, "deletion_random_orders": 1,
        "sensitivity_sizes": [], "sensitivity_rows": 10, "plots": False, "dependence_plots": 0, "languages": ["en"]}
    return _write_yaml(path, pack)


class _Timeline:
    """Progress messages with timestamps: a zero-cost profile of where an audit's time goes."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str]] = []

    def __call__(self, msg: str) -> None:
        self.events.append((time.perf_counter(), msg))

    def phases(self, end: float, publish: float = 0.0) -> list[dict[str, Any]]:
        """Seconds per progress message; `publish` (MLflow, audit.json, ledger after the last check,
        which sends no message) is split off the last phase."""
        marks = self.events + [(end - publish, "end")]
        out: dict[str, float] = {}
        for (t, msg), (t_next, _) in zip(marks, marks[1:]):
            key = msg.split(" rows ")[0] if msg.startswith("explanations: SHAP") else msg
            out[key] = out.get(key, 0.0) + t_next - t
        if publish > 0:
            out["engine: publish (MLflow run, audit.json, ledger)"] = publish
        return [{"phase": k, "seconds": round(v, 3)} for k, v in sorted(out.items(), key=lambda kv: -kv[1])]


def _timed_audit(engine, spec: Path) -> dict[str, Any]:
    prepared = engine.prepare(spec)
    timeline = _Timeline()
    engine.progress = timeline
    t0, c0 = time.perf_counter(), time.process_time()
    result = engine.run(prepared)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    engine.progress = lambda msg: None
    checks = {k: round(v.seconds, 3) for k, v in result.checks.items() if v.status != "skipped"}
    errors = {k: v.error for k, v in result.checks.items() if v.status == "error"}
    return {"rows": len(prepared.data.frame), "seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
            "check_seconds": checks, "publish_seconds": round(wall - sum(checks.values()), 3),
            "errors": errors, "status": result.status, "findings": len(result.findings), "audit_id": result.audit_id,
            "profile": timeline.phases(t0 + wall, max(wall - sum(checks.values()), 0.0))[:10], "_result": result}


# -- part: Responsible AI Toolbox vs aiaudit's like-for-like, alternating ----------------------------

def part_rai(opts: argparse.Namespace) -> dict[str, Any]:
    """RAI's compute() and aiaudit's engine.run on the same rows, alternating: one untimed warm-up
    round (first calls in a process pay one-off costs on both sides), then the best of `repeats`."""
    import pandas as pd

    from audit.engine import AuditEngine
    from benchmarks.peers.rai import RaiServer, ensure_venv
    try:
        python = ensure_venv(lambda m: print(m, flush=True))
    except Exception as e:  # no network, no wheel for this Python, ...
        raise RuntimeError(f"Responsible AI Toolbox environment unavailable: {type(e).__name__}: {e}"[:500]) from e
    _warm_imports()
    engine = AuditEngine()
    _ = engine.registry  # MLflow's import and store set-up: once per process, not per audit
    with tempfile.TemporaryDirectory(prefix="bench-rai-") as d:
        tmp = Path(d)
        df = pd.read_csv(ADULT)
        test = df[df["split"] == "test"]
        # RAI keeps the first 5,000 test rows by default: aiaudit audits exactly those rows too
        pd.concat([df[df["split"] == "train"], test.iloc[:RAI_DEFAULT_ROWS]]).to_csv(tmp / "adult_5000.csv", index=False)
        variants = {"default_sample": (tmp / "adult_5000.csv", RAI_DEFAULT_ROWS), "full_split": (ADULT, len(test))}
        # per variant two aiaudit configurations: every row explained (as RAI does), and the policy's
        # default plan (a stratified sample with bootstrap CIs on the ranking)
        specs = {(name, plan): _spec(tmp / f"spec_{name}_{plan}.yaml", data,
                                     like_for_like_policy(tmp / f"policy_{name}_{plan}.yaml", explained),
                                     ["explanations", "slices"], None)
                 for name, (data, rows) in variants.items()
                 for plan, explained in (("every_row", rows), ("policy_sample", POLICY_SAMPLE))}
        print("rai: training the peer's model in its venv", flush=True)
        try:
            server = RaiServer(python, ADULT, tmp, timeout=1200)
        except Exception as e:
            raise RuntimeError(f"responsibleai did not start: {type(e).__name__}: {e}"[:500]) from e
        sides_all = ("rai", "every_row", "policy_sample")
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {v: {side: [] for side in sides_all} for v in variants}
        cold: dict[str, dict[str, float | None]] = {}
        try:
            for rep in range(-1, opts.repeats):  # -1: the warm-up round
                for name in variants:
                    for side in (sides_all if rep % 2 == 0 else sides_all[::-1]):
                        if side == "rai":
                            r = server.compute(name, timeout=1200)
                            msg = r.get("error") or f"compute() {r['compute_seconds']:.1f} s"
                        else:
                            r = _like_for_like_run(engine, specs[(name, side)])
                            msg = f"engine.run {r['seconds']:.1f} s (checks {r['check_seconds']})"
                        if rep < 0:
                            cold.setdefault(name, {})[side] = r.get("compute_seconds", r.get("seconds"))
                        else:
                            runs[name][side].append(r)
                        print(f"rai: {name} {'warm-up' if rep < 0 else f'#{rep + 1}'} {side}: {msg}", flush=True)
        finally:
            server.close()
    out = {name: {**_pair(runs[name]["rai"], runs[name]["every_row"]),
                  "policy_sample": _pair(runs[name]["rai"], runs[name]["policy_sample"])} for name in variants}
    for name, c in cold.items():
        out[name]["warm_up"] = {"rai_compute_seconds": c.get("rai"), "aiaudit_seconds": c.get("every_row"),
                                "aiaudit_policy_sample_seconds": c.get("policy_sample")}
    return {"responsibleai": server.head.get("responsibleai"), "peer_train_seconds": server.head.get("train_seconds"),
            "repeats": opts.repeats, "checks": ["explanations", "slices"], "variants": out}


def _without_details(v: dict[str, Any]) -> dict[str, Any]:
    return {k: (_without_details(x) if isinstance(x, dict) else x) for k, x in v.items() if k not in ("rai", "aiaudit")}


def _best(samples: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    ok = [s for s in samples if s.get(key) is not None]
    return min(ok, key=lambda s: s[key]) if ok else None


def _pair(rai: list[dict[str, Any]], ours: list[dict[str, Any]]) -> dict[str, Any]:
    r, a = _best(rai, "compute_seconds"), _best(ours, "seconds")
    r_cpu = min((s["compute_cpu_seconds"] for s in rai if s.get("compute_cpu_seconds")), default=None)
    a_cpu = min((s["cpu_seconds"] for s in ours if s.get("cpu_seconds")), default=None)
    out: dict[str, Any] = {
        "rows": (a or {}).get("rows") or (r or {}).get("rows"),
        "rai_compute_seconds": round(r["compute_seconds"], 3) if r else None,
        "rai_compute_cpu_seconds": round(r_cpu, 3) if r_cpu else None,
        "aiaudit_seconds": a["seconds"] if a else None, "aiaudit_cpu_seconds": a_cpu,
        "aiaudit_check_seconds": round(sum(a["check_seconds"].values()), 3) if a else None,
        "speedup": _ratio(r["compute_seconds"], a["seconds"]) if r and a else None,
        "cpu_speedup": _ratio(r_cpu, a_cpu),
        "rai_samples": [round(s["compute_seconds"], 3) for s in rai if s.get("compute_seconds") is not None],
        "aiaudit_samples": [s["seconds"] for s in ours],
        "rai": {k: v for k, v in (r or {}).items() if k in ("explained_rows", "top_features", "error_tree_leaves",
                                                           "explanation_method", "setup_seconds")},
        "aiaudit": {k: v for k, v in (a or {}).items() if k not in ("seconds", "cpu_seconds", "rows")}}
    errors = [s["error"] for s in rai if s.get("error")]
    if errors:
        out["rai_error"] = errors[0]
    return out


def _like_for_like_run(engine, spec: Path) -> dict[str, Any]:
    r = _timed_audit(engine, spec)
    res = r.pop("_result")
    details = res.checks["explanations"].details or {}
    r["explained_rows"] = _explained_rows(engine, r["audit_id"])
    r["explainer"] = (details.get("explainer") or {}).get("explainer")
    r["weak_slices"] = res.metrics.get("slices.count")
    r["slice_tests"] = res.metrics.get("slices.tested")
    return r

def _explained_rows(engine, audit_id: str) -> dict[str, int] | None:
    path = engine.audit_dir(audit_id) / "evidence" / "explanations" / "sampling_plan.json"
    if not path.exists():
        return None
    plan = json.loads(path.read_text())
    return {"global": len(plan.get("explained_rows") or []), "local": len(plan.get("local_decisions") or [])}


# -- part: full default audit vs irreducible work -------------------------------------------------

class _PredictionLog:
    """Row counts of every model prediction an audit makes outside LIME (LIME's own are part of the
    irreducible LIME run): the audited rows, perturbed rows, masked rows for deletion curves, ...
    Recorded by wrapping XGBoost's two prediction entry points while the audit runs."""

    def __init__(self):
        self.batches: list[int] = []

    @staticmethod
    def _in_lime() -> bool:
        f = sys._getframe(2)
        while f is not None:
            if f.f_globals.get("__name__", "").startswith("lime."):
                return True
            f = f.f_back
        return False

    def __enter__(self) -> "_PredictionLog":
        import xgboost as xgb
        self._saved = xgb.Booster.inplace_predict, xgb.Booster.predict
        inplace, predict = self._saved
        log = self

        def logged_inplace(booster, data, *a, **k):
            if not log._in_lime():
                log.batches.append(int(data.shape[0]))
            return inplace(booster, data, *a, **k)

        def logged_predict(booster, data, *a, **k):
            if not (k.get("pred_contribs") or k.get("pred_interactions") or log._in_lime()):
                log.batches.append(int(data.num_row()))
            return predict(booster, data, *a, **k)

        xgb.Booster.inplace_predict, xgb.Booster.predict = logged_inplace, logged_predict
        return self

    def __exit__(self, *exc: object) -> None:
        import xgboost as xgb
        xgb.Booster.inplace_predict, xgb.Booster.predict = self._saved


def _irreducible(model, frame, explained, local_rows, seeds: int, num_samples: int, background,
                 prediction_batches: list[int]) -> dict[str, Any]:
    """The library work the audit cannot avoid: every model prediction it makes outside LIME, replayed
    batch by batch (same row counts, audited rows) through the model's own predict_proba; XGBoost's
    native TreeSHAP (pred_contribs) on the explained rows; and LIME's own explain_instance for the
    same decisions x seeds x samples (ordinal codes for categoricals, as LIME needs numbers)."""
    import numpy as np
    import pandas as pd
    import xgboost as xgb
    from lime.lime_tabular import LimeTabularExplainer

    feats = model.meta.features
    names = [f.name for f in feats]
    est = model.estimator
    batches = [frame.iloc[np.arange(b) % len(frame)] for b in prediction_batches]
    c0 = time.process_time()
    t0 = time.perf_counter()
    for rows in batches:
        est.predict_proba(model.prepare(rows))
    predict_s = time.perf_counter() - t0

    booster = est.get_booster()
    t0 = time.perf_counter()
    booster.predict(xgb.DMatrix(model.prepare(explained), enable_categorical=True), pred_contribs=True)
    shap_s = time.perf_counter() - t0

    cats = {f.name: list(f.categories or []) for f in feats if f.kind == "categorical"}

    def encode(X: pd.DataFrame) -> np.ndarray:
        cols = [pd.Categorical(X[c].astype(str), categories=cats[c]).codes if c in cats else X[c].to_numpy(float)
                for c in names]
        return np.column_stack(cols).astype(float)

    def decode(A: np.ndarray) -> pd.DataFrame:
        data = {c: (pd.Categorical.from_codes(np.clip(A[:, i].round().astype(int), 0, len(cats[c]) - 1), cats[c])
                    if c in cats else A[:, i]) for i, c in enumerate(names)}
        return pd.DataFrame(data)

    def log_odds(A: np.ndarray) -> np.ndarray:
        return booster.predict(xgb.DMatrix(decode(A), enable_categorical=True), output_margin=True)

    bg, rows = encode(background), encode(local_rows)
    cat_idx = [i for i, c in enumerate(names) if c in cats]
    t0 = time.perf_counter()
    for seed in range(seeds):
        lime = LimeTabularExplainer(bg, mode="regression", feature_names=names, categorical_features=cat_idx,
                                    discretize_continuous=True, feature_selection="none", random_state=seed)
        for row in rows:
            lime.explain_instance(row, log_odds, num_features=len(names), num_samples=num_samples)
    lime_s = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return {"predict_seconds": round(predict_s, 3), "predict_rows": sum(prediction_batches),
            "predict_batches": len(prediction_batches),
            "pred_contribs_seconds": round(shap_s, 3), "pred_contribs_rows": len(explained),
            "lime_seconds": round(lime_s, 3), "lime_explanations": len(rows) * seeds, "lime_num_samples": num_samples,
            "seconds": round(predict_s + shap_s + lime_s, 3), "cpu_seconds": round(cpu, 3)}


def _full_audit_once(engine, spec: Path, out_dir: Path) -> dict[str, Any]:
    """prepare + run + one model-card export, timed; plus the rows the audit explained."""
    from audit.checks.explanations import ExplanationsConfig
    from audit.documents import render_document
    timeline = _Timeline()
    engine.progress = timeline
    with _PredictionLog() as predictions:
        t_start, c_start = time.perf_counter(), time.process_time()
        prepared = engine.prepare(spec)
        prepare_s = time.perf_counter() - t_start
        t0 = time.perf_counter()
        result = engine.run(prepared)
        run_s = time.perf_counter() - t0
        end_run = time.perf_counter()
        doc = render_document(engine, result.audit_id, "model-card", "html", "en", out_dir / f"{result.audit_id}.html")
        doc_s = time.perf_counter() - end_run
        total, cpu = time.perf_counter() - t_start, time.process_time() - c_start
    engine.progress = lambda msg: None
    checks = {k: round(v.seconds, 3) for k, v in result.checks.items() if v.status != "skipped"}
    plan = json.loads((engine.audit_dir(result.audit_id) / "evidence" / "explanations" / "sampling_plan.json").read_text())
    ecfg = ExplanationsConfig.model_validate(prepared.policy.check_settings("explanations", prepared.spec.spec.domain))
    frame, feats = prepared.data.frame, prepared.model.feature_names
    local_idx = [r["row"] for r in plan["local_decisions"]]
    bg_src = prepared.data.train if plan["background"]["source"] == "train" else frame
    bg_pos = plan["background"]["row_positions"] or list(range(min(ecfg.background_size, len(bg_src))))
    work = {"model": prepared.model, "frame": frame, "explained": frame.iloc[list(plan["explained_rows"]) + local_idx][feats],
            "local_rows": frame.iloc[local_idx][feats], "seeds": ecfg.lime_seeds, "num_samples": ecfg.lime_num_samples,
            "background": bg_src.iloc[bg_pos][feats], "prediction_batches": predictions.batches}
    return {
        "rows": len(frame), "status": result.status, "findings": len(result.findings),
        "risk_tier": (result.risk or {}).get("tier"),
        "checks_run": [k for k, v in result.checks.items() if v.status != "skipped"],
        "check_errors": {k: v.error for k, v in result.checks.items() if v.status == "error"},
        "explained_rows": {"global": len(plan["explained_rows"]), "local": len(local_idx)},
        "explainer": ((result.checks["explanations"].details or {}).get("explainer") or {}).get("explainer"),
        "document": Path(doc).suffix.lstrip("."), "prepare_seconds": round(prepare_s, 3),
        "run_seconds": round(run_s, 3), "document_seconds": round(doc_s, 3), "check_seconds": checks,
        "publish_seconds": round(run_s - sum(checks.values()), 3), "seconds": round(total, 3),
        "cpu_seconds": round(cpu, 3), "profile": timeline.phases(end_run, max(run_s - sum(checks.values()), 0.0))[:15],
        "_work": work}


def part_full_audit(opts: argparse.Namespace) -> dict[str, Any]:
    """The default Adult audit and the irreducible work it calls, alternating: one untimed warm-up
    round, then the best of `repeats`."""
    import yaml

    from audit.engine import AuditEngine
    from audit.policy import bundled_policies

    _warm_imports()
    engine = AuditEngine()
    _ = engine.registry  # MLflow's import and store set-up: once per process, not per audit
    audits, irreducible = [], []
    with tempfile.TemporaryDirectory(prefix="bench-full-") as d:
        tmp = Path(d)
        # examples/adult/audit.yaml as it is (default policy, every check, the cv-screening system card),
        # with the dataset and card as absolute paths so the spec can live in a temp dir.
        example = yaml.safe_load(ADULT_SPEC.read_text())
        spec = _spec(tmp / "spec.yaml", (ADULT_SPEC.parent / example["dataset"]["path"]).resolve(),
                     bundled_policies()[example["policy"]], None,
                     (ADULT_SPEC.parent / example["system_card"]).resolve() if example.get("system_card") else None)
        cold: dict[str, float] = {}
        for rep in range(-1, opts.repeats):  # -1: an untimed warm-up round (first-call costs of the process)
            label = "warm-up" if rep < 0 else f"#{rep + 1}"
            print(f"full_audit {label}: the default Adult audit (all checks, risk classification, model card)",
                  flush=True)
            a = _full_audit_once(engine, spec, tmp)
            irr = _irreducible(**a.pop("_work"))
            if rep < 0:
                cold = {"audit_seconds": a["seconds"], "irreducible_seconds": irr["seconds"]}
            else:
                audits.append(a)
                irreducible.append(irr)
            print(f"full_audit {label}: audit {a['seconds']:.1f} s (checks {a['check_seconds']}); irreducible "
                  f"{irr['seconds']:.1f} s", flush=True)
    best = min(audits, key=lambda a: a["seconds"])
    irr = min(irreducible, key=lambda r: r["seconds"])
    cpu_irr = min(r["cpu_seconds"] for r in irreducible)
    return {"spec": str(ADULT_SPEC.relative_to(ROOT)), "repeats": opts.repeats, **best,
            "samples": [a["seconds"] for a in audits], "irreducible": irr,
            "irreducible_samples": [r["seconds"] for r in irreducible], "warm_up": cold,
            "audit_overhead_ratio": round(best["seconds"] / irr["seconds"], 2),
            "audit_overhead_ratio_cpu": round(min(a["cpu_seconds"] for a in audits) / cpu_irr, 2)}


PARTS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "setup": part_setup, "fairness": part_fairness, "calibration": part_calibration,
    "monitoring": part_monitoring, "monitoring_peers": part_monitoring_peers,
    "monitoring_scale": part_monitoring_scale, "ledger": part_ledger, "explanations": part_explanations,
    "robustness": part_robustness, "rai": part_rai,
    "full_audit": part_full_audit, "scale": part_scale, "sae": part_sae}


# -- orchestration ---------------------------------------------------------------------------------

def _run_part(name: str, opts: argparse.Namespace, env: dict[str, str], logdir: Path) -> dict[str, Any]:
    """Run one part in a subprocess (own process group, own time limit); never raises."""
    out = logdir / f"{name}.json"
    err = logdir / f"{name}.stderr.log"
    cmd = [sys.executable, "-m", "benchmarks.run", "--part", name, "--part-out", str(out),
           "--dask-max", str(opts.dask_max), "--repeats", str(opts.repeats), "--rows", *map(str, opts.rows),
           *(["--quick"] if opts.quick else [])]
    t0, load0, started = time.perf_counter(), _load(), _now()
    print(f"\n== {name} (load {load0}) ==", flush=True)
    status, reason, data = "ok", None, None
    with open(err, "w") as ferr:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=None, stderr=ferr, start_new_session=True)
        try:
            rc = proc.wait(timeout=TIMEOUTS[name])
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc, status, reason = -9, "error", f"timed out after {TIMEOUTS[name]} s"
    if status == "ok":
        if out.exists():
            data = json.loads(out.read_text())
            if isinstance(data, dict) and "__error__" in data:
                status, reason, data = "error", data["__error__"], None
        else:
            lines = [ln for ln in err.read_text(errors="replace").strip().splitlines() if ln.strip()]
            status, reason = "error", f"exited with code {rc}: " + (lines[-1][:400] if lines else "no output")
    if status == "error":
        print(f"{name}: FAILED: {reason}", flush=True)
    return {"status": status, "reason": reason, "measured_at": started, "commit": _commit(),
            "seconds": round(time.perf_counter() - t0, 1), "load_before": load0, "load_after": _load(), "data": data}


def _child(name: str, opts: argparse.Namespace) -> int:
    """Inside the part's subprocess: run it, write its JSON (or the error) to --part-out."""
    import traceback
    import warnings
    warnings.filterwarnings("ignore")
    try:
        data: Any = PARTS[name](opts)
    except ModuleNotFoundError as e:
        data = {"__error__": f"module missing: {e.name}" if e.name and e.name.startswith("benchmarks")
                else f"ModuleNotFoundError: {e}"}
    except BaseException as e:  # noqa: BLE001 -- reported in latest.json, the harness goes on
        traceback.print_exc()
        data = {"__error__": f"{type(e).__name__}: {e}"[:500]}
    Path(opts.part_out).write_text(json.dumps(data, default=_json_default))
    return 0


def _json_default(obj: Any) -> Any:
    try:
        import numpy as np
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:
        pass
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def _ratio(num: float | None, den: float | None) -> float | None:
    return round(num / den, 2) if num and den else None


def summarise(parts: dict[str, dict[str, Any]], opts: argparse.Namespace, started: str, env_machine: dict) -> dict:
    stamps = [v["measured_at"] for v in parts.values() if v.get("measured_at")]
    res: dict[str, Any] = {"measured_at": min(stamps + [started]), "invoked_at": started, "completed_at": _now(),
                           "mode": "quick" if opts.quick else "full", "machine": env_machine}
    reasons: dict[str, str] = {}

    def data(name: str) -> dict[str, Any] | None:
        p = parts.get(name)
        return p["data"] if p and p["status"] == "ok" else None

    def why(name: str) -> str:
        p = parts.get(name)
        if p is None:
            return f"part '{name}' not run in this invocation"
        return p.get("reason") or f"part '{name}' gave no result"

    def put(key: str, value: Any, reason: str) -> None:
        res[key] = value
        if value is None:
            res[f"{key}_reason"] = reason
            reasons[key] = reason

    fair = data("fairness")
    put("fairness_ci_speedup_vs_fairlearn", fair.get("fairness_ci_speedup_vs_fairlearn") if fair else None,
        why("fairness"))
    cal = data("calibration")
    cal_sum = (cal or {}).get("summary") or {}
    put("calibration_min_fairness_coverage", cal_sum.get("fairness_min_pooled_coverage"), why("calibration"))
    fa = cal_sum.get("false_alarm_any_warn_or_fail_fair_scenarios") or {}
    put("calibration_max_false_alarm", max(fa.values()) if fa else None, why("calibration"))
    if cal:
        res["calibration"] = {"redraws": cal.get("redraws"), "file": cal.get("file"),
                              "min_pooled_coverage_at": cal_sum.get("fairness_min_pooled_coverage_at"),
                              "min_single_interval_coverage": cal_sum.get("fairness_min_coverage"),
                              "min_single_interval_coverage_at": cal_sum.get("fairness_min_coverage_at"),
                              "intervals_below_target": cal_sum.get("fairness_intervals_below_target"),
                              "point_outside_interval_fairness": cal_sum.get("point_outside_interval_fairness"),
                              "findings_outside_ci": cal_sum.get("findings_outside_ci"),
                              "performance_coverage": cal_sum.get("performance_coverage")}
    mon = data("monitoring")
    scen = (mon or {}).get("scenarios") or {}
    put("monitoring_null_alarm_rate", scen["null"]["any_alarm"]["rate"] if "null" in scen else None, why("monitoring"))
    powers = [v["power"]["rate"] for v in scen.values() if "power" in v]
    put("monitoring_min_power", min(powers) if powers else None, why("monitoring"))
    peers = data("monitoring_peers") or {}
    put("drift_speedup_vs_evidently", (peers.get("drift") or {}).get("speedup"), why("monitoring_peers"))
    put("cbpe_speedup_vs_nannyml", (peers.get("cbpe") or {}).get("speedup"), why("monitoring_peers"))
    put("cbpe_difference_vs_nannyml", (peers.get("cbpe") or {}).get("difference"), why("monitoring_peers"))
    mscale = data("monitoring_scale") or {}
    local = next((p for p in mscale.get("points", []) if p["backend"] == "local"), None)
    put("monitoring_10m_peak_mb", local["peak_mb"] if local and mscale.get("rows") == 10_000_000 else None,
        f"measured at {mscale['rows']:,} rows (--quick), not 10M" if mscale.get("rows") else why("monitoring_scale"))
    put("monitoring_10m_backends_identical", float(mscale["backends_identical"]) if "backends_identical" in mscale
        else None, why("monitoring_scale"))
    led = data("ledger") or {}
    put("ledger_append_overhead", (led.get("append") or {}).get("overhead"), why("ledger"))
    verify_1m = (led.get("verify") or {}).get("seconds") if (led.get("verify") or {}).get("entries") == 1_000_000 else None
    put("ledger_verify_1m_seconds", verify_1m, why("ledger") if not led else "measured on fewer entries (--quick)")
    expl = data("explanations")
    put("shap_time_ratio_vs_pred_contribs",
        round(expl["shap_time_ratio_vs_pred_contribs"], 3) if expl and expl.get("shap_time_ratio_vs_pred_contribs") else None,
        why("explanations"))
    res["lime_seconds_20x5"] = round(expl["lime_seconds_20x5"], 2) if expl and expl.get("lime_seconds_20x5") else None

    # Responsible AI Toolbox: like-for-like on the same rows, alternating in this run
    rai = data("rai")
    variants = (rai or {}).get("variants") or {}
    sample = variants.get("default_sample") or {}
    put("audit_speedup_vs_rai", sample.get("speedup"),
        why("rai") if rai is None else sample.get("rai_error") or "no timing from one side")
    res["audit_speedup_vs_rai_full_split"] = (variants.get("full_split") or {}).get("speedup")
    res["audit_speedup_vs_rai_policy_sample"] = (sample.get("policy_sample") or {}).get("speedup")
    res["audit_speedup_vs_rai_full_split_policy_sample"] = \
        ((variants.get("full_split") or {}).get("policy_sample") or {}).get("speedup")
    if rai is not None:
        res["rai"] = {"version": rai.get("responsibleai"), "repeats": rai.get("repeats"),
                      "variants": {k: _without_details(v) for k, v in variants.items()},
                      "scope": "RAIInsights explainer (MimicExplainer: a LightGBM surrogate of the model, global + "
                               "local importances on every row) + error analysis (surrogate error tree, feature "
                               "importances). aiaudit: engine.run with checks [explanations: exact TreeSHAP of the "
                               "model itself on every row (variant policy_sample: on the default policy's 2,000-row stratified sample), "
                               "global ranking with bootstrap CIs and per-group "
                               "rankings, LIME and quality measures at their minimum, no plots; slices: single "
                               "features and pairs, BH-FDR tests, FCR intervals], MLflow logging and ledger included."}

    # Giskard: from benchmarks.bench_robustness
    rob = data("robustness")
    gk = (rob or {}).get("giskard") or {}
    put("audit_speedup_vs_giskard", (rob or {}).get("giskard_over_aiaudit"),
        why("robustness") if rob is None else gk.get("reason") or "no Giskard figure")
    if rob:
        res["giskard"] = {"version": gk.get("giskard"), "seconds": gk.get("seconds"),
                          "aiaudit_seconds": (rob.get("aiaudit") or {}).get("total_seconds"),
                          "scope": rob.get("giskard_scope")}

    full = data("full_audit")
    put("audit_overhead_ratio", full.get("audit_overhead_ratio") if full else None, why("full_audit"))
    res["audit_overhead_ratio_cpu"] = full.get("audit_overhead_ratio_cpu") if full else None
    if full:
        res["full_audit"] = {k: full.get(k) for k in ("rows", "explained_rows", "seconds", "cpu_seconds", "check_seconds",
                                                      "prepare_seconds", "publish_seconds", "document_seconds")}
        res["full_audit"]["irreducible_seconds"] = full["irreducible"]["seconds"]
        res["full_audit"]["irreducible_cpu_seconds"] = full["irreducible"].get("cpu_seconds")

    scale = data("scale")
    put("scaling", scale.get("scaling") if scale else None, why("scale"))
    big = [p for p in (res["scaling"] or []) if p.get("rows") == 10_000_000 and p.get("backend") == "local"]
    put("scaling_10m_peak_mb", big[0]["peak_mb"] if big else None,
        why("scale") if scale is None else "no 10,000,000-row local point in this run (--quick or --rows)")
    if opts.sae or "sae" in parts:
        sae = data("sae")
        put("sae", sae, why("sae"))

    res["targets"] = {k: {"rule": f"{op} {bound:g}", "statement": text, "value": res.get(k),
                          "met": None if res.get(k) is None else (res[k] >= bound if op == ">=" else res[k] <= bound)}
                      for k, (op, bound, text) in TARGETS.items()}
    res["parts"] = {k: {kk: vv for kk, vv in v.items() if kk != "data"} for k, v in parts.items()}
    res["details"] = {k: v["data"] for k, v in parts.items() if v["data"] is not None}
    res["reasons"] = reasons
    loads = [v["load_before"] for v in parts.values()] + [v["load_after"] for v in parts.values()]
    res["machine"]["load_average_1min"] = {"min": min(loads), "max": max(loads)} if loads else None
    res["machine"]["under_load"] = bool(loads) and max(loads) > (env_machine.get("cores_available") or 1)
    res["machine"]["peers"] = {"responsibleai": (rai or {}).get("responsibleai"), "giskard": gk.get("giskard")}
    return res


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def print_summary(res: dict[str, Any]) -> None:
    print("\n== aiaudit benchmarks ==")
    m = res["machine"]
    print(f"machine: {m['cpu_model']}, {m['cores_available']} cores, {m['memory_gb']} GB, Python {m['python']}; "
          f"load {m.get('load_average_1min')}")
    for key, t in res["targets"].items():
        v = t["value"]
        shown = "null (" + res.get(f"{key}_reason", "?")[:90] + ")" if v is None else f"{v:,.2f}"
        mark = "" if t["met"] is None else "  ok" if t["met"] else "  MISSED"
        print(f"  {key:<36} {shown:<24} target {t['rule']}{mark}")
    for p in res.get("scaling") or []:
        print(f"  scaling {p['rows']:>12,} rows {p['backend']:<6} {p['seconds']:>8.1f} s  peak {p['peak_mb']:>8.0f} MB")


def markdown(res: dict[str, Any]) -> str:
    """The headline table of a result file, for docs/performance.md."""
    m = res["machine"]
    load = m.get("load_average_1min") or {}
    parts = res.get("parts") or {}
    when = sorted(f"{k} {p.get('measured_at')} ({p.get('commit') or 'commit not recorded'})" for k, p in parts.items())
    lines = [f"Parts measured: {'; '.join(when)}. Last invocation at commit {m.get('aiaudit_commit')}, on "
             f"{m['cpu_model']}, {m['cores_available']} cores, {m['memory_gb']} GB RAM, Python {m['python']}; "
             f"1-minute load average {load.get('min')}-{load.get('max')}"
             + (" (under load: other processes shared the cores)." if m.get("under_load") else "."), "",
             "| Figure | Measured | Target | Met |", "|---|---|---|---|"]
    for key, t in res["targets"].items():
        v = t["value"]
        shown = f"null: {res.get(key + '_reason', '?')}" if v is None else f"{v:,.2f}"
        met = "n/a" if t["met"] is None else "yes" if t["met"] else "**no**"
        lines.append(f"| `{key}` | {shown} | {t['rule']} | {met} |")
    if res.get("scaling"):
        lines += ["", "| Rows | Backend | Seconds | Peak MB |", "|---:|---|---:|---:|"]
        lines += [f"| {p['rows']:,} | {p['backend']} | {p['seconds']:.1f} | {p['peak_mb']:.0f} |" for p in res["scaling"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="skip the 1M and 10M scaling points and the SAE benchmark")
    ap.add_argument("--sae", action="store_true", help="also run the (slow) SAE benchmark")
    ap.add_argument("--only", nargs="+", choices=[p for p in ORDER if p != "setup"], metavar="PART",
                    help=f"run only these parts ({', '.join(p for p in ORDER if p != 'setup')})")
    ap.add_argument("--skip", nargs="+", default=[], choices=[p for p in ORDER if p != "setup"], metavar="PART",
                    help="skip these parts")
    ap.add_argument("--rows", type=int, nargs="+", default=None, help="scaling row counts (default 10k 100k 1M 10M; "
                    "--quick: 10k 100k)")
    ap.add_argument("--dask-max", type=int, default=10_000_000, help="largest scaling point also run on Dask (default: every point)")
    ap.add_argument("--repeats", type=int, default=None, help="timed repetitions of the rai and full_audit parts after "
                    "an untimed warm-up round; the best is kept (default 3; --quick: 1)")
    ap.add_argument("--out", type=Path, default=None, help="result file (default benchmarks/results/latest.json; "
                    "--quick: benchmarks/results/quick.json)")
    ap.add_argument("--reuse", action="store_true", help="keep the parts this invocation does not run (see --only, "
                    "--skip) from the existing result file, e.g. to re-measure contended parts without re-running "
                    "the 10M-row scaling point; each part records when it was measured")
    ap.add_argument("--markdown", type=Path, metavar="RESULT_JSON", help="print the headline tables of a result "
                    "file as Markdown and exit (runs nothing)")
    ap.add_argument("--part", choices=list(PARTS), help=argparse.SUPPRESS)
    ap.add_argument("--part-out", help=argparse.SUPPRESS)
    opts = ap.parse_args(argv)
    if opts.markdown:
        print(markdown(json.loads(opts.markdown.read_text())))
        return 0
    if opts.rows is None:
        opts.rows = [10_000, 100_000] if opts.quick else [10_000, 100_000, 1_000_000, 10_000_000]
    if opts.repeats is None:
        opts.repeats = 1 if opts.quick else 3
    if opts.quick:
        opts.dask_max = min(opts.dask_max, max(opts.rows))
    if opts.part:
        return _child(opts.part, opts)

    started = _now()
    out = opts.out or RESULTS / ("quick.json" if opts.quick else "latest.json")
    wanted = [p for p in ORDER if p != "setup" and (opts.only is None or p in opts.only) and p not in opts.skip
              and (p != "sae" or opts.sae)]
    needs_home = {"rai", "full_audit", "scale"} & set(wanted)
    mach = machine()
    parts: dict[str, dict[str, Any]] = _reused(out, wanted) if opts.reuse else {}
    with tempfile.TemporaryDirectory(prefix="aiaudit-bench-home-") as home, \
            tempfile.TemporaryDirectory(prefix="aiaudit-bench-logs-") as logs:
        env = {**os.environ, "AIAUDIT_HOME": home, "MPLBACKEND": "Agg", "GSK_DISABLE_ANALYTICS": "True"}
        env.pop("MLFLOW_TRACKING_URI", None)
        if needs_home:
            parts["setup"] = _run_part("setup", opts, env, Path(logs))
        for name in wanted:
            if name in needs_home and parts["setup"]["status"] != "ok":
                parts[name] = {"status": "error", "reason": f"demo models not registered: {parts['setup']['reason']}",
                               "seconds": 0.0, "load_before": _load(), "load_after": _load(), "data": None}
                continue
            parts[name] = _run_part(name, opts, env, Path(logs))
            _write(out, summarise(parts, opts, started, dict(mach)), final=False)
        res = summarise(parts, opts, started, mach)
    _write(out, res, final=True)
    print_summary(res)
    print(f"\nwrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


def _reused(path: Path, wanted: list[str]) -> dict[str, dict[str, Any]]:
    """Successful parts of an earlier result file that this invocation does not re-run."""
    if not path.exists():
        return {}
    prev = json.loads(path.read_text())
    kept = {}
    for name in ORDER:
        p = (prev.get("parts") or {}).get(name)
        data = (prev.get("details") or {}).get(name)
        if name == "setup" or name in wanted or not p or p.get("status") != "ok" or data is None:
            continue
        kept[name] = {**p, "measured_at": p.get("measured_at") or prev.get("measured_at"), "reused": True, "data": data}
        print(f"reusing {name} from {path.name} (measured {kept[name]['measured_at']})")
    return kept


def _write(path: Path, res: dict[str, Any], final: bool) -> None:
    """Progress goes to `<out>.tmp` after each part; the result file is replaced once, at the end."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(res, indent=2, default=_json_default) + "\n")
    if final:
        os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
