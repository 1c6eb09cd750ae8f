"""Execution backends: the same map and reduce, on this machine or on a Dask cluster."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .partials import MapPlan, Partial, map_chunk
from .sources import iter_chunks


@dataclass
class RunStats:
    backend: str
    chunks: int
    seconds: float


def run_local(path: Path, columns: Sequence[str], plan: MapPlan, chunk_rows: int = 500_000) -> tuple[Partial, RunStats]:
    """Stream chunks one at a time and fold them; peak memory is about one chunk plus the sample."""
    t0 = time.perf_counter()
    acc: Partial | None = None
    n = 0
    for chunk in iter_chunks(path, columns, chunk_rows):
        part = map_chunk(chunk, plan)
        acc = part if acc is None else acc + part
        n += 1
    assert acc is not None, "empty dataset"
    return acc, RunStats("local", n, time.perf_counter() - t0)


def run_dask(path: Path, columns: Sequence[str], plan: MapPlan, scheduler: str | None = None,
             chunk_rows: int = 500_000, client=None) -> tuple[Partial, RunStats]:
    """Map each Dask partition with `map_chunk` and tree-reduce on the cluster.

    `scheduler` is a `tcp://host:port` address; without it a LocalCluster on this machine is used.
    """
    import dask
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    t0 = time.perf_counter()
    own = None
    if client is None:
        if scheduler:
            client = own = Client(scheduler)
        else:
            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
            client = own = Client(cluster)
    try:
        name = path.name.lower()
        if name.endswith(".parquet"):
            ddf = dd.read_parquet(str(path), columns=list(columns), split_row_groups=True)
        else:
            ddf = dd.read_csv(str(path), usecols=list(columns), blocksize=None if name.endswith(".gz") else 64 * 2**20)
        parts = [dask.delayed(map_chunk)(p, plan) for p in ddf.to_delayed()]
        while len(parts) > 1:
            parts = [dask.delayed(Partial.__add__)(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                     for i in range(0, len(parts), 2)]
        result = client.compute(parts[0]).result()
        return result, RunStats("dask", ddf.npartitions, time.perf_counter() - t0)
    finally:
        if own is not None:
            cluster = getattr(own, "cluster", None)
            own.close()
            if cluster is not None:
                cluster.close()
