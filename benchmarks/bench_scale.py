"""Scaling curve: streaming fairness + performance tables over 10k..10M rows, local and Dask.

Each point runs in a fresh subprocess so its peak resident memory (ru_maxrss) is its own.

    python -m benchmarks.bench_scale [--rows 10000 100000 1000000 10000000] [--dask-max 10000000]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = 20


def make_dataset(rows: int, path: Path) -> Path:
    """Adult resampled to `rows` rows, padded with noise columns to 20 columns, written in row groups."""
    if path.exists():
        return path
    base = pd.read_csv(ROOT / "data" / "adult.csv.gz").drop(columns=["split"])
    rng = np.random.default_rng(0)
    writer = None
    import pyarrow as pa
    import pyarrow.parquet as pq
    step = 1_000_000
    for start in range(0, rows, step):
        n = min(step, rows - start)
        part = base.sample(n, replace=True, random_state=int(rng.integers(1 << 31))).reset_index(drop=True)
        for i in range(COLUMNS - part.shape[1]):
            part[f"extra_{i}"] = rng.normal(size=n)
        table = pa.Table.from_pandas(part, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=250_000)
    writer.close()
    return path


WORKER = """
import json, os, resource, sys, time
from pathlib import Path
from audit.config import Settings
from audit.registry import Registry
from audit.scale.partials import MapPlan
from audit.scale.backends import run_local, run_dask

def main():
    path, backend = Path(sys.argv[1]), sys.argv[2]
    registry = Registry(Settings.from_env())
    model = registry.load(registry.resolve("models:/adult-income-xgb@candidate"))
    plan = MapPlan(model=model, label="income", positive_label=1, protected=("sex", "race"), sample_per_stratum=2000)
    cols = model.feature_names + ["income", "sex", "race"]
    t0 = time.perf_counter()
    result, stats = (run_local(path, cols, plan, chunk_rows=250_000) if backend == "local" else run_dask(path, cols, plan))
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"rows": result.rows, "seconds": seconds, "peak_mb": peak, "worker_peak_mb": children,
                      "roc_auc": result.histogram.metrics()["roc_auc"]}))

if __name__ == "__main__":
    main()
"""


def measure(path: Path, backend: str, home: Path) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(WORKER)
    env = {**os.environ, "AIAUDIT_HOME": str(home)}
    proc = subprocess.run([sys.executable, f.name, str(path), backend], capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ensure_demo_models(home: Path) -> None:
    from audit.config import Settings
    from audit.demo import register_demo_models
    from audit.registry import Registry
    registry = Registry(Settings.from_env(home))
    try:
        registry.resolve("models:/adult-income-xgb@candidate")
    except Exception:
        register_demo_models(registry, progress=lambda m: None)


def run(rows: list[int] | None = None, dask_max: int = 1_000_000, home: Path | None = None) -> dict:
    rows = rows or [10_000, 100_000, 1_000_000, 10_000_000]
    home = home or Path(tempfile.mkdtemp(prefix="aiaudit-bench-"))
    ensure_demo_models(home)
    data_dir = Path(tempfile.gettempdir()) / "aiaudit-bench-data"
    data_dir.mkdir(exist_ok=True)
    points = []
    for n in rows:
        path = make_dataset(n, data_dir / f"adult_{n}.parquet")
        for backend in ("local", "dask"):
            if backend == "dask" and n > dask_max:
                continue
            m = measure(path, backend, home)
            points.append({"rows": n, "backend": backend, "seconds": round(m["seconds"], 2),
                           "peak_mb": round(max(m["peak_mb"], m["worker_peak_mb"]), 1)})
            print(f"scaling: {n:>10,} rows  {backend:<5} {m['seconds']:8.1f} s  peak {points[-1]['peak_mb']:.0f} MB", flush=True)
    return {"scaling": points}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, nargs="*")
    ap.add_argument("--dask-max", type=int, default=10_000_000)
    a = ap.parse_args()
    print(json.dumps(run(a.rows, a.dask_max), indent=2))
