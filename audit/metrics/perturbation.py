"""Perturbation robustness and greedy evasion for tabular models (pure: a predict function in, numbers out).

`predict(frame) -> array` returns class probabilities (n, k) for classifiers or predictions (n,)
for regressors, on raw columns.  Every perturbation stays inside what the caller's `ColumnRule`s
allow: immutable columns have no rule and are never touched; numeric columns move by a fixed step
(a fraction of their spread) inside a plausible range; categoricals move to a neighbouring category
(ordered) or another frequent one; values can be blanked to test missing-input handling.
A column that another column determines in the data (`Link`) follows it, so perturbed rows stay
ones that can occur.  All perturbed copies of a sample are scored in one batched call.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .slices import wilson_interval

PredictFn = Callable[[pd.DataFrame], np.ndarray]


@dataclass(frozen=True)
class ColumnRule:
    """What may happen to one column, and how far."""

    name: str
    kind: Literal["numeric", "categorical"]
    allowed: tuple[str, ...]
    step: float = 0.0                  # numeric: shift size in column units (or a fraction of |x| if relative)
    relative: bool = False             # numeric: the step scales with the value (point-mass columns such as gains)
    spread: float = 1.0                # numeric: IQR (or std when the IQR is 0); unit of evasion cost
    spread_kind: str = "IQR"
    low: float = -np.inf               # numeric: plausible range
    high: float = np.inf
    integer: bool = False
    categories: tuple[Any, ...] = ()   # categorical: values in order (ordered) or by frequency
    weights: tuple[float, ...] = ()
    ordered: bool = False

    @property
    def value_kind(self) -> str:
        return "shift" if self.kind == "numeric" else "swap"

    def describe(self, kind: str) -> str:
        if kind == "missing":
            return "value set to missing"
        if kind == "swap":
            return "to a neighbouring category" if self.ordered else "to another category, drawn by frequency"
        rounding = ", integers rounded at random to keep the mean step" if self.integer else ""
        if self.relative:
            return f"±{self.step:.0%} of the value (over half the values are identical){rounding}, within [{self.low:g}, {self.high:g}]"
        return (f"±{self.step:.4g} ({self.step / self.spread:.2g} × {self.spread_kind} {self.spread:.4g}){rounding}, "
                f"within [{self.low:g}, {self.high:g}]")


def column_spread(x: np.ndarray) -> tuple[float, str]:
    """Inter-quartile range, falling back to the standard deviation, then 1."""
    x = x[np.isfinite(x)]
    if x.size == 0:
        return 1.0, "unit"
    q75, q25 = np.percentile(x, [75, 25])
    if q75 > q25:
        return float(q75 - q25), "IQR"
    sd = float(np.std(x))
    return (sd, "std") if sd > 0 else (1.0, "unit")


def build_rules(X: pd.DataFrame, kinds: dict[str, str], *, immutable: set[str], step_fraction: float,
                missing: bool = True, overrides: dict[str, dict[str, Any]] | None = None) -> tuple[list[ColumnRule], dict[str, str]]:
    """Rules for every model column that may change, and the reason each other column may not.

    `overrides[column]` may set: perturbations (list of shift/swap/missing), step (column units,
    or a fraction of the value in relative mode), mode (absolute/relative; default relative only
    when over half the values are identical), range ([low, high]), order (categories in order).
    """
    overrides = overrides or {}
    rules: list[ColumnRule] = []
    skipped: dict[str, str] = {}
    for name, kind in kinds.items():
        if name in immutable:
            skipped[name] = "immutable"
            continue
        o = overrides.get(name, {})
        default = ("shift" if kind == "numeric" else "swap",) + (("missing",) if missing else ())
        allowed = tuple(o.get("perturbations", default))
        if not allowed:
            skipped[name] = "no perturbation allowed by the policy"
            continue
        col = X[name]
        if kind == "numeric":
            x = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
            finite = x[np.isfinite(x)]
            if finite.size == 0:
                skipped[name] = "no observed values"
                continue
            spread, spread_kind = column_spread(finite)
            integer = bool(np.all(np.mod(finite, 1) == 0))
            mode = o.get("mode") or ("relative" if spread_kind != "IQR" else "absolute")
            relative = mode == "relative"
            if o.get("step") is not None:
                step = float(o["step"])
            else:
                step = step_fraction if relative else step_fraction * spread
            low, high = o.get("range") or (float(finite.min()), float(finite.max()))
            rules.append(ColumnRule(name, "numeric", allowed, step=step, relative=relative, spread=spread,
                                    spread_kind=spread_kind, low=float(low), high=float(high), integer=integer))
        else:
            vc = col.dropna().astype(str).value_counts()
            order = o.get("order")
            if order is None and isinstance(col.dtype, pd.CategoricalDtype) and col.dtype.ordered:
                order = [str(c) for c in col.dtype.categories]
            if order is not None:
                cats = tuple(str(c) for c in order)
                weights = tuple(float(vc.get(c, 0)) for c in cats)
            else:
                cats, weights = tuple(vc.index.tolist()), tuple(float(v) for v in vc.to_numpy())
            if len(cats) < 2 and "swap" in allowed:
                allowed = tuple(a for a in allowed if a != "swap")
                if not allowed:
                    skipped[name] = "a single observed category"
                    continue
            rules.append(ColumnRule(name, "categorical", allowed, categories=cats, weights=weights,
                                    ordered=order is not None))
    return rules, skipped


# -- linked columns ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Link:
    """`target` is a function of `source` in the audited rows (education -> education_num): when a
    perturbation changes `source`, `target` follows, so no perturbed row is one that cannot occur."""

    source: str
    target: str
    keys: tuple[Any, ...]       # source values: sorted floats (numeric) or strings
    values: tuple[Any, ...]
    numeric: bool

    def follow(self, source: np.ndarray, current: np.ndarray) -> np.ndarray:
        """Target values for `source` values; missing or unknown sources keep `current`."""
        out = np.asarray(current, dtype=object).copy()
        vals = np.asarray(self.values, dtype=object)
        if self.numeric:
            x = pd.to_numeric(pd.Series(source), errors="coerce").to_numpy(dtype=float)
            keys = np.asarray(self.keys, dtype=float)
            ok = np.isfinite(x)
            pos = np.clip(np.searchsorted(keys, x[ok]), 1, len(keys) - 1)
            nearest = np.where(np.abs(keys[pos - 1] - x[ok]) <= np.abs(keys[pos] - x[ok]), pos - 1, pos)
            out[ok] = vals[nearest]
            return out
        index = {k: i for i, k in enumerate(self.keys)}
        for i, v in enumerate(source):
            j = None if v is None or (isinstance(v, float) and np.isnan(v)) else index.get(str(v))
            if j is not None:
                out[i] = vals[j]
        return out

    def describe(self) -> str:
        return f"{self.target} follows {self.source}"


def find_links(X: pd.DataFrame, rules: list[ColumnRule], *, max_levels: int = 50, min_support: int = 5) -> list[Link]:
    """Columns that another column determines in `X`: for a perturbable `source` with at most
    `max_levels` values, each seen at least `min_support` times, every source value comes with one
    target value, and the target takes at least two values."""
    codes = {c: pd.factorize(X[c].astype(str).where(X[c].notna()), use_na_sentinel=True)[0] for c in X.columns}
    links = []
    for r in rules:
        a = codes[r.name]
        seen = a >= 0
        levels, counts = np.unique(a[seen], return_counts=True)
        if not 2 <= len(levels) <= max_levels or counts.min() < min_support:
            continue
        for target in X.columns:
            b = codes[target]
            if target == r.name or len(np.unique(b[seen])) < 2:
                continue
            pairs = np.unique(a[seen].astype(np.int64) * (b.max() + 2) + b[seen])
            if len(pairs) != len(levels):
                continue
            first = pd.DataFrame({"s": X[r.name][seen].to_numpy(), "t": X[target][seen].to_numpy()}).drop_duplicates("s")
            if r.kind == "numeric":
                first = first.assign(s=pd.to_numeric(first["s"], errors="coerce")).dropna().sort_values("s")
                keys = tuple(float(v) for v in first["s"])
            else:
                keys = tuple(str(v) for v in first["s"])
            links.append(Link(r.name, target, keys, tuple(first["t"]), r.kind == "numeric"))
    return links


def follow_links(frame: pd.DataFrame, changed: str, links: Sequence[Link], rows: np.ndarray | None = None) -> None:
    """Update, in place, the columns that follow `changed` (in `rows`, or every row)."""
    for link in links:
        if link.source != changed:
            continue
        sel = slice(None) if rows is None else rows
        col = frame[link.target].astype(object).to_numpy().copy()
        col[sel] = link.follow(frame[changed].to_numpy()[sel], col[sel])
        frame[link.target] = pd.Series(col, index=frame.index).infer_objects()


# -- single perturbations -------------------------------------------------------------------------

def shift_values(x: np.ndarray, rule: ColumnRule, rng: np.random.Generator) -> np.ndarray:
    """Move each value by +/- one step (random sign), reflecting at the plausible range.  Integer
    columns move by floor(step) or floor(step) + 1 at random, so the mean step is kept."""
    x = np.asarray(x, dtype=float)
    mag = rule.step * np.abs(x) if rule.relative else np.full(len(x), rule.step)
    if rule.integer:
        mag = np.floor(mag) + (rng.random(len(x)) < mag - np.floor(mag))
    sign = rng.choice([-1.0, 1.0], size=len(x))
    new = x + sign * mag
    out = (new < rule.low) | (new > rule.high)
    new[out] = x[out] - sign[out] * mag[out]
    new = np.clip(new, rule.low, rule.high)
    return np.where(np.isfinite(x), new, x)


def swap_values(x: np.ndarray, rule: ColumnRule, rng: np.random.Generator) -> np.ndarray:
    """Ordered: one category up or down.  Unordered: another category drawn by frequency.
    Missing values stay missing; labels outside the known categories get a frequency draw."""
    x = np.asarray(x, dtype=object)
    series = pd.Series(x)
    missing = series.isna().to_numpy()
    cats = np.asarray(rule.categories, dtype=object)
    k = len(cats)
    pos = series.astype(str).map({c: i for i, c in enumerate(cats)}).to_numpy(dtype=float)
    known = np.isfinite(pos) & ~missing
    w = np.asarray(rule.weights, dtype=float)
    w = w / w.sum() if w.sum() > 0 else np.full(k, 1 / k)
    out = x.copy()
    if rule.ordered:
        p = pos[known].astype(int)
        move = rng.choice([-1, 1], size=p.size)
        q = p + move
        q = np.where((q < 0) | (q >= k), p - move, q)
        out[known] = cats[np.clip(q, 0, k - 1)]
    else:
        for i in range(k):
            rows = np.flatnonzero(known & (pos == i))
            wi = w.copy()
            wi[i] = 0
            if rows.size and wi.sum() > 0:
                out[rows] = cats[rng.choice(k, size=rows.size, p=wi / wi.sum())]
    unknown = ~known & ~missing
    if unknown.any():
        out[unknown] = cats[rng.choice(k, size=int(unknown.sum()), p=w)]
    return out


def blank(x: np.ndarray, rule: ColumnRule) -> np.ndarray:
    return np.full(len(x), np.nan) if rule.kind == "numeric" else np.full(len(x), None, dtype=object)


def perturb(X: pd.DataFrame, rule: ColumnRule, kind: str, rng: np.random.Generator,
            links: Sequence[Link] = ()) -> pd.DataFrame:
    """One column perturbed (the columns linked to it follow a shift or swap; a blank stays alone)."""
    out = X.copy()
    x = X[rule.name].to_numpy()
    if kind == "shift":
        out[rule.name] = shift_values(x, rule, rng)
    elif kind == "swap":
        out[rule.name] = swap_values(x, rule, rng)
    elif kind == "missing":
        out[rule.name] = blank(x, rule)
        return out
    else:
        raise ValueError(f"unknown perturbation {kind!r}")
    follow_links(out, rule.name, links)
    return out


def perturb_jointly(X: pd.DataFrame, rules: list[ColumnRule], rng: np.random.Generator, swap_prob: float,
                    links: Sequence[Link] = ()) -> pd.DataFrame:
    """Every shiftable numeric column moves one step; each swappable categorical swaps with `swap_prob`.
    A column that follows an earlier-perturbed column is set by the link, not perturbed itself."""
    out = X.copy()
    following: set[str] = set()
    for r in rules:
        if r.name in following:
            continue
        x = X[r.name].to_numpy()
        if r.kind == "numeric" and "shift" in r.allowed:
            out[r.name] = shift_values(x, r, rng)
        elif r.kind == "categorical" and "swap" in r.allowed and swap_prob > 0:
            hit = rng.random(len(x)) < swap_prob
            col = x.astype(object).copy()
            col[hit] = swap_values(x[hit], r, rng)
            out[r.name] = col
        else:
            continue
        follow_links(out, r.name, links)
        following |= {link.target for link in links if link.source == r.name}
    return out


def blank_one_per_row(X: pd.DataFrame, rules: list[ColumnRule], rng: np.random.Generator) -> pd.DataFrame:
    """Each row loses one randomly chosen (missing-allowed) value."""
    eligible = [r for r in rules if "missing" in r.allowed]
    out = X.copy()
    pick = rng.integers(0, len(eligible), size=len(X))
    for j, r in enumerate(eligible):
        rows = pick == j
        if rows.any():
            col = out[r.name].astype(float if r.kind == "numeric" else object).to_numpy().copy()
            col[rows] = np.nan if r.kind == "numeric" else None
            out[r.name] = col
    return out


# -- outputs and summaries ------------------------------------------------------------------------

def as_matrix(out: np.ndarray) -> np.ndarray:
    out = np.asarray(out, dtype=float)
    return out[:, None] if out.ndim == 1 else out


def decisions(P: np.ndarray) -> np.ndarray | None:
    return P.argmax(axis=1) if P.shape[1] > 1 else None


def output_change(P0: np.ndarray, P1: np.ndarray) -> np.ndarray:
    """Total-variation distance between probability vectors (|delta p| for binary), |delta| for regression."""
    if P0.shape[1] == 1:
        return np.abs(P1[:, 0] - P0[:, 0])
    return 0.5 * np.abs(P1 - P0).sum(axis=1)


def score_many(predict: PredictFn, frames: list[pd.DataFrame]) -> list[np.ndarray]:
    """Score several equally-columned frames with one model call."""
    if not frames:
        return []
    P = as_matrix(predict(pd.concat(frames, ignore_index=True)))
    cuts = np.cumsum([len(f) for f in frames])[:-1]
    return np.split(P, cuts)


def t_interval(values: np.ndarray, confidence: float) -> tuple[float, float, float]:
    v = np.asarray(values, dtype=float)
    m = float(v.mean()) if v.size else float("nan")
    if v.size < 2:
        return m, m, m
    half = float(stats.t.isf((1 - confidence) / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
    return m, m - half, m + half


def summarise(P0: np.ndarray, P1: np.ndarray, changed: np.ndarray, confidence: float) -> dict[str, Any]:
    n = len(P0)
    delta = output_change(P0, P1)
    mean, lo, hi = t_interval(delta, confidence)
    row: dict[str, Any] = {"n": n, "changed": float(np.mean(changed)) if n else 0.0,
                           "mean_change": mean, "mean_change_ci_low": lo, "mean_change_ci_high": hi}
    d0, d1 = decisions(P0), decisions(P1)
    if d0 is not None:
        flips = d0 != d1
        k = int(flips.sum())
        clo, chi = wilson_interval(k, n, confidence)
        row.update({"flips": k, "flip_rate": k / n if n else float("nan"), "ci_low": float(clo), "ci_high": float(chi)})
        if P0.shape[1] == 2:
            row["flips_to_positive"] = int((flips & (d1 == 1)).sum())
            row["flips_to_negative"] = int((flips & (d1 == 0)).sum())
    return row


def _changed(a: pd.Series, b: pd.Series) -> np.ndarray:
    same = (a.astype(object).to_numpy() == b.astype(object).to_numpy()) | (a.isna().to_numpy() & b.isna().to_numpy())
    return ~same


@dataclass
class RobustnessReport:
    baseline: np.ndarray
    joint: dict[str, Any]
    missing_one: dict[str, Any] | None
    features: list[dict[str, Any]]
    errors: dict[str, str] = field(default_factory=dict)


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:300] if text else ''}"


def robustness_report(predict: PredictFn, X: pd.DataFrame, rules: list[ColumnRule], rng: np.random.Generator, *,
                      swap_prob: float = 0.02, confidence: float = 0.95, links: Sequence[Link] = ()) -> RobustnessReport:
    """Flip rates and output changes: all rules at once (joint), each column alone, and missing values."""
    X = X.reset_index(drop=True)
    value_frames: list[pd.DataFrame] = [X, perturb_jointly(X, rules, rng, swap_prob, links)]
    value_keys: list[tuple[str, str]] = []
    for r in rules:
        if r.value_kind in r.allowed:
            value_frames.append(perturb(X, r, r.value_kind, rng, links))
            value_keys.append((r.name, r.value_kind))
    outs = score_many(predict, value_frames)
    P0 = outs[0]
    joint_changed = np.zeros(len(X), bool)
    for r in rules:
        joint_changed |= _changed(X[r.name], value_frames[1][r.name])
    joint = summarise(P0, outs[1], joint_changed, confidence)
    rule_of = {r.name: r for r in rules}
    features = []
    for (name, kind), frame, P1 in zip(value_keys, value_frames[2:], outs[2:]):
        row = {"feature": name, "kind": kind, **summarise(P0, P1, _changed(X[name], frame[name]), confidence)}
        rule = rule_of[name]
        row["step"] = rule.step if kind == "shift" else None
        row["how"] = rule.describe(kind)
        features.append(row)
    errors: dict[str, str] = {}
    missing_one = None
    miss_rules = [r for r in rules if "missing" in r.allowed]
    if miss_rules:
        frames = [perturb(X, r, "missing", rng) for r in miss_rules]
        try:
            miss_outs = score_many(predict, frames)
            ok = list(zip(miss_rules, miss_outs))
        except Exception:  # the model rejects missing values somewhere: find out where
            ok = []
            for r, f in zip(miss_rules, frames):
                try:
                    ok.append((r, as_matrix(predict(f))))
                except Exception as e:
                    errors[r.name] = _first_line(e)
        for r, P1 in ok:
            features.append({"feature": r.name, "kind": "missing",
                             **summarise(P0, P1, ~X[r.name].isna().to_numpy(), confidence),
                             "step": None, "how": r.describe("missing")})
        good = [r for r, _ in ok]
        if good:
            blanked = blank_one_per_row(X, good, rng)
            try:
                P1 = as_matrix(predict(blanked))
                missing_one = summarise(P0, P1, np.ones(len(X), bool), confidence)
                missing_one["columns"] = [r.name for r in good]
            except Exception as e:
                errors["(one value per row)"] = _first_line(e)
    return RobustnessReport(P0, joint, missing_one, features, errors)


# -- greedy evasion -------------------------------------------------------------------------------

@dataclass
class EvasionReport:
    attempted: int
    succeeded: int
    success_rate: float
    ci: tuple[float, float]
    median_cost: float | None
    median_changes: float | None
    queries: int
    by_decision: list[dict[str, Any]]
    feature_use: list[dict[str, Any]]
    records: list[dict[str, Any]]


def _candidates(rule: ColumnRule, x: np.ndarray, grid: tuple[float, ...], max_categories: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidate values (rows x candidates, object) and their cost in spreads (categorical change = 1)."""
    n = len(x)
    if rule.kind == "numeric":
        xs = np.asarray(x, dtype=float)
        offs = np.concatenate([-np.asarray(grid), np.asarray(grid)]) * rule.spread
        vals = np.clip(xs[:, None] + offs[None, :], rule.low, rule.high)
        if rule.integer:
            vals = np.round(vals)
        cost = np.abs(vals - xs[:, None]) / rule.spread
        cost[~np.isfinite(cost) | (cost == 0)] = np.nan   # no-op or missing start: not a candidate
        return vals.astype(object), cost
    cats = np.asarray(rule.categories, dtype=object)
    if rule.ordered:
        text = pd.Series(x).astype(str).map({c: i for i, c in enumerate(cats)}).to_numpy(dtype=float)
        offs = np.array([-2, -1, 1, 2])
        idx = text[:, None] + offs[None, :]
        valid = (idx >= 0) & (idx < len(cats)) & np.isfinite(idx)
        vals = cats[np.clip(np.nan_to_num(idx, nan=0), 0, len(cats) - 1).astype(int)]
        cost = np.where(valid, 1.0, np.nan)
        return vals, cost
    top = cats[:max_categories]
    vals = np.tile(top, (n, 1))
    cost = np.where(vals == pd.Series(x).astype(str).to_numpy()[:, None], np.nan, 1.0)
    return vals, cost


def greedy_evasion(predict: PredictFn, X: pd.DataFrame, rules: list[ColumnRule], *, max_changes: int = 3,
                   grid: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0), max_categories: int = 10,
                   confidence: float = 0.95, target: int | None = None, links: Sequence[Link] = ()) -> EvasionReport:
    """For each row, greedily change one column at a time (shift within range or swap category),
    each step taking the candidate that most reduces the margin of the original decision, until
    the decision flips or `max_changes` columns are used.  When several candidates flip it, the
    cheapest wins.  The change found is an upper bound on the minimal one.  `target`: only rows
    whose original decision differs from this class index are attacked."""
    X = X.reset_index(drop=True)
    usable = [r for r in rules if r.value_kind in r.allowed]
    P0 = as_matrix(predict(X))
    d0 = decisions(P0)
    if d0 is None or not usable or len(X) == 0:
        return EvasionReport(0, 0, float("nan"), (float("nan"), float("nan")), None, None, 0, [], [], [])
    rows = np.flatnonzero(d0 != target) if target is not None else np.arange(len(X))
    X = X.iloc[rows].reset_index(drop=True)
    P0, d0 = P0[rows], d0[rows]
    n = len(X)
    current = X.copy()
    for r in usable:
        if r.kind == "numeric":
            current[r.name] = current[r.name].astype(float)
        else:
            current[r.name] = current[r.name].astype(object)
    used = np.zeros((n, len(usable)), bool)
    cost = np.zeros(n)
    done = np.zeros(n, bool)
    stuck = np.zeros(n, bool)
    queries = np.zeros(n, int)

    def margin(P: np.ndarray, d: np.ndarray) -> np.ndarray:
        own = P[np.arange(len(d)), d]
        other = P.copy()
        other[np.arange(len(d)), d] = -np.inf
        return own - other.max(axis=1)

    cur_margin = margin(P0, d0)
    changes: list[list[tuple[str, Any, Any]]] = [[] for _ in range(n)]
    for _ in range(max_changes):
        active = np.flatnonzero(~done & ~stuck)
        if active.size == 0:
            break
        frames, meta_row, meta_rule, meta_val, meta_cost = [], [], [], [], []
        for j, r in enumerate(usable):
            idx = active[~used[active, j]]
            if idx.size == 0:
                continue
            vals, c = _candidates(r, current[r.name].to_numpy()[idx], grid, max_categories)
            ok = np.isfinite(c)
            ri, ci = np.nonzero(ok)
            if ri.size == 0:
                continue
            base = current.iloc[idx[ri]].reset_index(drop=True)
            base[r.name] = pd.Series(vals[ri, ci], dtype=float if r.kind == "numeric" else object)
            follow_links(base, r.name, links)
            frames.append(base)
            meta_row.append(idx[ri])
            meta_rule.append(np.full(ri.size, j))
            meta_val.append(vals[ri, ci])
            meta_cost.append(c[ri, ci])
        if not frames:
            break
        P = as_matrix(predict(pd.concat(frames, ignore_index=True)))
        row_of = np.concatenate(meta_row)
        rule_of = np.concatenate(meta_rule)
        val_of = np.concatenate(meta_val)
        cost_of = np.concatenate(meta_cost)
        np.add.at(queries, row_of, 1)
        m = margin(P, d0[row_of])
        flipped = P.argmax(axis=1) != d0[row_of]
        # per row: cheapest flipping candidate, else the largest margin reduction
        key = np.where(flipped, cost_of - 1e6, m)
        order = np.lexsort((key, row_of))
        first = order[np.unique(row_of[order], return_index=True)[1]]
        for c in first:
            i = int(row_of[c])
            if not flipped[c] and m[c] >= cur_margin[i]:
                stuck[i] = True
                continue
            r = usable[int(rule_of[c])]
            changes[i].append((r.name, current.at[i, r.name], val_of[c]))
            current.at[i, r.name] = val_of[c]
            follow_links(current, r.name, links, rows=np.array([i]))
            used[i, int(rule_of[c])] = True
            cost[i] += cost_of[c]
            cur_margin[i] = m[c]
            if flipped[c]:
                done[i] = True
    k = int(done.sum())
    lo, hi = wilson_interval(k, n, confidence)
    by_decision = []
    for d in np.unique(d0):
        sel = d0 == d
        kd = int(done[sel].sum())
        dlo, dhi = wilson_interval(kd, int(sel.sum()), confidence)
        by_decision.append({"original_decision": int(d), "n": int(sel.sum()), "succeeded": kd,
                            "success_rate": kd / int(sel.sum()), "ci_low": float(dlo), "ci_high": float(dhi)})
    use: dict[str, int] = {}
    for i in np.flatnonzero(done):
        for name, *_ in changes[i]:
            use[name] = use.get(name, 0) + 1
    feature_use = [{"feature": f, "used_in_successes": c, "share": c / k} for f, c in sorted(use.items(), key=lambda kv: -kv[1])]
    records = []
    for i in range(n):
        records.append({"row": int(rows[i]), "original_decision": int(d0[i]), "flipped": bool(done[i]),
                        "changes": len(changes[i]), "cost": float(cost[i]), "queries": int(queries[i]),
                        "edits": "; ".join(f"{name}: {_show(a)} → {_show(b)}" for name, a, b in changes[i])})
    n_changes = np.array([len(c) for c in changes])
    return EvasionReport(
        attempted=n, succeeded=k, success_rate=k / n if n else float("nan"), ci=(float(lo), float(hi)),
        median_cost=float(np.median(cost[done])) if k else None,
        median_changes=float(np.median(n_changes[done])) if k else None,
        queries=int(queries.sum()), by_decision=by_decision, feature_use=feature_use, records=records)


def _show(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    return str(v)


# -- text perturbations (prompt robustness of language models) -----------------------------------

KEY_NEIGHBOURS = {
    "a": "qwsz", "b": "vghn", "c": "xdfv", "d": "serfcx", "e": "wsdr", "f": "drtgvc", "g": "ftyhbv", "h": "gyujnb",
    "i": "ujko", "j": "huikmn", "k": "jiolm", "l": "kop", "m": "njk", "n": "bhjm", "o": "iklp", "p": "ol",
    "q": "wa", "r": "edft", "s": "awedxz", "t": "rfgy", "u": "yhji", "v": "cfgb", "w": "qase", "x": "zsdc",
    "y": "tghu", "z": "asx"}
TYPO_KINDS = ("swap", "drop", "double", "key")


def char_noise(segments: list[tuple[str, bool]], rng: np.random.Generator, n_edits: int = 1) -> tuple[str, list[str]]:
    """Typo-like edits (swap two adjacent letters, drop, double, or hit a neighbouring key) on letters of
    the editable segments only; protected segments (e.g. the attribute word) are never touched.
    Returns the text and a description of each edit."""
    parts = [list(text) for text, _ in segments]
    done: list[str] = []
    for _ in range(n_edits):
        spots = [(s, i) for s, (chars, (_, editable)) in enumerate(zip(parts, segments)) if editable
                 for i, ch in enumerate(chars) if ch.isalpha()]
        if not spots:
            break
        s, i = spots[int(rng.integers(len(spots)))]
        chars = parts[s]
        kind = TYPO_KINDS[int(rng.integers(len(TYPO_KINDS)))]
        ch = chars[i]
        if kind == "swap" and i + 1 < len(chars) and chars[i + 1].isalpha() and chars[i + 1] != ch:
            done.append(f"swap {ch}{chars[i + 1]}")
            chars[i], chars[i + 1] = chars[i + 1], ch
        elif kind == "drop" and sum(c.isalpha() for c in chars) > 1:
            del chars[i]
            done.append(f"drop {ch}")
        elif kind == "double":
            chars.insert(i, ch)
            done.append(f"double {ch}")
        else:
            near = KEY_NEIGHBOURS.get(ch.lower(), "e")
            new = near[int(rng.integers(len(near)))]
            chars[i] = new.upper() if ch.isupper() else new
            done.append(f"key {ch}->{chars[i]}")
    return "".join("".join(p) for p in parts), done


def cluster_flip_interval(flips: np.ndarray, rng: np.random.Generator, n_boot: int = 2000,
                          confidence: float = 0.95) -> tuple[float, float, float]:
    """Flip rate of a (units x draws) boolean matrix with a percentile bootstrap over units: the draws
    of one unit (e.g. one prompt) are not independent, so rows are resampled whole."""
    flips = np.asarray(flips, dtype=float)
    per_unit = flips.mean(axis=1)
    if per_unit.size == 0:
        return float("nan"), float("nan"), float("nan")
    idx = rng.integers(0, per_unit.size, size=(n_boot, per_unit.size))
    boot = per_unit[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    return float(per_unit.mean()), float(np.quantile(boot, alpha)), float(np.quantile(boot, 1 - alpha))
