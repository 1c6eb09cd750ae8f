"""How well one feature alone predicts a protected attribute (proxy screening).

Each feature is discretised (numeric: up to `n_bins` quantile bins; otherwise its categories,
missing as its own level) and turned into a score by cross-fitted target encoding
(scikit-learn `TargetEncoder`, so a rare category cannot predict its own rows). The score is the
one-vs-rest ROC AUC for each group; the feature's proxy strength is the best AUC over groups.
Normalised mutual information (MI / H(attribute), 0..1) is reported alongside.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.stats import entropy
from sklearn.metrics import mutual_info_score
from sklearn.preprocessing import TargetEncoder

from .performance import binary_auc


def discretise(x: pd.Series, n_bins: int = 10) -> np.ndarray:
    """Integer level codes for one feature: quantile bins for many-valued numbers, categories otherwise.

    Missing values form their own level (code -1 shifted to 0)."""
    if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x) and x.nunique() > n_bins:
        codes = pd.qcut(x.astype(float), n_bins, duplicates="drop", labels=False)
        return np.where(x.isna(), -1, codes).astype(np.int64) + 1
    return pd.factorize(x, use_na_sentinel=True)[0].astype(np.int64) + 1


def _contingency(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Counts of (a, b) code pairs (codes >= 0), for `mutual_info_score(contingency=...)` without
    re-validating and re-factorising both label arrays."""
    width = int(b.max()) + 1
    return np.bincount(a * width + b, minlength=(int(a.max()) + 1) * width).reshape(-1, width)


def proxy_strength(x: pd.Series, groups: np.ndarray, eligible: list[str], seed: int = 0,
                   n_bins: int = 10, cv: int = 5) -> dict[str, object]:
    """Best one-vs-rest AUC of the feature for a group in `eligible`, the group, and normalised MI."""
    return proxy_strengths(pd.DataFrame({"x": x}), groups, eligible, seed, n_bins, cv)["x"]


def proxy_strengths(X: pd.DataFrame, groups: np.ndarray, eligible: list[str], seed: int = 0,
                    n_bins: int = 10, cv: int = 5) -> dict[str, dict[str, object]]:
    """`proxy_strength` of every column of `X`: one cross-fitted encoding of all columns at once
    (the encoder treats columns independently, with the same folds)."""
    levels = np.column_stack([discretise(X[c].reset_index(drop=True), n_bins) for c in X.columns])
    codes, names = pd.factorize(pd.Series(groups).astype(str), sort=True)
    names = [str(n) for n in names]
    sizes = np.bincount(codes, minlength=len(names))
    h = entropy(sizes)
    out = {c: {"auc": float("nan"), "group": None,
               "nmi": float(mutual_info_score(None, None, contingency=_contingency(codes, levels[:, j])) / h)
               if h > 0 else float("nan")}
           for j, c in enumerate(X.columns)}
    folds = min(cv, int(sizes.min())) if len(names) else 0
    varied = [j for j in range(levels.shape[1]) if len(np.unique(levels[:, j])) >= 2]
    if len(names) < 2 or folds < 2 or not varied:
        return out
    enc = TargetEncoder(target_type="binary" if len(names) == 2 else "multiclass", cv=folds, shuffle=True,
                        random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = enc.fit_transform(levels[:, varied], codes)
    width = 1 if len(names) == 2 else len(enc.classes_)  # multiclass: one column per class, per feature
    for i, j in enumerate(varied):
        s = scores[:, i * width:(i + 1) * width]
        best = (-1.0, None)
        for g in eligible:
            if g not in names:
                continue
            gi = names.index(g)
            member = codes == gi
            if member.all():
                continue
            col = (s[:, 0] if gi == 1 else -s[:, 0]) if len(names) == 2 else s[:, list(enc.classes_).index(gi)]
            auc = binary_auc(member.astype(int), col)
            if auc > best[0]:
                best = (float(auc), g)
        if best[1] is not None:
            out[X.columns[j]]["auc"], out[X.columns[j]]["group"] = best
    return out
