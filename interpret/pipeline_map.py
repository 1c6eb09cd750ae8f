"""Map the columns a scikit-learn preprocessor outputs back to the raw input columns.

A Pipeline `preprocess -> model` is explained on the transformed matrix (where the fast SHAP
explainers work) and every transformed column's contribution is summed into its source
column, e.g. all one-hot columns of `purpose` into `purpose`.  The map is built from the
fitted transformers and then verified empirically: changing one raw column may only change
the transformed columns mapped to it.  Anything unmappable returns None and the caller falls
back to a model-agnostic explainer on the raw columns.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .models import family


@dataclass
class PipelineSplit:
    preprocessor: Any
    final: Any
    output_names: list[str]
    groups: np.ndarray           # for each transformed column, the index of its raw column
    raw_features: list[str]

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The final model's input as a dense matrix. XGBoost reads the entries a sparse matrix does
        not store as missing, not as zero, so for it they become NaN: the model explained is the
        model that runs."""
        Z = self.preprocessor.transform(X[self.raw_features])
        if hasattr(Z, "tocoo"):
            coo = Z.tocoo()
            dense = np.full(coo.shape, np.nan if family(self.final) == "xgboost" else 0.0)
            dense[coo.row, coo.col] = coo.data
            return dense
        return np.asarray(Z, dtype=float)

    def aggregate(self, values: np.ndarray) -> np.ndarray:
        """Sum transformed-column attributions (n, n_out) into raw columns (n, n_raw)."""
        out = np.zeros((values.shape[0], len(self.raw_features)))
        np.add.at(out.T, self.groups, values.T)
        return out

    def describe(self) -> dict[str, Any]:
        return {"transformed_columns": len(self.output_names),
                "map": {raw: [self.output_names[k] for k in np.flatnonzero(self.groups == i)]
                        for i, raw in enumerate(self.raw_features)}}


def is_pipeline(est: Any) -> bool:
    return type(est).__name__ == "Pipeline" and type(est).__module__.startswith("sklearn") and len(est.steps) > 1


def _names_out(trans: Any, inputs: list[str]) -> list[str] | None:
    try:
        return [str(n) for n in trans.get_feature_names_out(np.asarray(inputs, dtype=object))]
    except Exception:
        try:
            return [str(n) for n in trans.get_feature_names_out()]
        except Exception:
            return None


def _one_hot_map(enc: Any, n_in: int) -> list[int] | None:
    counts = getattr(enc, "_n_features_outs", None)  # per input column, after drop/infrequent handling
    if counts is None or len(counts) != n_in:
        return None
    return [i for i, k in enumerate(counts) for _ in range(int(k))]


def _by_name(out: list[str], inputs: list[str]) -> list[int] | None:
    if out == inputs:
        return list(range(len(inputs)))
    mapping = []
    for name in out:
        hits = [i for i, c in enumerate(inputs) if name == c or name.startswith(f"{c}_") or f"_{c}" in name or c in name]
        if not hits:
            return None
        mapping.append(max(hits, key=lambda i: len(inputs[i])))
    return mapping


def column_map(trans: Any, inputs: list[str]) -> tuple[list[str], list[int]] | None:
    """(output names, input index of each output) for a fitted transformer, or None."""
    if isinstance(trans, str):
        return (list(inputs), list(range(len(inputs)))) if trans == "passthrough" else ([], [])
    kind = type(trans).__name__
    if kind == "Pipeline":
        names, mapping = list(inputs), list(range(len(inputs)))
        for _, step in trans.steps:
            if step is None or step == "passthrough":
                continue
            sub = column_map(step, names)
            if sub is None:
                return None
            names, step_map = sub
            mapping = [mapping[j] for j in step_map]
        return names, mapping
    if kind == "ColumnTransformer":
        return _column_transformer_map(trans, inputs)
    if kind == "FunctionTransformer" and getattr(trans, "func", None) is None:
        return list(inputs), list(range(len(inputs)))
    out = _names_out(trans, inputs)
    if out is None:
        return None
    if kind == "OneHotEncoder":
        mapping = _one_hot_map(trans, len(inputs))
        if mapping is not None and len(mapping) == len(out):
            return out, mapping
    mapping = _by_name(out, inputs)
    return (out, mapping) if mapping is not None else None


def _column_transformer_map(ct: Any, inputs: list[str]) -> tuple[list[str], list[int]] | None:
    n_out = sum(s.stop - s.start for s in ct.output_indices_.values())
    names: list[str | None] = [None] * n_out
    mapping: list[int] = [-1] * n_out
    for name, trans, cols in ct.transformers_:
        sl = ct.output_indices_.get(name)
        if sl is None or sl.stop == sl.start:
            continue
        idx = _resolve_columns(cols, inputs)
        if idx is None:
            return None
        sub = column_map(trans, [inputs[i] for i in idx])
        if sub is None or len(sub[1]) != sl.stop - sl.start:
            return None
        for k, (nm, j) in enumerate(zip(*sub)):
            names[sl.start + k] = f"{name}__{nm}"
            mapping[sl.start + k] = idx[j]
    if any(m < 0 for m in mapping):
        return None
    return [str(n) for n in names], mapping


def _resolve_columns(cols: Any, inputs: list[str]) -> list[int] | None:
    if callable(cols):
        return None
    if isinstance(cols, slice):
        return list(range(len(inputs)))[cols]
    arr = np.atleast_1d(np.asarray(cols))
    if arr.dtype == bool:
        return list(np.flatnonzero(arr))
    if np.issubdtype(arr.dtype, np.integer):
        return [int(i) for i in arr]
    pos = {c: i for i, c in enumerate(inputs)}
    try:
        return [pos[str(c)] for c in arr]
    except KeyError:
        return None


def _verify(split: PipelineSplit, probe: pd.DataFrame) -> bool:
    """Changing one raw column may change only the transformed columns mapped to it."""
    Z0 = split.transform(probe)
    if Z0.shape[1] != len(split.groups):
        return False
    for i, c in enumerate(split.raw_features):
        shifted = probe.copy()
        shifted[c] = np.roll(probe[c].to_numpy(), 1)
        Z1 = split.transform(shifted)
        changed = np.flatnonzero(np.any((Z1 != Z0) & ~(np.isnan(Z1) & np.isnan(Z0)), axis=0))
        if np.any(split.groups[changed] != i):
            return False
    return True


def split_pipeline(est: Any, raw_features: list[str], probe: pd.DataFrame) -> PipelineSplit | None:
    """Split a fitted Pipeline into (preprocessor, final estimator) with a verified column map."""
    if not is_pipeline(est):
        return None
    pre, final = est[:-1], est.steps[-1][1]
    try:
        found = column_map(pre, list(raw_features))
    except Exception:
        return None
    if found is None:
        return None
    names, mapping = found
    split = PipelineSplit(pre, final, names, np.asarray(mapping, dtype=int), list(raw_features))
    try:
        ok = _verify(split, probe.reset_index(drop=True))
    except Exception:
        ok = False
    return split if ok else None
