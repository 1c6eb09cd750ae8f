"""Weak-slice discovery: data slices where a model errs significantly more than on the rest.

Candidate slices are single features and feature pairs (numeric features binned by quantiles,
categoricals by value).  Per-slice count tables come from `np.bincount` over integer slice codes,
so the cost is a few passes over the rows per feature pair.  Each slice is tested against its
complement -- error rate and false-negative rate with the one-sided Fisher exact test
(hypergeometric tail), calibration gap with Welch's t-test -- and the whole family of tests is
controlled with Benjamini-Hochberg.  Intervals reported for selected slices are
false-coverage-rate adjusted (Benjamini & Yekutieli 2005): level 1 - R*q/m for R selections
out of m tests, so the interval stays honest after picking the worst slices.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

Metric = Literal["error_rate", "false_negative_rate", "calibration_gap", "absolute_error"]
RATE_METRICS = ("error_rate", "false_negative_rate")
MISSING = "(missing)"
OTHER = "(other)"


def wilson_interval(k: np.ndarray | float, n: np.ndarray | float, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for k successes out of n (vectorised; NaN where n == 0)."""
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    confidence = np.asarray(confidence, dtype=float)
    z = stats.norm.isf((1 - confidence) / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z ** 2 / n
        centre = (p + z ** 2 / (2 * n)) / denom
        half = z / denom * np.sqrt(p * (1 - p) / n + z ** 2 / (4 * n ** 2))
    lo = np.where(k <= 0, 0.0, np.clip(centre - half, 0, 1))
    hi = np.where(k >= n, 1.0, np.clip(centre + half, 0, 1))   # exact at the ends (no rounding below p-hat)
    return lo, hi


def cohens_h(p1: np.ndarray, p2: np.ndarray) -> np.ndarray:
    """Effect size for two proportions: 2 asin sqrt(p1) - 2 asin sqrt(p2) (0.2 small, 0.5 medium, 0.8 large)."""
    return 2 * np.arcsin(np.sqrt(np.clip(p1, 0, 1))) - 2 * np.arcsin(np.sqrt(np.clip(p2, 0, 1)))


# -- discretisation ---------------------------------------------------------------------------

@dataclass
class Discretised:
    """One feature as integer codes (one per row) plus the condition each code stands for."""

    feature: str
    codes: np.ndarray
    conditions: list[dict[str, Any]]

    @property
    def n_levels(self) -> int:
        return len(self.conditions)


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def discretise(col: pd.Series, n_bins: int = 5, max_categories: int = 20, discrete_max: int = 10) -> Discretised:
    """Quantile bins for numeric columns (values holding >= 1/n_bins of rows keep their own level),
    values for categoricals and low-cardinality numerics; rare categories pool into '(other)'."""
    name = str(col.name)
    missing = col.isna().to_numpy()
    numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
    conditions: list[dict[str, Any]] = []
    codes = np.full(len(col), -1, dtype=np.int64)
    values = col[~missing]
    if numeric and values.nunique() > discrete_max:
        x = col.to_numpy(dtype=float)
        vc = values.value_counts()
        heavy = sorted(vc.index[vc >= len(col) / n_bins].tolist())
        for v in heavy:
            codes[(x == v) & ~missing] = len(conditions)
            conditions.append({"feature": name, "op": "==", "value": float(v), "label": f"{name} = {_fmt(v)}"})
        rest = ~missing & ~np.isin(x, heavy)
        if rest.any():
            edges = np.unique(np.quantile(x[rest], np.linspace(0, 1, n_bins + 1)))
            if len(edges) == 1:
                edges = np.array([edges[0], edges[0]])
            inner = edges[1:-1]
            bin_idx = np.searchsorted(inner, x[rest], side="right")
            base = len(conditions)
            codes[rest] = base + bin_idx
            for b in range(len(edges) - 1):
                lo, hi = float(edges[b]), float(edges[b + 1])
                last = b == len(edges) - 2
                label = f"{name} in [{_fmt(lo)}, {_fmt(hi)}{']' if last else ')'}"
                if heavy and any(lo < h < hi or h in (lo, hi) for h in heavy):
                    label += " (excl. " + ", ".join(_fmt(h) for h in heavy if lo <= h <= hi) + ")"
                conditions.append({"feature": name, "op": "in", "low": lo, "high": hi, "closed": "both" if last else "left",
                                   "label": label})
    else:
        as_text = values.astype(str) if not numeric else values
        vc = as_text.value_counts()
        keep = vc.index[: max_categories - 1] if len(vc) > max_categories else vc.index
        lookup = {v: i for i, v in enumerate(keep)}
        for v in keep:
            shown = v.item() if hasattr(v, "item") else v
            conditions.append({"feature": name, "op": "==", "value": shown, "label": f"{name} = {shown}"})
        mapped = as_text.map(lookup)
        idx = np.flatnonzero(~missing)
        if len(vc) > len(keep):
            other = len(conditions)
            conditions.append({"feature": name, "op": "not in", "value": [str(v) for v in keep],
                               "label": f"{name} = {OTHER}"})
            codes[idx] = mapped.fillna(other).to_numpy(dtype=np.int64)
        else:
            codes[idx] = mapped.to_numpy(dtype=np.int64)
    if missing.any():
        codes[missing] = len(conditions)
        conditions.append({"feature": name, "op": "is missing", "label": f"{name} {MISSING}"})
    return Discretised(name, codes, conditions)


# -- per-slice count tables ---------------------------------------------------------------------

@dataclass
class RowOutcomes:
    """Per-row quantities the slice metrics are sums of."""

    error: np.ndarray                      # 1 if the prediction is wrong (or absolute error, regression)
    positive: np.ndarray | None = None     # 1 if the true label is the positive class
    false_negative: np.ndarray | None = None
    residual: np.ndarray | None = None     # y - predicted probability (binary)
    regression: bool = False

    @classmethod
    def binary(cls, y_true: np.ndarray, y_pred: np.ndarray, score: np.ndarray | None) -> "RowOutcomes":
        y_true = np.asarray(y_true, dtype=float)
        y_pred = np.asarray(y_pred, dtype=float)
        return cls(error=(y_true != y_pred).astype(float), positive=y_true,
                   false_negative=((y_true == 1) & (y_pred == 0)).astype(float),
                   residual=None if score is None else y_true - np.asarray(score, dtype=float))

    @classmethod
    def multiclass(cls, y_true: np.ndarray, y_pred: np.ndarray) -> "RowOutcomes":
        return cls(error=(np.asarray(y_true).astype(str) != np.asarray(y_pred).astype(str)).astype(float))

    @classmethod
    def continuous(cls, y_true: np.ndarray, y_pred: np.ndarray) -> "RowOutcomes":
        return cls(error=np.abs(np.asarray(y_pred, float) - np.asarray(y_true, float)), regression=True)

    def weights(self) -> dict[str, np.ndarray]:
        w = {"n": np.ones_like(self.error), "errors": self.error}
        if self.regression:
            w["errors_sq"] = self.error ** 2
        if self.positive is not None:
            w["positives"] = self.positive
            w["false_negatives"] = self.false_negative
        if self.residual is not None:
            score = self.positive - self.residual
            w["resid"] = self.residual
            w["pvar"] = score * (1 - score)   # Var(y) if the model is calibrated
        return w


def slice_table(features: list[Discretised], outcomes: RowOutcomes, max_features: int = 2,
                min_size: int = 30) -> pd.DataFrame:
    """Count table for every single-feature and (if max_features == 2) feature-pair slice with at
    least `min_size` rows and at least `min_size` rows outside it."""
    weights = outcomes.weights()
    n_total = len(outcomes.error)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in [*weights, "f1", "l1", "f2", "l2"]}
    for order in range(1, max_features + 1):
        for combo in combinations(range(len(features)), order):
            fs = [features[i] for i in combo]
            shape = [f.n_levels for f in fs]
            code = fs[0].codes.copy()
            for f in fs[1:]:
                code = code * f.n_levels + f.codes
            size = int(np.prod(shape))
            cols = {k: np.bincount(code, weights=v, minlength=size) for k, v in weights.items()}
            keep = np.flatnonzero((cols["n"] >= min_size) & (n_total - cols["n"] >= min_size))
            if keep.size == 0:
                continue
            levels = np.unravel_index(keep, shape)
            for k, v in cols.items():
                parts[k].append(v[keep])
            parts["f1"].append(np.full(keep.size, combo[0]))
            parts["l1"].append(levels[0])
            parts["f2"].append(np.full(keep.size, combo[1] if order == 2 else -1))
            parts["l2"].append(levels[1] if order == 2 else np.full(keep.size, -1))
    if not parts["f1"]:
        return pd.DataFrame(columns=["n", "errors", "f1", "l1", "f2", "l2"])
    table = pd.DataFrame({k: np.concatenate(v) for k, v in parts.items()})
    table["n"] = table["n"].round().astype(np.int64)
    if max_features == 2:
        # a pair slice with the same rows as one of its single-feature parents adds nothing
        singles = table[table.f2 < 0].set_index(["f1", "l1"])["n"]
        pairs = table.f2 >= 0
        n_a = singles.reindex(pd.MultiIndex.from_arrays([table.f1, table.l1])).to_numpy()
        n_b = singles.reindex(pd.MultiIndex.from_arrays([table.f2, table.l2])).to_numpy()
        same = pairs & ((table.n.to_numpy() == n_a) | (table.n.to_numpy() == n_b))
        table = table[~same].reset_index(drop=True)
    return table


# -- tests --------------------------------------------------------------------------------------

def _rate_tests(k: np.ndarray, n: np.ndarray, K: float, N: float) -> dict[str, np.ndarray]:
    """Slice rate vs complement: one-sided Fisher exact test (P[X >= k], X ~ Hypergeom(N, K, n))."""
    k = np.rint(k).astype(np.int64)
    n = np.rint(n).astype(np.int64)
    K, N = int(round(K)), int(round(N))
    p = stats.hypergeom.sf(k - 1, N, K, n)
    rate = k / n
    rest = (K - k) / (N - n)
    return {"value": rate, "rest": rest, "p": np.clip(p, 0, 1), "effect": cohens_h(rate, rest), "k": k, "n_eff": n}


def _welch(s1: np.ndarray, s2: np.ndarray, n: np.ndarray, T1: float, T2: float, N: float,
           alternative: str) -> dict[str, np.ndarray]:
    """Welch's t-test of the slice mean against the complement mean from sums and sums of squares."""
    n_c = N - n
    m_s, m_c = s1 / n, (T1 - s1) / n_c
    with np.errstate(invalid="ignore", divide="ignore"):
        v_s = np.maximum(s2 - n * m_s ** 2, 0) / (n - 1)
        v_c = np.maximum((T2 - s2) - n_c * m_c ** 2, 0) / (n_c - 1)
        se2 = v_s / n + v_c / n_c
        t = (m_s - m_c) / np.sqrt(se2)
        df = se2 ** 2 / ((v_s / n) ** 2 / (n - 1) + (v_c / n_c) ** 2 / (n_c - 1))
        p = stats.t.sf(t, df) if alternative == "greater" else 2 * stats.t.sf(np.abs(t), df)
        d = (m_s - m_c) / np.sqrt((v_s + v_c) / 2)
    return {"value": m_s, "rest": m_c, "p": np.where(np.isfinite(p), p, 1.0), "effect": d, "sd": np.sqrt(v_s), "n_eff": n}


def _calibration_tests(resid: np.ndarray, pvar: np.ndarray, pos: np.ndarray, n: np.ndarray,
                       T_resid: float, T_pvar: float, N: float) -> dict[str, np.ndarray]:
    """Slice calibration gap (observed minus mean predicted) against the rest's, two-sided z-test.

    The variance is the model-implied one, sum p(1-p), not the sample variance of the residuals:
    with few positives in a slice the sample variance collapses and a t-test rejects far too often.
    """
    n_c = N - n
    m_s, m_c = resid / n, (T_resid - resid) / n_c
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(pvar / n ** 2 + (T_pvar - pvar) / n_c ** 2)
        z = (m_s - m_c) / se
        p = 2 * stats.norm.sf(np.abs(z))
        d = (m_s - m_c) / np.sqrt(T_pvar / N)
    pbar = (pos - resid) / n
    return {"value": m_s, "rest": m_c, "p": np.where(np.isfinite(p), p, 1.0), "effect": d, "k": pos, "pbar": pbar,
            "n_eff": n}


def _mean_ci(mean: np.ndarray, sd: np.ndarray, n: np.ndarray, confidence: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    t = stats.t.isf((1 - np.asarray(confidence)) / 2, np.maximum(n - 1, 1))
    half = t * sd / np.sqrt(n)
    return mean - half, mean + half


@dataclass
class SliceSearchResult:
    population: dict[str, float]
    tests: pd.DataFrame            # one row per (slice, metric) test, with p and q values
    weak: pd.DataFrame             # tests that are significant and practically worse
    groups: list[dict[str, Any]]   # merged weak slices, most severe first
    n_tests: int
    n_significant: int
    fcr_confidence: float | None
    features: list[str] = field(default_factory=list)
    discretised: list[Discretised] = field(default_factory=list, repr=False)

    def describe(self, rows: pd.DataFrame) -> list[str]:
        """Readable slice conditions for rows holding f1/l1/f2/l2 codes."""
        return [describe_slice(self.discretised, a, b, c, d)[0]
                for a, b, c, d in rows[["f1", "l1", "f2", "l2"]].itertuples(index=False)]


def describe_slice(features: list[Discretised], f1: int, l1: int, f2: int, l2: int) -> tuple[str, list[dict[str, Any]]]:
    conds = [features[f1].conditions[l1]] + ([features[f2].conditions[l2]] if f2 >= 0 else [])
    return " & ".join(c["label"] for c in conds), conds


def slice_masks(features: list[Discretised], rows: pd.DataFrame) -> np.ndarray:
    """Boolean (len(rows), n_rows) membership matrix for slices given as f1/l1/f2/l2 rows."""
    codes = np.stack([f.codes for f in features])
    f1, l1 = rows.f1.to_numpy(int), rows.l1.to_numpy(int)
    f2, l2 = rows.f2.to_numpy(int), rows.l2.to_numpy(int)
    mask = codes[f1] == l1[:, None]
    pair = f2 >= 0
    if pair.any():
        mask[pair] &= codes[f2[pair]] == l2[pair][:, None]
    return mask


def merge_overlapping(masks: np.ndarray, jaccard: float, containment: float = 1.01) -> list[list[int]]:
    """Greedy grouping in row order of `masks` (most important first).  A slice joins the group of
    an earlier representative when their rows overlap with Jaccard index >= `jaccard`, or when at
    least `containment` of its own rows lie inside the representative (a sharper sub-slice of the
    same problem); otherwise it starts a new group."""
    from scipy import sparse
    m = sparse.csr_matrix(masks.astype(np.float32))
    inter = (m @ m.T).toarray()
    sizes = np.diag(inter).copy()
    reps: list[int] = []
    groups: list[list[int]] = []
    for i in range(len(masks)):
        if reps:
            r = np.asarray(reps)
            shared = inter[r, i]
            jac = shared / np.maximum(sizes[r] + sizes[i] - shared, 1)
            inside = shared / max(sizes[i], 1)
            hit = np.flatnonzero((jac >= jaccard) | (inside >= containment))
            if hit.size:
                groups[int(hit[np.argmax(jac[hit])])].append(i)
                continue
        reps.append(i)
        groups.append([i])
    return groups


def _parent_values(tests: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """For each test of a pair slice, the same metric on its two single-feature parents (NaN if untested)."""
    singles = tests[tests.f2 < 0].set_index(["metric", "f1", "l1"])["value"]
    singles = singles[~singles.index.duplicated()]
    a = singles.reindex(pd.MultiIndex.from_arrays([tests.metric, tests.f1, tests.l1])).to_numpy(dtype=float)
    b = singles.reindex(pd.MultiIndex.from_arrays([tests.metric, tests.f2, tests.l2])).to_numpy(dtype=float)
    a[tests.f2.to_numpy() < 0] = np.nan
    b[tests.f2.to_numpy() < 0] = np.nan
    return a, b


def _severity_of_metric(metric: str, values: np.ndarray) -> np.ndarray:
    return np.abs(values) if metric == "calibration_gap" else values


def find_weak_slices(frame: pd.DataFrame, outcomes: RowOutcomes, *, metrics: list[str], n_bins: int = 5,
                     max_categories: int = 20, max_features: int = 2, min_size: int = 30, min_positives: int = 10,
                     fdr: float = 0.05, fdr_method: str = "bh", min_difference: float = 0.05,
                     min_calibration_difference: float = 0.05, min_effect: float = 0.2,
                     min_refinement: float = 0.1, max_share: float = 0.5, merge_jaccard: float = 0.5,
                     merge_containment: float = 0.8, rep_share: float = 0.5, confidence: float = 0.95,
                     max_merged: int = 2000) -> SliceSearchResult:
    """Search slices of `frame` (one row per outcome) for significantly worse model behaviour.

    A slice is *weak* on a metric when its test against the complement survives the FDR control,
    its value is worse than the population by the declared margin with at least `min_effect`
    effect size, and it holds at most `max_share` of the rows (a larger "slice" is the population).  A two-feature slice must
    also be a real refinement: it keeps at most (1 - min_refinement) of either parent's rows and
    is worse than both single-feature parents by the same margin, so "X & Y" is only reported when
    the combination adds something that X or Y alone does not show.
    """
    features = [discretise(frame[c], n_bins, max_categories) for c in frame.columns]
    features = [f for f in features if f.n_levels > 1]
    names = [f.feature for f in features]
    table = slice_table(features, outcomes, max_features, min_size)
    N = len(outcomes.error)
    totals = {k: float(v.sum()) for k, v in outcomes.weights().items()}
    population: dict[str, float] = {}
    parts = []
    base = table[["f1", "l1", "f2", "l2", "n"]]
    for metric in metrics:
        if metric == "error_rate" and not outcomes.regression:
            r = _rate_tests(table.errors.to_numpy(), table.n.to_numpy(), totals["errors"], N)
            population[metric] = totals["errors"] / N
            sub = np.ones(len(table), bool)
        elif metric == "false_negative_rate" and outcomes.positive is not None:
            pos = table.positives.to_numpy()
            sub = (pos >= min_positives) & (totals["positives"] - pos >= min_positives)
            r = _rate_tests(table.false_negatives.to_numpy(), np.maximum(pos, 1), totals["false_negatives"], totals["positives"])
            population[metric] = totals["false_negatives"] / max(totals["positives"], 1)
        elif metric == "calibration_gap" and outcomes.residual is not None:
            r = _calibration_tests(table.resid.to_numpy(), table.pvar.to_numpy(), table.positives.to_numpy(),
                                   table.n.to_numpy(dtype=float), totals["resid"], totals["pvar"], N)
            population[metric] = totals["resid"] / N
            sub = np.ones(len(table), bool)
        elif metric == "absolute_error" and outcomes.regression:
            r = _welch(table.errors.to_numpy(), table.errors_sq.to_numpy(), table.n.to_numpy(),
                       totals["errors"], totals["errors_sq"], N, "greater")
            population[metric] = totals["errors"] / N
            sub = np.ones(len(table), bool)
        else:
            continue
        part = base.copy()
        part["metric"] = metric
        for k, v in r.items():
            part[k] = v
        parts.append(part[sub])
    tests = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    m = len(tests)
    if m == 0:
        return SliceSearchResult(population, tests, tests, [], 0, 0, None, names, features)
    tests["q"] = stats.false_discovery_control(tests["p"].to_numpy(), method=fdr_method)
    significant = tests["q"].to_numpy() <= fdr
    R = int(significant.sum())
    fcr = fcr_level(R, m, 1 - confidence) if R else None
    tests["significant"] = significant
    is_cal = (tests["metric"] == "calibration_gap").to_numpy()
    pop = tests["metric"].map(population).to_numpy(dtype=float)
    value = tests["value"].to_numpy(dtype=float)
    margin = np.where(is_cal, min_calibration_difference, min_difference)
    worse = np.where(is_cal, np.abs(value), value)
    tests["population"] = pop
    tests["difference"] = worse - np.where(is_cal, np.abs(pop), pop)
    tests["effect"] = np.where(is_cal, np.abs(tests["effect"].to_numpy(dtype=float)), tests["effect"].to_numpy(dtype=float))
    weak = (significant & (tests["difference"].to_numpy() >= margin) & (tests["effect"].to_numpy() >= min_effect)
            & (tests["n"].to_numpy() <= max_share * N))
    if max_features == 2:
        pa, pb = _parent_values(tests)
        pa, pb = np.where(is_cal, np.abs(pa), pa), np.where(is_cal, np.abs(pb), pb)
        pair = tests.f2.to_numpy() >= 0
        single_n = tests[tests.f2 < 0].drop_duplicates(["f1", "l1"]).set_index(["f1", "l1"])["n"]
        na = single_n.reindex(pd.MultiIndex.from_arrays([tests.f1, tests.l1])).to_numpy(dtype=float)
        nb = single_n.reindex(pd.MultiIndex.from_arrays([tests.f2, tests.l2])).to_numpy(dtype=float)
        n = tests.n.to_numpy(dtype=float)
        refines = (n <= (1 - min_refinement) * na) & (n <= (1 - min_refinement) * nb)
        adds = (worse >= np.fmax(pa, pb) + margin) | (np.isnan(pa) & np.isnan(pb))
        weak &= ~pair | (refines & adds)
        tests["parent_max"] = np.fmax(pa, pb)
    tests["weak"] = weak
    # excess: how many more rows are affected than the population rate would predict
    n_eff = tests["n_eff"].to_numpy(dtype=float)
    tests["excess"] = n_eff * tests["difference"].to_numpy()
    selected = tests[weak].copy()
    if selected.empty:
        return SliceSearchResult(population, tests, selected, [], m, R, fcr, names, features)
    for suffix, level in (("", fcr), ("_marginal", confidence)):
        lo = np.empty(len(selected))
        hi = np.empty(len(selected))
        metric = selected["metric"].to_numpy()
        n_eff = selected["n_eff"].to_numpy(dtype=float)
        k = selected["k"].to_numpy(dtype=float) if "k" in selected else np.full(len(selected), np.nan)
        rate = np.isin(metric, RATE_METRICS)
        if rate.any():
            lo[rate], hi[rate] = wilson_interval(k[rate], n_eff[rate], level)
        cal = metric == "calibration_gap"
        if cal.any():  # Wilson for the observed rate (conservative for a Poisson-binomial sum) minus mean p
            pbar = selected["pbar"].to_numpy(dtype=float)[cal]
            wl, wh = wilson_interval(k[cal], n_eff[cal], level)
            lo[cal], hi[cal] = wl - pbar, wh - pbar
        mean = ~rate & ~cal
        if mean.any():
            lo[mean], hi[mean] = _mean_ci(selected["value"].to_numpy()[mean], selected["sd"].to_numpy()[mean],
                                          n_eff[mean], level)
        selected[f"ci_low{suffix}"], selected[f"ci_high{suffix}"] = lo, hi
    selected = selected.sort_values(["excess", "effect"], ascending=False).reset_index(drop=True)
    key = ["f1", "l1", "f2", "l2"]
    selected["slice"] = [describe_slice(features, a, b, c, d)[0] for a, b, c, d in selected[key].itertuples(index=False)]
    slices = selected.drop_duplicates(key).head(max_merged).reset_index(drop=True)
    groups_idx = merge_overlapping(slice_masks(features, slices), merge_jaccard, merge_containment)
    rows_of = {tuple(int(v) for v in k): pos for k, pos in selected.groupby(key, sort=False).indices.items()}
    cols = {c: selected[c].to_numpy() for c in ("metric", "value", "population", "rest", "difference", "effect",
                                                 "excess", "ci_low", "ci_high", "ci_low_marginal", "ci_high_marginal",
                                                 "n_eff", "p", "q")}
    group_of: dict[tuple[int, ...], int] = {}
    groups = []
    excess = slices["excess"].to_numpy(dtype=float)
    effect = slices["effect"].to_numpy(dtype=float)
    n_feats = np.where(slices["f2"].to_numpy() >= 0, 2, 1)
    slice_keys = [tuple(int(v) for v in row) for row in slices[key].to_numpy()]
    rep_cols = {c: slices[c].to_numpy() for c in ("slice", "n", "metric", "value")}
    for gi, members in enumerate(groups_idx, start=1):
        # Representative: among members holding at least `rep_share` of the group's top excess, the
        # sharpest (largest effect); effects within 0.1 count as equal and the simpler slice wins.
        near = [j for j in members if excess[j] >= rep_share * excess[members[0]]]
        sharpest = max(effect[j] for j in near)
        best = min((j for j in near if effect[j] >= sharpest - 0.1),
                   key=lambda j: (n_feats[j], -effect[j], members.index(j)))
        members = [best] + [j for j in members if j != best]
        size = int(rep_cols["n"][members[0]])
        rep_key = slice_keys[members[0]]
        desc, conds = describe_slice(features, *rep_key)
        metric_rows = [{
            "metric": cols["metric"][i], **{c: float(cols[c][i]) for c in ("value", "population", "rest", "difference",
                                                                            "effect", "excess")},
            "ci": [float(cols["ci_low"][i]), float(cols["ci_high"][i])],
            "ci_marginal": [float(cols["ci_low_marginal"][i]), float(cols["ci_high_marginal"][i])],
            "n_eff": int(cols["n_eff"][i]), "p_value": float(cols["p"][i]), "q_value": float(cols["q"][i])}
            for i in rows_of[rep_key]]
        related = [{"slice": rep_cols["slice"][j], "size": int(rep_cols["n"][j]), "metric": rep_cols["metric"][j],
                    "value": float(rep_cols["value"][j]), "effect": float(effect[j])} for j in members[1:]]
        for j in members:
            group_of[slice_keys[j]] = gi
        groups.append({"rank": gi, "slice": desc, "conditions": conds, "size": size, "share": size / N,
                       "features": [c["feature"] for c in conds], "metrics": metric_rows,
                       "primary": metric_rows[0]["metric"], "related": related, "n_related": len(related)})
    selected["group"] = [group_of.get(tuple(row)) for row in selected[key].to_numpy().tolist()]
    return SliceSearchResult(population, tests, selected, groups, m, R, fcr, names, features)


def fcr_level(n_selected: int, n_tests: int, alpha: float) -> float:
    """Benjamini-Yekutieli false-coverage-rate level for R of m selected parameters."""
    return 1 - n_selected * alpha / n_tests if n_selected and n_tests else 1 - alpha


def effect_label(h: float) -> str:
    a = abs(h)
    return "large" if a >= 0.8 else "medium" if a >= 0.5 else "small" if a >= 0.2 else "negligible"


__all__ = ["Discretised", "RowOutcomes", "SliceSearchResult", "cohens_h", "discretise", "effect_label",
           "fcr_level", "find_weak_slices", "merge_overlapping", "slice_masks", "slice_table", "wilson_interval"]
