"""A 10M-row monitoring window streamed through `aiaudit monitor --stream`, locally and on Dask.

    python -m benchmarks.bench_monitoring_scale [--rows 10000000]

The demo credit scorecard is audited once (the baseline); the window is the bundled shifted credit window
resampled to --rows rows (credit amounts jittered), as Parquet in 500,000-row groups. Each run is the real CLI in
a subprocess; its peak memory is the largest sum of resident memory over its process tree (the monitor process and
any Dask workers), polled every 0.2 s, and the largest single process's. The two backends' monitor.json findings must be identical. Results:
benchmarks/results/monitoring_scale.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "monitoring_scale.json"
SPEC = ROOT / "examples" / "credit" / "audit.yaml"


def make_window(rows: int, path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return path
    base = pd.read_csv(ROOT / "data" / "monitoring" / "credit-window-shifted.csv.gz")
    rng = np.random.default_rng(0)
    writer = None
    for start in range(0, rows, 1_000_000):
        n = min(1_000_000, rows - start)
        part = base.sample(n, replace=True, random_state=int(rng.integers(1 << 31))).reset_index(drop=True)
        part["credit_amount"] = part["credit_amount"] + rng.integers(-50, 51, n)
        table = pa.Table.from_pandas(part, preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=500_000)
    writer.close()
    return path


def baseline(home: Path) -> str:
    from audit.config import Settings
    from audit.demo import register_demo_models
    from audit.engine import AuditEngine
    from audit.registry import Registry
    settings = Settings.from_env(home)
    register_demo_models(Registry(settings), progress=lambda m: None)
    engine = AuditEngine(settings)
    return engine.run(engine.prepare(SPEC)).audit_id


def run_measured(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float, float, float]:
    """(process, seconds, peak MB summed over the process tree, peak MB of its largest process)."""
    import psutil
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    root, peak, single = psutil.Process(proc.pid), 0.0, 0.0
    while proc.poll() is None:
        try:
            rss = [p.memory_info().rss / 2**20 for p in [root, *root.children(recursive=True)] if p.is_running()]
            peak, single = max(peak, sum(rss)), max(single, max(rss, default=0.0))
        except psutil.Error:
            pass
        time.sleep(0.2)
    out, err = proc.communicate()
    return subprocess.CompletedProcess(args, proc.returncode, out, err), time.perf_counter() - t0, peak, single


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    data_dir = Path(tempfile.gettempdir()) / "aiaudit-bench-data"
    data_dir.mkdir(exist_ok=True)
    window = make_window(args.rows, data_dir / f"credit_window_{args.rows}.parquet")
    with tempfile.TemporaryDirectory(prefix="aiaudit-monitor-scale-") as tmp:
        home = Path(tmp) / "home"
        env = {**os.environ, "AIAUDIT_HOME": str(home), "OMP_NUM_THREADS": "1"}
        audit_id = baseline(home)
        exe = str(Path(sys.executable).parent / "aiaudit")
        points, findings = [], {}
        for backend in ("local", "dask"):
            out = Path(tmp) / backend
            proc, seconds, peak, single = run_measured([exe, "monitor", str(SPEC), "--window", str(window), "--baseline",
                                                audit_id, "--stream", "--backend", backend, "--out", str(out)], env)
            if proc.returncode not in (0, 1):
                raise RuntimeError(f"{backend}: exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
            result = json.loads((out / "monitor.json").read_text())
            findings[backend] = {f["id"]: (f["status"], f["value"], f["ci"], f["data"].get("p_value"))
                                 for f in result["findings"]}
            points.append({"backend": backend, "rows": result["dataset"]["rows"], "seconds": round(seconds, 1),
                           "peak_mb": round(peak, 1), "largest_process_mb": round(single, 1), "chunks": result["dataset"]["sample"]["chunks"],
                           "exit_code": proc.returncode, "breaches": result["checks"]["monitoring"]["details"]["breaches"]})
            print(f"monitoring window: {args.rows:,} rows {backend:<5} {seconds:7.1f} s peak {peak:7.0f} MB "
                  f"(largest process {single:.0f} MB)", flush=True)
    identical = findings["local"] == findings["dask"]
    res = {"rows": args.rows, "points": points, "backends_identical": identical, "findings": len(findings["local"]),
           "peak_mb": max(p["peak_mb"] for p in points)}
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
