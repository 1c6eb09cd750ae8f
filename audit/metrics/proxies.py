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
from sklearn.metrics import mutual_info_score, roc_auc_score
from sklearn.preprocessing import TargetEncoder


def discretise(x: pd.Series, n_bins: int = 10) -> np.ndarray:
    """Integer level codes for one feature: quantile bins for many-valued numbers, categories otherwise.

    Missing values form their own level (code -1 shifted to 0)."""
    if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x) and x.nunique() > n_bins:
        codes = pd.qcut(x.astype(float), n_bins, duplicates="drop", labels=False)
        return np.where(x.isna(), -1, codes).astype(np.int64) + 1
    return pd.factorize(x, use_na_sentinel=True)[0].astype(np.int64) + 1


def proxy_strength(x: pd.Series, groups: np.ndarray, eligible: list[str], seed: int = 0,
                   n_bins: int = 10, cv: int = 5) -> dict[str, object]:
    """Best one-vs-rest AUC of the feature for a group in `eligible`, the group, and normalised MI."""
    levels = discretise(x, n_bins).reshape(-1, 1)
    codes, names = pd.factorize(pd.Series(groups).astype(str), sort=True)
    names = [str(n) for n in names]
    sizes = np.bincount(codes, minlength=len(names))
    out: dict[str, object] = {"auc": float("nan"), "group": None, "nmi": float("nan")}
    h = entropy(sizes)
    if h > 0:
        out["nmi"] = float(mutual_info_score(codes, levels[:, 0]) / h)
    folds = min(cv, int(sizes.min())) if len(names) else 0
    if len(names) < 2 or len(np.unique(levels)) < 2 or folds < 2:
        return out
    enc = TargetEncoder(target_type="binary" if len(names) == 2 else "multiclass", cv=folds, shuffle=True,
                        random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = enc.fit_transform(levels, codes)
    best = (-1.0, None)
    for g in eligible:
        if g not in names:
            continue
        gi = names.index(g)
        member = codes == gi
        if member.all():
            continue
        if len(names) == 2:  # one column: the encoded share of code 1
            auc = roc_auc_score(member, scores[:, 0] if gi == 1 else -scores[:, 0])
        else:
            auc = roc_auc_score(member, scores[:, list(enc.classes_).index(gi)])
        if auc > best[0]:
            best = (float(auc), g)
    out["auc"], out["group"] = best if best[1] is not None else (float("nan"), None)
    return out
