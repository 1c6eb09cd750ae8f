"""How the audited data departs from what the model was registered with: columns the model never reads,
and categories it never saw in training (scored as missing by native tree models, as all-zero one-hot
rows by scikit-learn pipelines; either way silently)."""
from __future__ import annotations

import pandas as pd
from pydantic import BaseModel, Field

from .model_io import FeatureSpec


class UnseenCategory(BaseModel):
    feature: str
    value: str
    rows: int


class InputConformance(BaseModel):
    extra_columns: list[str] = Field(default_factory=list,
                                     description="Dataset columns that are neither model inputs nor named by the spec.")
    unseen: list[UnseenCategory] = Field(default_factory=list, description="Values of categorical inputs never seen "
                                                                           "in training, with their row counts.")
    rows_with_unseen: int = 0


def extra_columns(frame: pd.DataFrame, features: list[FeatureSpec], declared: list[str | None]) -> list[str]:
    used = {f.name for f in features} | {c for c in declared if c}
    return [c for c in frame.columns if c not in used]


def unseen_categories(frame: pd.DataFrame, features: list[FeatureSpec]) -> tuple[list[UnseenCategory], int]:
    """Every (feature, value) outside the training categories, most rows first, and the rows with any."""
    found: list[UnseenCategory] = []
    any_unseen = pd.Series(False, index=frame.index)
    for f in features:
        if f.kind != "categorical" or f.categories is None or f.name not in frame.columns:
            continue
        col = frame[f.name]
        text = col.astype(str).where(col.notna())
        outside = text.notna() & ~text.isin([str(c) for c in f.categories])
        if outside.any():
            any_unseen |= outside
            counts = text[outside].value_counts()
            found.extend(UnseenCategory(feature=f.name, value=str(v), rows=int(n)) for v, n in counts.items())
    return sorted(found, key=lambda u: (-u.rows, u.feature, u.value)), int(any_unseen.sum())
