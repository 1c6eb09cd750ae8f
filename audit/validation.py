"""Inputs checked against the model and the spec before anything is written: one readable line each."""
from __future__ import annotations

import pandas as pd

from .checks.base import AuditData, Check
from .datasets import read_table
from .errors import AuditInputError
from .model_io import LoadedModel
from .spec import LoadedSpec

MAX_GROUPS = 1000


def validate_data(df: pd.DataFrame, spec: LoadedSpec, model: LoadedModel) -> AuditData:
    ds = spec.spec.dataset
    src = spec.resolve(ds.path).as_posix()
    if model.task == "language_model":  # held-out text; `protected` names the attributes to probe
        from .lm_io import validate_lm_data
        return validate_lm_data(df, spec)
    for col, what in [(ds.label, "label column"), (ds.split_column, "split column")]:
        if col is not None and col not in df.columns:
            raise AuditInputError(f"{what} '{col}' is not in the dataset", source=src)
    for col in ds.protected:
        if col not in df.columns:
            raise AuditInputError(f"protected attribute '{col}' is not in the dataset", source=src)
    train = None
    if ds.split_column:
        audited = df[df[ds.split_column].astype(str) == ds.audit_split]
        if audited.empty:
            raise AuditInputError(f"no rows with {ds.split_column} == '{ds.audit_split}'", source=src)
        if ds.train_split is not None:
            train = df[df[ds.split_column].astype(str) == ds.train_split].reset_index(drop=True)
            train = train if not train.empty else None
        df = audited.reset_index(drop=True)
    if ds.train_path:
        train = read_table(spec.resolve(ds.train_path))
    missing = [c for c in model.feature_names if c not in df.columns]
    if missing:
        raise AuditInputError(f"dataset does not match the model signature: missing column(s) {missing[:5]}", source=src)
    for f in model.meta.features:
        col = df[f.name]
        if col.isna().all():
            raise AuditInputError(f"model input column '{f.name}' is entirely empty", source=src)
        if f.kind == "numeric" and not pd.api.types.is_numeric_dtype(col):
            raise AuditInputError(f"column '{f.name}' must be numeric for the model, found text such as "
                                  f"{str(col.dropna().iloc[0])[:40]!r}", source=src)
    if ds.label is not None:
        y = df[ds.label]
        if y.isna().any():
            raise AuditInputError(f"label column '{ds.label}' has {int(y.isna().sum())} missing values", source=src)
        if model.task != "regression" and y.nunique() < 2:
            raise AuditInputError(f"label column '{ds.label}' has a single class; performance and fairness "
                                  "cannot be measured", source=src)
        if model.task in ("binary", "multiclass") and model.meta.classes:
            _check_label_classes(y, ds.label, model, src)
    for col in ds.protected:
        n = df[col].nunique(dropna=False)
        if n > MAX_GROUPS:
            raise AuditInputError(f"protected attribute '{col}' has {n} distinct groups (limit {MAX_GROUPS})", source=src)
    return AuditData(frame=df, label=ds.label, protected=list(ds.protected), train=train)


def _check_label_classes(y: pd.Series, label: str, model: LoadedModel, src: str) -> None:
    """Every label value must be one of the model's classes (compared as text, as predictions are)."""
    classes = [str(c) for c in model.meta.classes]
    seen = sorted(y.astype(str).unique(), key=lambda v: (len(v), v))
    unknown = [v for v in seen if v not in classes]
    if not unknown:
        return
    shown = ", ".join(seen[:8]) + (", ..." if len(seen) > 8 else "")
    raise AuditInputError(f"label column '{label}' has {len(seen)} classes ({shown}); the model is {model.task} "
                          f"with classes ({', '.join(classes[:8])}): {', '.join(unknown[:5])} "
                          f"{'is' if len(unknown) == 1 else 'are'} not among them", source=src)


def requirements_met(check: Check, data: AuditData, language_model: bool = False) -> str | None:
    if language_model:
        return None if "lm" in check.requires else "not applicable to a language model (tabular check)"
    if "labels" in check.requires and data.label is None:
        return "no label column"
    if "protected" in check.requires and not data.protected:
        return "no protected attributes declared"
    if "train" in check.requires and data.train is None:
        return "no training split"
    if "lm" in check.requires:
        return "not a language model"
    return None
