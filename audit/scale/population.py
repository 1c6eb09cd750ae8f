"""Streaming an audited dataset through a backend into a `Population`: exact tables plus a sample."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..metrics.fairness import numeric_bins
from ..model_io import LoadedModel
from .backends import RunStats, run_dask, run_local
from .partials import SAMPLE_KEY, MapPlan, Partial
from .sources import iter_chunks


@dataclass
class Population:
    partial: Partial
    numeric_bins: dict[str, list[float] | None]
    stats: RunStats
    plan: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return self.partial.rows

    def sample_frame(self) -> pd.DataFrame:
        """The stratified sample as an ordinary frame (object strings, no helper columns)."""
        frame = self.partial.sample.drop(columns=[SAMPLE_KEY, "__stratum__"]).reset_index(drop=True)
        for c in frame.columns:
            if not pd.api.types.is_numeric_dtype(frame[c]):
                frame[c] = frame[c].astype(object)
        return frame


def first_chunk(path: Path, rows: int = 50_000) -> pd.DataFrame:
    return next(iter_chunks(path, None, rows))


def stream_population(path: Path, model: LoadedModel, label: str, positive_label: Any, protected: list[str],
                      split_column: str | None, split_value: str | None, sample_rows: int, seed: int,
                      backend: str = "local", scheduler: str | None = None, chunk_rows: int = 500_000,
                      max_numeric_levels: int = 10) -> Population:
    head = first_chunk(path)
    bins = {a: numeric_bins(head[a], max_numeric_levels) for a in protected}
    strata = max(1, int(head[[label, *protected]].astype(str).drop_duplicates().shape[0]))
    per_stratum = max(50, sample_rows // strata)
    columns = list(dict.fromkeys([*model.feature_names, label, *protected, *( [split_column] if split_column else [])]))
    plan = MapPlan(model=model, label=label, positive_label=positive_label, protected=tuple(protected),
                   split_column=split_column, split_value=split_value, sample_per_stratum=per_stratum, seed=seed,
                   numeric_bins={k: v for k, v in bins.items() if v})
    if backend == "dask":
        partial, stats = run_dask(path, columns, plan, scheduler=scheduler)
    else:
        partial, stats = run_local(path, columns, plan, chunk_rows=chunk_rows)
    return Population(partial, bins, stats, {
        "method": "bottom-k by content hash within label x protected-group strata (independent of partitioning)",
        "per_stratum": per_stratum, "sample_rows": len(partial.sample), "population_rows": partial.rows,
        "backend": stats.backend, "chunks": stats.chunks, "seconds": round(stats.seconds, 3),
        "numeric_bins_from": "first chunk"})
