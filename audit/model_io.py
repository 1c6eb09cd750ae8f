"""Safe model formats: skops for scikit-learn, native files for XGBoost and LightGBM, and
`transformer_lens` for language models (safetensors weights + config JSON + tokenizer files).

A model is stored as a directory holding the model file and `aiaudit_model.json`
(format, SHA-256, task, classes, input schema, trusted skops types, data lineage).
For a language model the model file is its manifest `lm.json`, which records the SHA-256 of
every weight and tokenizer file, so the whole directory is verified on load.
Pickles are never loaded unless the caller explicitly trusts the file.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from .errors import AuditInputError, IntegrityError

Format = Literal["skops", "xgboost", "lightgbm", "transformer_lens"]
Task = Literal["binary", "multiclass", "regression", "language_model"]
META_FILE = "aiaudit_model.json"
FILES = {"skops": "model.skops", "xgboost": "model.ubj", "lightgbm": "model.txt", "transformer_lens": "lm.json"}
LM_TEXT_COLUMN = "text"
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class LMArtifact:
    """A language model to register: a bundled model directory (weights, config, tokenizer,
    `lm.json`) or, with `source_dir=None`, a manifest that points at local files outside the registry."""

    manifest: dict[str, Any]
    source_dir: Path | None = None

    @property
    def estimator_name(self) -> str:
        kind = self.manifest.get("kind")
        return {"bundled": "transformer_lens.HookedTransformer", "local_dir": "transformer_lens.TransformerBridge",
                "hf_cache": "transformer_lens.HookedTransformer (pretrained)"}.get(kind, "transformer_lens")


class FeatureSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    kind: Literal["numeric", "categorical"]
    categories: list[Any] | None = None


class Lineage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    path: str | None = None
    sha256: str | None = None
    rows: int | None = None
    columns: list[str] = Field(default_factory=list)
    label: str | None = None


class ModelMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Format
    file: str
    sha256: str
    task: Task
    classes: list[Any] = Field(default_factory=list)
    features: list[FeatureSpec]
    estimator: str = ""
    trusted_types: list[str] = Field(default_factory=list)
    lineage: Lineage = Field(default_factory=Lineage)


def infer_features(X: pd.DataFrame) -> list[FeatureSpec]:
    out = []
    for c in X.columns:
        s = X[c]
        if pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype) and not pd.api.types.is_bool_dtype(s):
            out.append(FeatureSpec(name=str(c), kind="numeric"))
        else:
            cats = s.cat.categories.tolist() if isinstance(s.dtype, pd.CategoricalDtype) else sorted(s.dropna().astype(str).unique().tolist())
            out.append(FeatureSpec(name=str(c), kind="categorical", categories=cats))
    return out


def categorise(X: pd.DataFrame, features: list[FeatureSpec]) -> pd.DataFrame:
    """Give categorical columns the category list seen at training time (for native tree models)."""
    X = X.copy()
    for f in features:
        if f.kind == "categorical":
            X[f.name] = _as_categories(X[f.name], f.categories)
    return X


def _as_categories(s: pd.Series, categories: list[Any]) -> pd.Categorical:
    """Values compared as strings; those outside `categories` become missing.  Categorical and
    all-string inputs take a fast path (explainers call this on many small perturbed frames)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        if list(s.cat.categories) == categories:
            return s.array
        if pd.api.types.infer_dtype(s.cat.categories, skipna=True) == "string":
            return s.cat.set_categories(categories).array
    elif pd.api.types.infer_dtype(s, skipna=True) == "string":
        return pd.Categorical(s, categories=categories)
    return pd.Categorical(s.astype(str).where(s.notna()), categories=categories)


@dataclass
class LoadedModel:
    """A model ready to score: the estimator plus the schema it was registered with."""

    estimator: Any
    meta: ModelMeta
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> Task:
        return self.meta.task

    @property
    def is_language_model(self) -> bool:
        return self.meta.task == "language_model"

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.meta.features]

    @property
    def classes(self) -> list[Any]:
        return self.meta.classes

    def prepare(self, X: pd.DataFrame) -> pd.DataFrame:
        if self.is_language_model:
            if LM_TEXT_COLUMN not in X.columns:
                raise AuditInputError(f"a language model needs a '{LM_TEXT_COLUMN}' column", source="dataset")
            return X[[LM_TEXT_COLUMN]]
        missing = [c for c in self.feature_names if c not in X.columns]
        if missing:
            raise AuditInputError(f"dataset lacks model input column(s) {missing[:5]}", source="dataset")
        X = X[self.feature_names]
        if self.meta.format in ("xgboost", "lightgbm"):
            X = categorise(X, self.meta.features)
        return X

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if self.is_language_model:
            raise AuditInputError("a language model has no class probabilities; use predict() for per-text "
                                  "mean log-likelihood", source="model")
        Xp = self.prepare(X)
        if self.meta.format == "lightgbm":
            p = np.asarray(self.estimator.predict(Xp))
            return np.column_stack([1 - p, p]) if p.ndim == 1 else p
        return np.asarray(self.estimator.predict_proba(Xp))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Class labels; for a regressor its values; for a language model the mean log-likelihood
        per token of each text."""
        if self.is_language_model:
            return np.asarray(self.estimator.score_texts(self.prepare(X)[LM_TEXT_COLUMN].astype(str).tolist()), dtype=float)
        if self.task == "regression":
            return np.asarray(self.estimator.predict(self.prepare(X)), dtype=float)
        proba = self.predict_proba(X)
        return np.asarray(self.classes, dtype=object)[proba.argmax(axis=1)]


def _estimator_format(est: Any) -> Format:
    if isinstance(est, LMArtifact):
        return "transformer_lens"
    mod = type(est).__module__
    if mod.startswith("xgboost"):
        return "xgboost"
    if mod.startswith("lightgbm"):
        return "lightgbm"
    return "skops"


def classes_of(est: Any) -> list[Any]:
    if hasattr(est, "classes_"):
        return [c.item() if hasattr(c, "item") else c for c in est.classes_]
    if type(est).__name__ == "Booster" and type(est).__module__.startswith("lightgbm"):
        objective = str(est.dump_model().get("objective", ""))
        if objective.startswith(("binary", "cross_entropy")):
            return [0, 1]
        if objective.startswith("multiclass"):
            return list(range(est.dump_model()["num_class"]))
    return []


def task_of(est: Any) -> Task:
    classes = classes_of(est)
    if not classes:
        return "regression"
    return "binary" if len(classes) == 2 else "multiclass"


def save_model(est: Any, X_example: pd.DataFrame, out_dir: Path, lineage: Lineage | None = None) -> ModelMeta:
    """Write `est` in its safe format plus metadata into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(est, LMArtifact):
        return _save_lm(est, out_dir, lineage)
    fmt = _estimator_format(est)
    path = out_dir / FILES[fmt]
    trusted: list[str] = []
    if fmt == "xgboost":
        est.save_model(path)
    elif fmt == "lightgbm":
        booster = getattr(est, "booster_", est)
        booster.save_model(str(path))
    else:
        import skops.io as sio
        sio.dump(est, path)
        trusted = sio.get_untrusted_types(file=path)
    classes = classes_of(est)
    meta = ModelMeta(format=fmt, file=path.name, sha256=sha256_file(path), task=task_of(est), classes=classes,
                     features=infer_features(X_example), estimator=f"{type(est).__module__}.{type(est).__name__}",
                     trusted_types=trusted, lineage=lineage or Lineage())
    (out_dir / META_FILE).write_text(meta.model_dump_json(indent=2))
    return meta


def _save_lm(art: LMArtifact, out_dir: Path, lineage: Lineage | None) -> ModelMeta:
    """Copy a bundled LM directory (or write an external manifest) and record every file's hash."""
    manifest = dict(art.manifest)
    if art.source_dir is not None:
        for src in sorted(art.source_dir.rglob("*")):
            if src.is_file() and src.name not in (FILES["transformer_lens"], META_FILE):
                dst = out_dir / src.relative_to(art.source_dir)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
        manifest["files"] = {p.relative_to(out_dir).as_posix(): sha256_file(p) for p in sorted(out_dir.rglob("*"))
                             if p.is_file() and p.name not in (FILES["transformer_lens"], META_FILE)}
    path = out_dir / FILES["transformer_lens"]
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    meta = ModelMeta(format="transformer_lens", file=path.name, sha256=sha256_file(path), task="language_model",
                     classes=[], features=[], estimator=art.estimator_name, lineage=lineage or Lineage())
    (out_dir / META_FILE).write_text(meta.model_dump_json(indent=2))
    return meta


def _load_lm(model_dir: Path, meta: ModelMeta) -> LoadedModel:
    manifest = json.loads((model_dir / meta.file).read_text())
    for rel, digest in (manifest.get("files") or {}).items():
        f = model_dir / rel
        if not f.is_file():
            raise IntegrityError(f"language-model file {rel} recorded at registration is missing")
        if sha256_file(f) != digest:
            raise IntegrityError(f"language-model file {rel} does not match its recorded SHA-256: refusing to load")
    from .lm_io import LMHandle
    return LoadedModel(estimator=LMHandle(model_dir=model_dir, manifest=manifest), meta=meta)


def load_model_dir(model_dir: Path, expected_sha256: str | None) -> LoadedModel:
    """Load a stored model, refusing it when its hash differs from the registry record."""
    meta_path = model_dir / META_FILE
    if not meta_path.is_file():
        raise AuditInputError(f"no {META_FILE} in model artifact; register the model through aiaudit", source=str(model_dir))
    meta = ModelMeta.model_validate_json(meta_path.read_text())
    path = model_dir / meta.file
    actual = sha256_file(path)
    if expected_sha256 is not None and actual != expected_sha256:
        raise IntegrityError(f"model artifact {path.name} has SHA-256 {actual[:12]}…, registry records "
                             f"{expected_sha256[:12]}…: refusing to load a tampered model")
    if meta.format == "transformer_lens":
        return _load_lm(model_dir, meta)
    if meta.format == "xgboost":
        import xgboost as xgb
        est = xgb.XGBRegressor() if meta.task == "regression" else xgb.XGBClassifier()
        est.load_model(path)
    elif meta.format == "lightgbm":
        import lightgbm as lgb
        est = lgb.Booster(model_file=str(path))
    else:
        import skops.io as sio
        untrusted = set(sio.get_untrusted_types(file=path)) - set(meta.trusted_types)
        if untrusted:
            raise IntegrityError(f"model file needs types not trusted at registration: {sorted(untrusted)[:3]}")
        est = sio.load(path, trusted=meta.trusted_types)
    return LoadedModel(estimator=est, meta=meta)


def read_model_file(path: Path, trust: bool = False) -> Any:
    """Read a user-supplied model file for registration."""
    suffix = "".join(path.suffixes[-1:]).lower()
    if not path.is_file():
        raise AuditInputError("model file not found", source=str(path))
    try:
        if suffix == ".skops":
            import skops.io as sio
            untrusted = sio.get_untrusted_types(file=path)
            if untrusted and not trust:
                raise AuditInputError(f"skops file uses types outside the safe set {untrusted[:3]}; "
                                      "pass --trust-model after reviewing it", source=str(path))
            return sio.load(path, trusted=untrusted)
        if suffix in (".ubj", ".json") :
            import xgboost as xgb
            booster = xgb.Booster()
            booster.load_model(path)
            objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
            est = xgb.XGBRegressor() if objective.startswith("reg:") else xgb.XGBClassifier()
            est.load_model(path)
            return est
        if suffix == ".txt":
            import lightgbm as lgb
            return lgb.Booster(model_file=str(path))
        if suffix in PICKLE_SUFFIXES:
            if not trust:
                raise AuditInputError("refusing to unpickle an untrusted file (pickles can run code); "
                                      "convert it to skops or pass --trust-model", source=str(path))
            import joblib
            return joblib.load(path)
    except AuditInputError:
        raise
    except Exception as e:  # a corrupt file of a known format
        raise AuditInputError(f"cannot read model file: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}",
                              source=str(path)) from None
    raise AuditInputError(f"unsupported model file type '{suffix}' (use .skops, .ubj/.json, .txt)", source=str(path))
