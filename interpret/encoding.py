"""Raw tabular columns <-> a float matrix, with categorical columns as category codes.

Model-agnostic explainers (LIME, the Permutation explainer, deletion curves) perturb numbers;
the model sees the decoded DataFrame with its original categorical values.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


def _is_categorical(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s) or isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(s)


@dataclass
class TabularEncoder:
    feature_names: list[str]
    categories: dict[str, list[Any]] = field(default_factory=dict)

    @classmethod
    def fit(cls, frames: list[pd.DataFrame], feature_names: list[str],
            known_categories: dict[str, list[Any]] | None = None) -> "TabularEncoder":
        """Categorical columns are those with known categories or a non-numeric dtype; values not
        in the known list (seen in `frames`) are appended so that every row can be encoded."""
        known = dict(known_categories or {})
        cats: dict[str, list[Any]] = {}
        for c in feature_names:
            if c not in known and not any(_is_categorical(f[c]) for f in frames if c in f):
                continue
            values = list(known.get(c, []))
            seen = {str(v) for v in values}
            for f in frames:
                if c not in f:
                    continue
                for v in pd.unique(f[c].dropna()):
                    if str(v) not in seen:
                        seen.add(str(v))
                        values.append(v)
            cats[c] = values
        return cls(list(feature_names), cats)

    def extend(self, X: pd.DataFrame) -> None:
        """Append categories first seen in `X` (existing codes do not change)."""
        for c, values in self.categories.items():
            seen = {str(v) for v in values}
            for v in pd.unique(X[c].dropna()):
                if str(v) not in seen:
                    seen.add(str(v))
                    values.append(v)

    @property
    def categorical_indices(self) -> list[int]:
        return [i for i, c in enumerate(self.feature_names) if c in self.categories]

    def category_names(self) -> dict[int, list[str]]:
        return {i: [str(v) for v in self.categories[c]] for i, c in enumerate(self.feature_names) if c in self.categories}

    def encode(self, X: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(X), len(self.feature_names)), dtype=float)
        for i, c in enumerate(self.feature_names):
            col = X[c]
            if c in self.categories:
                lookup = {str(v): j for j, v in enumerate(self.categories[c])}
                out[:, i] = col.map(lambda v: np.nan if pd.isna(v) else lookup.get(str(v), np.nan)).to_numpy(float)
            else:
                out[:, i] = pd.to_numeric(col, errors="coerce").to_numpy(float)
        return out

    def decode(self, A: np.ndarray) -> pd.DataFrame:
        data: dict[str, Any] = {}
        for i, c in enumerate(self.feature_names):
            col = A[:, i]
            if c in self.categories:
                cats = self.categories[c]
                codes = np.where(np.isfinite(col), np.clip(np.rint(np.nan_to_num(col)), 0, len(cats) - 1), -1)
                data[c] = pd.Categorical.from_codes(codes.astype(int), categories=pd.Index(cats, dtype=object))
            else:
                data[c] = col
        return pd.DataFrame(data)


def display_value(value: Any) -> str:
    """A raw value as a person would read it: 15,000 / 2.5 / 'no checking account'."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "missing"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v.is_integer() or abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.4g}"
    return " ".join(str(value).split())
