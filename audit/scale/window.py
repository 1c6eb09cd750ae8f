"""A monitoring window as mergeable counts: the map (one chunk -> `WindowPartial`) and its associative reduce.

Everything the monitoring check counts is exact and additive over chunks -- per-input bins on the baseline's
edges, the cells that give the exact KS statistic against the baseline, category counts, positive predictions,
labels, correct predictions, group counts -- so a window summarised in memory, streamed chunk by chunk or mapped
on a Dask cluster gives the same numbers. What is not a count is a sketch with a stated error: the realised AUC of
a streamed window from a 65,536-bin score histogram by label (pairs in one bin count one half; the bound is
reported), and a bottom-k sample by content hash (independent of partitioning) for the domain classifier and the
label-free estimate.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import AuditInputError
from ..metrics.drift import (BinnedCounts, KsGrid, category_counts, counts_of, drop_empty, ks_cells, ks_from_cells,
                             ks_grid, numeric_counts, numeric_edges, numeric_labels)
from ..model_io import LoadedModel

HIST_BINS = 1 << 16
SAMPLE_KEY = "__aiaudit_sample_key__"
SCORE = "__aiaudit_score__"


@dataclass(frozen=True)
class Side:
    """What one numeric column of the baseline fixes for the window: PSI bin edges and the KS grid."""

    edges: np.ndarray
    grid: KsGrid


@dataclass(frozen=True)
class WindowPlan:
    """Everything a worker needs to summarise one chunk; picklable for Dask."""

    model: LoadedModel
    numeric: dict[str, Side]
    categorical: tuple[str, ...]
    scores: Side | None
    positive_label: Any
    label: str | None
    protected: tuple[str, ...]
    timestamp: str | None
    sample_rows: int
    seed: int


def plan_for(model: LoadedModel, baseline: pd.DataFrame, base_scores: np.ndarray | None, bins: int, positive_label: Any,
             label: str | None, protected: Sequence[str], timestamp: str | None, sample_rows: int,
             seed: int) -> WindowPlan:
    numeric = {f.name: Side(numeric_edges(baseline[f.name], bins), ks_grid(baseline[f.name]))
               for f in model.meta.features if f.kind == "numeric"}
    categorical = tuple(f.name for f in model.meta.features if f.kind != "numeric")
    scores = None
    if base_scores is not None:
        s = pd.Series(base_scores)
        scores = Side(numeric_edges(s, bins), ks_grid(s))
    return WindowPlan(model, numeric, categorical, scores, positive_label, label, tuple(protected), timestamp,
                      sample_rows, seed)


@dataclass
class WindowPartial:
    rows: int
    numeric: dict[str, tuple[np.ndarray, np.ndarray]]  # feature -> (bin counts + missing, KS cells)
    categorical: dict[str, pd.Series]
    scores: tuple[np.ndarray, np.ndarray] | None
    predicted: int
    labelled: np.ndarray | None  # [positives, correct predictions]
    histogram: np.ndarray  # (2, HIST_BINS): positives and negatives per score bin
    groups: dict[str, pd.DataFrame]  # attribute -> rows per group: n, predicted, positives, true positives
    ts_range: tuple[Any, Any] | None
    sample: pd.DataFrame = field(repr=False)

    def __add__(self, other: "WindowPartial") -> "WindowPartial":
        def add_series(a: pd.Series, b: pd.Series) -> pd.Series:
            return a.add(b, fill_value=0).astype(np.int64)
        ts = [r for r in (self.ts_range, other.ts_range) if r is not None]
        return WindowPartial(
            self.rows + other.rows,
            {k: (v[0] + other.numeric[k][0], v[1] + other.numeric[k][1]) for k, v in self.numeric.items()},
            {k: add_series(v, other.categorical[k]) for k, v in self.categorical.items()},
            None if self.scores is None else (self.scores[0] + other.scores[0], self.scores[1] + other.scores[1]),
            self.predicted + other.predicted,
            None if self.labelled is None else self.labelled + other.labelled,
            self.histogram + other.histogram,
            {k: v.add(other.groups[k], fill_value=0).astype(np.int64) for k, v in self.groups.items()},
            (min(r[0] for r in ts), max(r[1] for r in ts)) if ts else None,
            bottom_k(pd.concat([self.sample, other.sample], ignore_index=True), max(self.sample.attrs.get("k", 0),
                                                                                  other.sample.attrs.get("k", 0))))


def bottom_k(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    out = frame.sort_values(SAMPLE_KEY, kind="stable").head(k).reset_index(drop=True)
    out.attrs["k"] = k
    return out


def timestamp_range(chunk: pd.DataFrame, column: str | None) -> tuple[Any, Any] | None:
    """Earliest and latest ISO 8601 timestamp of the column (None when absent or empty); a value that is not one
    is a bad input."""
    if column is None or column not in chunk:
        return None
    raw = chunk[column]
    parsed = pd.to_datetime(raw, utc=True, errors="coerce", format="ISO8601")
    bad = parsed.isna() & raw.notna()
    if bad.any():
        raise AuditInputError(f"timestamp column '{column}' has {int(bad.sum())} value(s) that are not ISO 8601 dates, "
                              f"e.g. {str(raw[bad].iloc[0])[:40]!r}")
    return (parsed.min(), parsed.max()) if parsed.notna().any() else None


def _normalised(chunk: pd.DataFrame) -> pd.DataFrame:
    """Text columns as Python objects with None for missing, whatever the reader (pandas, pyarrow, Dask) gave
    (a shallow copy: the caller's frame is left as it was)."""
    index = chunk.index
    chunk = chunk.copy(deep=False) if isinstance(index, pd.RangeIndex) and index.start == 0 else chunk.reset_index(drop=True)
    for c in chunk.columns:
        col = chunk[c]
        if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            continue
        if col.dtype != object:
            col = col.astype(object)
        chunk[c] = col.where(col.notna(), None) if col.isna().any() else col
    return chunk


def _sample_keys(chunk: pd.DataFrame, seed: int) -> np.ndarray:
    """A pseudo-random key per row from its content (columns in name order), independent of partitioning."""
    content = pd.util.hash_pandas_object(chunk[sorted(chunk.columns)], index=False).to_numpy()
    return content ^ np.uint64(np.random.default_rng(seed).integers(0, 2**63))


def map_window(chunk: pd.DataFrame, plan: WindowPlan) -> WindowPartial:
    chunk = _normalised(chunk)
    for name in plan.numeric:
        if name in chunk and not pd.api.types.is_numeric_dtype(chunk[name]) and chunk[name].notna().any():
            raise AuditInputError(f"column '{name}' is numeric in the baseline and text in the window")
    numeric = {name: (numeric_counts(chunk[name], side.edges), ks_cells(side.grid, chunk[name]))
               for name, side in plan.numeric.items()}
    categorical = {name: category_counts(chunk[name]) for name in plan.categorical}
    model = plan.model
    binary = model.task == "binary"
    histogram = np.zeros((2, HIST_BINS), dtype=np.int64)
    scores, predicted, labelled = None, 0, None
    score = np.zeros(len(chunk))
    y_pred = np.zeros(len(chunk), dtype=int)
    y = None
    if binary and len(chunk):
        pos = [str(c) for c in model.classes].index(str(plan.positive_label))
        score = model.predict_proba(chunk)[:, pos]
        y_pred = (score >= 0.5).astype(int)
        predicted = int(y_pred.sum())
        s = pd.Series(score)
        scores = (numeric_counts(s, plan.scores.edges), ks_cells(plan.scores.grid, s))
        cell = np.minimum((score * HIST_BINS).astype(np.int64), HIST_BINS - 1)
        if plan.label is not None and plan.label in chunk:
            y = (chunk[plan.label].astype(str) == str(plan.positive_label)).to_numpy().astype(int)
            labelled = np.array([int(y.sum()), int((y_pred == y).sum())], dtype=np.int64)
            histogram[0] = np.bincount(cell[y == 1], minlength=HIST_BINS)
            histogram[1] = np.bincount(cell[y == 0], minlength=HIST_BINS)
    groups = {}
    for a in plan.protected:
        if a not in chunk:
            continue
        frame = pd.DataFrame({"group": chunk[a].astype(str).to_numpy(), "n": 1, "predicted": y_pred,
                              "positives": 0 if y is None else y, "true_positives": 0 if y is None else y * y_pred})
        groups[a] = frame.groupby("group", sort=True).sum().astype(np.int64)
    if plan.sample_rows == 0:  # in memory the rows themselves are at hand
        sample = chunk.iloc[:0].assign(**{SCORE: score[:0], SAMPLE_KEY: np.zeros(0, dtype=np.uint64)})
    else:
        keys = _sample_keys(chunk, plan.seed)
        first = np.argsort(keys, kind="stable")[:plan.sample_rows]
        sample = chunk.iloc[first].assign(**{SCORE: score[first], SAMPLE_KEY: keys[first]})
    return WindowPartial(len(chunk), numeric, categorical, scores, predicted, labelled, histogram, groups,
                         timestamp_range(chunk, plan.timestamp), bottom_k(sample, plan.sample_rows))


@dataclass
class WindowSummary:
    """The reduced window, read by the monitoring check."""

    partial: WindowPartial
    window_plan: WindowPlan
    baseline_numeric: dict[str, np.ndarray]
    baseline_categorical: dict[str, pd.Series]
    baseline_scores: np.ndarray | None
    method: dict[str, Any]

    @property
    def rows(self) -> int:
        return self.partial.rows

    @property
    def streamed(self) -> bool:
        return self.method["backend"] != "memory"

    @property
    def plan(self) -> dict[str, Any]:
        """How the window was summarised (recorded as the dataset's `sample` block, as for a streamed audit)."""
        return self.method

    def binned(self, name: str) -> BinnedCounts:
        if name in self.window_plan.numeric:
            return drop_empty(BinnedCounts(numeric_labels(self.window_plan.numeric[name].edges), self.baseline_numeric[name],
                                           self.partial.numeric[name][0]))
        return drop_empty(counts_of(self.baseline_categorical[name], self.partial.categorical[name]))

    def ks(self, name: str) -> tuple[float, float]:
        return ks_from_cells(self.window_plan.numeric[name].grid, self.partial.numeric[name][1])

    def missing(self, name: str) -> int:
        return int(self.partial.numeric[name][0][-1])

    def score_binned(self) -> BinnedCounts:
        return drop_empty(BinnedCounts(numeric_labels(self.window_plan.scores.edges), self.baseline_scores,
                                       self.partial.scores[0]))

    def score_ks(self) -> tuple[float, float]:
        return ks_from_cells(self.window_plan.scores.grid, self.partial.scores[1])

    def sample_frame(self) -> pd.DataFrame:
        return self.partial.sample.drop(columns=[SAMPLE_KEY, SCORE])

    def sample_scores(self) -> np.ndarray:
        return self.partial.sample[SCORE].to_numpy()


def summarise(source: pd.DataFrame | Path, plan: WindowPlan, baseline: pd.DataFrame, base_scores: np.ndarray | None,
              backend: str = "memory", scheduler: str | None = None, chunk_rows: int = 500_000,
              columns: Sequence[str] | None = None) -> WindowSummary:
    """The window's counts: from a frame in memory, or streamed from a file through the local or Dask backend."""
    from .backends import run_dask, run_local
    if isinstance(source, pd.DataFrame):
        partial, method = map_window(source, plan), {"backend": "memory", "chunks": 1}
    elif backend == "dask":
        partial, stats = run_dask(Path(source), columns, plan, scheduler=scheduler, chunk_rows=chunk_rows,
                                  mapper=map_window)
        method = {"backend": "dask", "chunks": stats.chunks, "seconds": round(stats.seconds, 3)}
    else:
        partial, stats = run_local(Path(source), columns, plan, chunk_rows=chunk_rows, mapper=map_window)
        method = {"backend": "local", "chunks": stats.chunks, "seconds": round(stats.seconds, 3)}
    base_numeric = {n: numeric_counts(baseline[n], side.edges) for n, side in plan.numeric.items()}
    base_cat = {n: category_counts(baseline[n]) for n in plan.categorical}
    base_s = None if plan.scores is None else numeric_counts(pd.Series(base_scores), plan.scores.edges)
    return WindowSummary(partial, plan, base_numeric, base_cat, base_s, {
        **method, "sample": "bottom-k by content hash (independent of partitioning)",
        "sample_rows": len(partial.sample), "histogram_bins": HIST_BINS})
