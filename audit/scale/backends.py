"""Execution backends: the same map and reduce, on this machine or on a Dask cluster."""
from __future__ import annotations

import operator
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .partials import MapPlan, map_chunk
from .sources import iter_chunks


@dataclass
class RunStats:
    backend: str
    chunks: int
    seconds: float


Mapper = Callable[[Any, Any], Any]  # (chunk, plan) -> a partial that supports +


def run_local(path: Path, columns: Sequence[str] | None, plan: MapPlan | Any, chunk_rows: int = 500_000,
              mapper: Mapper = map_chunk) -> tuple[Any, RunStats]:
    """Stream chunks one at a time and fold them; peak memory is about one chunk plus the sample."""
    t0 = time.perf_counter()
    acc = None
    n = 0
    for chunk in iter_chunks(path, columns, chunk_rows):
        part = mapper(chunk, plan)
        acc = part if acc is None else acc + part
        n += 1
    assert acc is not None, "empty dataset"
    return acc, RunStats("local", n, time.perf_counter() - t0)


def map_row_group(path: str, group: int, columns: list[str] | None, plan: Any, chunk_rows: int, mapper: Mapper) -> Any:
    """One Parquet row group, read as Arrow (compact) and mapped `chunk_rows` rows at a time."""
    import pyarrow.parquet as pq
    table = pq.ParquetFile(path).read_row_group(group, columns=columns)
    acc = None
    for batch in table.to_batches(max_chunksize=chunk_rows):
        part = mapper(batch.to_pandas(), plan)
        acc = part if acc is None else acc + part
    return acc if acc is not None else mapper(table.to_pandas(), plan)


def run_dask(path: Path, columns: Sequence[str] | None, plan: MapPlan | Any, scheduler: str | None = None,
             chunk_rows: int = 500_000, client=None, mapper: Mapper = map_chunk) -> tuple[Any, RunStats]:
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
        if name.endswith(".parquet"):  # one task per row group, mapped in slices of chunk_rows: memory per slice
            import pyarrow.parquet as pq
            groups = pq.ParquetFile(path).metadata.num_row_groups
            parts = [dask.delayed(map_row_group)(str(path), i, list(columns) if columns else None, plan, chunk_rows,
                                                 mapper) for i in range(groups)]
            npartitions = groups
        else:
            ddf = dd.read_csv(str(path), usecols=list(columns) if columns else None,
                              blocksize=None if name.endswith(".gz") else 64 * 2**20)
            parts = [dask.delayed(mapper)(p, plan) for p in ddf.to_delayed()]
            npartitions = ddf.npartitions
        while len(parts) > 1:
            parts = [dask.delayed(operator.add)(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                     for i in range(0, len(parts), 2)]
        result = client.compute(parts[0]).result()
        return result, RunStats("dask", npartitions, time.perf_counter() - t0)
    finally:
        if own is not None:
            cluster = getattr(own, "cluster", None)
            own.close()
            if cluster is not None:
                cluster.close()
