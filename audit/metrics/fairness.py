"""Group fairness from a (group x true class x predicted class) count table.

Map-reduce shape: `count_table(chunk, ...)` runs on any data partition, tables add with `+`
(levels are aligned), and every metric below is a function of the dense count array,
vectorised over leading axes. Intervals and tests are in `fairness_inference`.
Comparisons follow Fairlearn's `between_groups` convention: difference = max - min,
ratio = min / max, over the groups that meet the minimum size.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

UNKNOWN = "unknown"
JOIN = "*"
RATES = ("selection_rate", "tpr", "fpr", "fnr", "precision", "accuracy", "base_rate")
DENOMINATOR = {"selection_rate": "n", "tpr": "positives", "fnr": "positives", "fpr": "negatives",
               "precision": "predicted_positives", "accuracy": "n", "base_rate": "n"}
LABEL_FREE_RATES = ("selection_rate",)
PARITY = {  # criterion -> per-group rates it compares (equalized odds takes the worse of two)
    "demographic_parity": ("selection_rate",),
    "equal_opportunity": ("tpr",),
    "equalized_odds": ("tpr", "fpr"),
    "predictive_parity": ("precision",),
}


# --- group labels -------------------------------------------------------------------------

def _fmt_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _is_bool(v: object) -> bool:
    return isinstance(v, (bool, np.bool_))


def numeric_bins(values: pd.Series, max_levels: int, q: int = 4) -> list[float] | None:
    """Quantile edges for a numeric attribute with more than `max_levels` values, else None."""
    s = values.dropna()
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values) or s.nunique() <= max_levels:
        return None
    edges = np.unique(np.quantile(s.to_numpy(dtype=float), np.linspace(0, 1, q + 1))[1:-1])
    return [float(e) for e in edges]


def group_labels(values: pd.Series, bins: Sequence[float] | None = None, unknown: str = UNKNOWN) -> pd.Series:
    """Readable string group labels: missing -> `unknown`, 1.0 -> "1", True -> "True", bins -> "[a, b)".

    Formatting runs once per distinct value (factorize), not once per row."""
    if bins:
        edges = [-np.inf, *bins, np.inf]
        names = [f"<{_fmt_number(bins[0])}"]
        names += [f"[{_fmt_number(a)}, {_fmt_number(b)})" for a, b in zip(bins[:-1], bins[1:])]
        names += [f">={_fmt_number(bins[-1])}"]
        values = pd.cut(values.astype(float), edges, right=False, labels=names)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    uniques = list(uniques)
    if bins or not uniques:
        fmt = str
    elif pd.api.types.is_bool_dtype(values) or all(_is_bool(u) for u in uniques):
        fmt = lambda v: str(bool(v))  # noqa: E731
    elif pd.api.types.is_numeric_dtype(values):
        fmt = lambda v: _fmt_number(float(v))  # noqa: E731
    else:
        fmt = lambda v: str(v).strip()  # noqa: E731
    names = np.array([fmt(u) for u in uniques] + [unknown], dtype=object)
    return pd.Series(names[codes], index=values.index, dtype=object).astype(str)


# --- the count table (map: per chunk; reduce: +) -----------------------------------------

@dataclass(frozen=True)
class CountTable:
    """Counts with shape (*[len(l) for l in levels], K, K): attribute levels, true class, predicted class."""

    attributes: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]
    classes: tuple[str, ...]
    counts: np.ndarray

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def __add__(self, other: "CountTable") -> "CountTable":
        if other.attributes != self.attributes or other.classes != self.classes:
            raise ValueError("count tables over different attributes or classes cannot be added")
        levels = tuple(tuple(dict.fromkeys(a + b)) for a, b in zip(self.levels, other.levels))
        out = np.zeros([len(lv) for lv in levels] + [len(self.classes)] * 2, dtype=np.int64)
        for t in (self, other):
            idx = np.ix_(*[[lv.index(x) for x in tl] for lv, tl in zip(levels, t.levels)],
                         range(len(self.classes)), range(len(self.classes)))
            out[idx] += t.counts
        return CountTable(self.attributes, levels, self.classes, out)

    def restrict(self, attrs: Sequence[str], classes: Sequence[str] | None = None) -> "CountTable":
        """The table summed down to `attrs` (in that order), optionally relabelling the classes."""
        counts = self.marginal(self.counts, attrs).reshape(
            [len(self.levels[self.attributes.index(a)]) for a in attrs] + [len(self.classes)] * 2)
        return CountTable(tuple(attrs), tuple(self.levels[self.attributes.index(a)] for a in attrs),
                          tuple(classes or self.classes), counts)

    def groups(self, attrs: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """Group labels for `attrs` (joined with '*') and their flat index into `marginal(..., attrs)`."""
        names = [JOIN.join(p) for p in itertools.product(*[self.levels[self.attributes.index(a)] for a in attrs])]
        n = self.marginal(self.counts, attrs).sum(axis=(-2, -1))
        keep = np.flatnonzero(n > 0)  # an intersection may be empty; it is not a group
        return [names[i] for i in keep], keep

    def marginal(self, arr: np.ndarray, attrs: Sequence[str]) -> np.ndarray:
        """Sum `arr` (this table's shape with any leading axes) down to (..., G, K, K) over `attrs`."""
        lead = arr.ndim - self.counts.ndim
        drop = tuple(lead + i for i, a in enumerate(self.attributes) if a not in attrs)
        out = arr.sum(axis=drop) if drop else arr
        kept = [a for a in self.attributes if a in attrs]
        out = np.moveaxis(out, [lead + kept.index(a) for a in attrs], [lead + i for i in range(len(attrs))])
        return out.reshape(out.shape[:lead] + (-1,) + out.shape[-2:])


def count_table(labels: pd.DataFrame, y: np.ndarray, y_pred: np.ndarray, classes: Sequence[str],
                levels: Sequence[Sequence[str]] | None = None) -> CountTable:
    """Count rows per (attribute levels, y, y_pred); `labels` holds string group labels, y/y_pred class indices."""
    attrs = tuple(str(c) for c in labels.columns)
    k = len(classes)
    if levels is None:
        levels = [sorted(labels[c].unique().tolist()) for c in labels.columns]
    levels = tuple(tuple(lv) for lv in levels)
    codes = [pd.Categorical(labels[c], categories=list(lv)).codes.astype(np.int64) for c, lv in zip(labels.columns, levels)]
    if any((c < 0).any() for c in codes):
        raise ValueError("a group label is not among the given levels")
    shape = [len(lv) for lv in levels] + [k, k]
    flat = np.ravel_multi_index([*codes, np.asarray(y, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)], shape)
    counts = np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape)
    return CountTable(attrs, levels, tuple(str(c) for c in classes), counts)


# --- metrics on count arrays (..., G, K, K) ------------------------------------------------

def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.divide(a, b, out=np.full(np.broadcast(a, b).shape, np.nan), where=b != 0)


def group_rates(C: np.ndarray, pos: int, labelled: bool = True) -> dict[str, np.ndarray]:
    """One-vs-rest confusion rates per group for class index `pos` (binary: the positive class)."""
    n = C.sum(axis=(-2, -1))
    tp = C[..., pos, pos]
    p = C[..., pos, :].sum(axis=-1)
    pp = C[..., :, pos].sum(axis=-1)
    fn, fp = p - tp, pp - tp
    tn = n - p - fp
    out = {"n": n.astype(float), "predicted_positives": pp.astype(float), "selection_rate": _div(pp, n)}
    if not labelled:
        nan = np.full(n.shape, np.nan)
        return out | {r: nan for r in (*RATES, "positives", "negatives") if r not in out}
    return out | {"positives": p.astype(float), "negatives": (n - p).astype(float), "tpr": _div(tp, p), "fpr": _div(fp, n - p), "fnr": _div(fn, p), "precision": _div(tp, pp),
                  "accuracy": _div(tp + tn, n), "base_rate": _div(p, n)}


def _masked(values: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    return np.where(eligible, values, np.nan)


def between_groups(values: np.ndarray, eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fairlearn `between_groups`: (max - min, min / max) over eligible groups, NaN-aware."""
    v = _masked(values, eligible)
    hi, lo = np.fmax.reduce(v, axis=-1), np.fmin.reduce(v, axis=-1)
    return hi - lo, _div(lo, hi)


def parity(rates: dict[str, np.ndarray], eligible: np.ndarray) -> dict[str, np.ndarray]:
    """`<criterion>_difference` and `<criterion>_ratio` for every criterion in PARITY."""
    out: dict[str, np.ndarray] = {}
    for crit, names in PARITY.items():
        diffs, ratios = zip(*(between_groups(rates[r], eligible) for r in names))
        out[f"{crit}_difference"] = np.fmax.reduce(np.stack(diffs), axis=0)
        out[f"{crit}_ratio"] = np.fmin.reduce(np.stack(ratios), axis=0)
    return out


def versus_reference(values: np.ndarray, ref: int) -> tuple[np.ndarray, np.ndarray]:
    """Signed difference (group - reference) and ratio (group / reference) per group."""
    r = values[..., ref:ref + 1]
    return values - r, _div(values, r)


def classification_stats(C: np.ndarray, pos: int, eligible: np.ndarray, ref: int,
                         labelled: bool = True) -> dict[str, np.ndarray]:
    """Everything the fairness check reports for one class, for observed counts or replicates."""
    rates = group_rates(C, pos, labelled)
    out = {f"group.{k}": v for k, v in rates.items()}
    out |= parity(rates, eligible)
    for r in ("selection_rate", "tpr", "fpr", "precision"):
        d, q = versus_reference(rates[r], ref)
        out[f"ref_difference.{r}"], out[f"ref_ratio.{r}"] = d, q
    return out


# --- regression: per-group sums (also partition-additive) ----------------------------------

def regression_sums(codes: np.ndarray, n_groups: int, pred: np.ndarray, y: np.ndarray | None) -> np.ndarray:
    """(G, 5) sums of [1, prediction, |error|, prediction^2, error^2] per group."""
    err = np.abs(pred - y) if y is not None else np.full(len(pred), np.nan)
    cols = [np.ones(len(pred)), pred.astype(float), err, pred.astype(float) ** 2, err ** 2]
    return np.stack([np.bincount(codes, weights=c, minlength=n_groups) for c in cols], axis=-1)


def regression_stats(S: np.ndarray, eligible: np.ndarray, ref: int) -> dict[str, np.ndarray]:
    n = S[..., 0]
    out = {"group.n": n, "group.mean_prediction": _div(S[..., 1], n), "group.mae": _div(S[..., 2], n)}
    for m in ("mean_prediction", "mae"):
        out[f"{m}_difference"], out[f"{m}_ratio"] = between_groups(out[f"group.{m}"], eligible)
        out[f"ref_difference.{m}"], out[f"ref_ratio.{m}"] = versus_reference(out[f"group.{m}"], ref)
    return out
