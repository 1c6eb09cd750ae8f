"""The MLflow model registry and tracking store, through MLflow's client API."""
from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__
from .config import Settings
from .errors import AuditInputError
from .model_io import LoadedModel, Lineage, ModelMeta, load_model_dir, META_FILE, save_model
from .spec import MODEL_URI

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_TRACKING_INSECURE_TLS", "false")
MODELS_EXPERIMENT = "aiaudit-models"
AUDITS_EXPERIMENT = "aiaudit-audits"
SHA_TAG = "aiaudit.model_sha256"


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str
    uri: str
    run_id: str | None
    tags: dict[str, str]


def _mlflow():
    import mlflow
    return mlflow


def _point_fluent_api_at(mlflow, uri: str) -> None:
    """Point MLflow's fluent API (start_run, log_model) at `uri` without the side effect of
    `mlflow.set_tracking_uri`, which also exports MLFLOW_TRACKING_URI to the process environment:
    a later `Settings.from_env` (or a child process) would then silently use this store, not its own."""
    before = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for key, value in before.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class Registry:
    def __init__(self, settings: Settings, create: bool = True):
        """`create=False` opens an existing store only (nothing is created on disk for a run that is rejected)."""
        if not create and not settings.store_exists():
            raise AuditInputError(f"no model registry at {settings.tracking_uri}: register a model first "
                                  "(aiaudit register, or aiaudit demo), or set AIAUDIT_HOME / MLFLOW_TRACKING_URI",
                                  source="AIAUDIT_HOME")
        self.settings = settings.ensure() if create else settings
        self.client = _mlflow().MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
        if create:
            self.client.search_experiments(max_results=1)  # creates the SQLite store now, so its mode can be set
            self.settings.ensure()

    def fluent(self):
        """`mlflow`, with its process-wide fluent API (start_run, log_model, download_artifacts of models:/ URIs)
        pointed at this store: set on every use, as another store opened in the process may have moved it."""
        mlflow = _mlflow()
        _point_fluent_api_at(mlflow, self.settings.tracking_uri)
        return mlflow

    def experiment_id(self, name: str) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location=f"{self.settings.artifacts_uri}/{name}")
        except Exception:  # created concurrently by another process
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    # registration -------------------------------------------------------------
    def register(self, estimator: Any, X: pd.DataFrame, name: str, lineage: Lineage,
                 description: str | None = None) -> ModelRef:
        """Store `estimator` in a safe format as a new version of registered model `name`."""
        mlflow = self.fluent()
        from mlflow.models import infer_signature

        example = X.head(5)
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = Path(tmp) / "aiaudit_model"
            meta = save_model(estimator, X, model_dir, lineage)
            loaded = load_model_dir(model_dir, meta.sha256)
            output = (None if meta.task == "language_model"  # weights may live outside the registry
                      else loaded.predict_proba(example)[:, -1] if meta.task != "regression" else loaded.predict(example))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                signature = infer_signature(example, output)
                with mlflow.start_run(experiment_id=self.experiment_id(MODELS_EXPERIMENT), run_name=f"register {name}") as run:
                    mlflow.log_params({"format": meta.format, "task": meta.task, "estimator": meta.estimator[:250],
                                       "dataset.name": lineage.name, "dataset.sha256": lineage.sha256,
                                       "dataset.rows": lineage.rows, "dataset.columns": len(lineage.columns)})
                    mlflow.set_tags({"aiaudit.kind": "model-registration", SHA_TAG: meta.sha256})
                    info = mlflow.pyfunc.log_model(
                        name="model", loader_module="audit.pyfunc_flavor", data_path=str(model_dir),
                        signature=signature, input_example=example,
                        pip_requirements=[f"aiaudit=={__version__}"])
            mv = self.client.create_model_version(name=self._ensure_registered(name), source=info.model_uri,
                                                  run_id=run.info.run_id, description=description,
                                                  tags={SHA_TAG: meta.sha256, "aiaudit.format": meta.format,
                                                        "aiaudit.task": meta.task,
                                                        "aiaudit.dataset_sha256": lineage.sha256 or "",
                                                        "aiaudit.dataset_rows": str(lineage.rows or "")})
        return ModelRef(name, str(mv.version), f"models:/{name}/{mv.version}", run.info.run_id, dict(mv.tags))

    def _ensure_registered(self, name: str) -> str:
        from mlflow.exceptions import MlflowException
        try:
            self.client.get_registered_model(name)
        except MlflowException:
            try:
                self.client.create_registered_model(name, tags={"aiaudit.managed": "true"})
            except MlflowException:
                pass  # registered concurrently
        return name

    # resolution and loading -----------------------------------------------------
    def resolve(self, uri: str) -> ModelRef:
        from mlflow.exceptions import MlflowException
        m = MODEL_URI.match(uri)
        if not m:
            raise AuditInputError("model must be models:/<name>/<version> or models:/<name>@<alias>", source=uri)
        name = m["name"]
        try:
            mv = (self.client.get_model_version_by_alias(name, m["alias"]) if m["alias"]
                  else self.client.get_model_version(name, m["version"]))
        except MlflowException:
            raise AuditInputError("model version not found in the registry", source=uri) from None
        return ModelRef(name, str(mv.version), f"models:/{name}/{mv.version}", mv.run_id, dict(mv.tags))

    def load(self, ref: ModelRef, trust: bool = False) -> LoadedModel:
        """Download and load a registered model; its file hash must match the registry record."""
        mlflow = self.fluent()
        expected = ref.tags.get(SHA_TAG)
        if expected is None and not trust:
            raise AuditInputError("model version was not registered through aiaudit (no recorded SHA-256); "
                                  "re-register it with `aiaudit register` or pass --trust-model", source=ref.uri)
        dst = Path(tempfile.mkdtemp(prefix="aiaudit-model-"))
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=ref.uri, dst_path=str(dst)))
            metas = list(local.rglob(META_FILE))
            if not metas:
                raise AuditInputError("model artifact has no aiaudit metadata; register it with `aiaudit register`", source=ref.uri)
            model = load_model_dir(metas[0].parent, expected)
        except BaseException:
            shutil.rmtree(dst, ignore_errors=True)
            raise
        model.info.update(name=ref.name, version=ref.version, uri=ref.uri, run_id=ref.run_id)
        if model.meta.format in ("skops", "xgboost", "lightgbm"):  # fully in memory now
            shutil.rmtree(dst, ignore_errors=True)
        else:  # a language model reads its files when a check first needs them: they go with its handle
            model.info["local_dir"] = str(metas[0].parent)
            model.estimator.own(dst)
        return model

    def model_meta(self, ref: ModelRef) -> ModelMeta:
        return self.load(ref).meta

    # write-back -----------------------------------------------------------------
    def set_version_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        for k, v in tags.items():
            self.client.set_model_version_tag(name, version, k, str(v))

    def set_alias(self, name: str, version: str, alias: str) -> None:
        self.client.set_registered_model_alias(name, alias, version)

    def list_versions(self) -> list[Any]:
        return list(self.client.search_model_versions(max_results=1000))
