"""The map (one chunk -> `Partial`) and the associative reduce (`Partial + Partial`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..metrics.fairness import CountTable, count_table, group_labels
from ..metrics.score_histogram import ScoreHistogram
from ..model_io import LoadedModel

SAMPLE_KEY = "__aiaudit_sample_key__"


@dataclass(frozen=True)
class MapPlan:
    """Everything a worker needs to map one chunk; picklable for Dask."""

    model: LoadedModel
    label: str
    positive_label: Any
    protected: tuple[str, ...]
    split_column: str | None = None
    split_value: str | None = None
    sample_per_stratum: int = 2_000
    seed: int = 0
    bins: int = 10_000
    numeric_bins: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class Partial:
    rows: int
    histogram: ScoreHistogram
    groups: CountTable | None
    sample: pd.DataFrame

    def __add__(self, other: "Partial") -> "Partial":
        return Partial(self.rows + other.rows, self.histogram + other.histogram,
                       None if self.groups is None else self.groups + other.groups,
                       _bottom_k(pd.concat([self.sample, other.sample], ignore_index=True), other_k(self, other)))


def other_k(a: Partial, b: Partial) -> int:
    return int(max(a.sample.attrs.get("k", 0), b.sample.attrs.get("k", 0)))


def sample_keys(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """A pseudo-random key per row from its content, so samples do not depend on partitioning."""
    canonical = pd.DataFrame({c: (frame[c].astype("float64") if pd.api.types.is_numeric_dtype(frame[c])
                                  else frame[c].astype(str).astype(object)) for c in sorted(frame.columns)})
    content = pd.util.hash_pandas_object(canonical, index=False).to_numpy()
    return content ^ np.uint64(np.random.default_rng(seed).integers(0, 2**63))


def _strata(frame: pd.DataFrame, plan: MapPlan) -> np.ndarray:
    """Stratum id (label x protected groups) as a content hash, comparable across chunks."""
    cols = [plan.label, *plan.protected]
    return pd.util.hash_pandas_object(frame[cols].astype(str), index=False).to_numpy()


def _bottom_k(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    if frame.empty:
        frame.attrs["k"] = k
        return frame
    out = (frame.sort_values(SAMPLE_KEY, kind="stable")
           .groupby("__stratum__", sort=False, group_keys=False).head(k)
           .sort_values(SAMPLE_KEY, kind="stable").reset_index(drop=True))
    out.attrs["k"] = k
    return out


def map_chunk(chunk: pd.DataFrame, plan: MapPlan) -> Partial:
    if plan.split_column is not None:
        chunk = chunk[chunk[plan.split_column].astype(str) == plan.split_value]
    chunk = chunk.reset_index(drop=True)
    model = plan.model
    proba = model.predict_proba(chunk) if len(chunk) else np.zeros((0, 2))
    classes = [str(c) for c in model.classes]
    pos = classes.index(str(plan.positive_label))
    score = proba[:, pos] if len(chunk) else np.zeros(0)
    y = (chunk[plan.label].astype(str) == str(plan.positive_label)).to_numpy().astype(int)
    y_pred = (proba.argmax(axis=1) == pos).astype(int) if len(chunk) else np.zeros(0, dtype=int)
    hist = ScoreHistogram.from_arrays(y, score, y_pred, plan.bins)
    groups = None
    if plan.protected:
        labels = pd.DataFrame({a: group_labels(chunk[a], plan.numeric_bins.get(a)) for a in plan.protected})
        groups = count_table(labels, y, y_pred, ["0", "1"])
    sample = chunk.assign(**{SAMPLE_KEY: sample_keys(chunk, plan.seed), "__stratum__": _strata(chunk, plan)})
    return Partial(len(chunk), hist, groups, _bottom_k(sample, plan.sample_per_stratum))

