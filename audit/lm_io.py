"""Language models in the audit: the lazy model handle, held-out text files, registration of an LM
and of its SAE in MLflow, and resolving the SAE linked to a model version.

Nothing here downloads: a model or SAE whose files are not on this machine is an `AuditInputError`
(exit 2) naming the directory to populate.
"""
from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from .errors import AuditInputError, IntegrityError
from .model_io import LM_TEXT_COLUMN, LMArtifact, LoadedModel, Lineage, sha256_file

SAE_EXPERIMENT = "aiaudit-saes"
SAE_RUN_TAG = "aiaudit.sae.run_id"
SAE_SHA_TAG = "aiaudit.sae.sha256"
SAE_HOOK_TAG = "aiaudit.sae.hook"
SAE_ARTIFACT = "sae"
TEXT_SUFFIXES = (".txt", ".jsonl")


@dataclass
class LMHandle:
    """The estimator of a registered language model: loads weights only when a check needs them."""

    model_dir: Path
    manifest: dict[str, Any]
    sae_files: dict[str, Any] | None = None
    sae_source: dict[str, Any] = field(default_factory=dict)
    _loaded: Any = None
    _sae: Any = None

    @property
    def hook(self) -> str | None:
        return self.manifest.get("hook")

    def check_available(self) -> dict[str, Any]:
        """Resolve every local file now, so missing weights stop the audit before it starts."""
        from interpret.lm.loading import LMUnavailable, resolve_model_files, resolve_sae_files
        try:
            files = resolve_model_files(self.manifest, self.model_dir)
            if self.sae_files is None and self.manifest.get("sae"):
                self.sae_files = resolve_sae_files(self.manifest["sae"], self.model_dir)
                weights = Path(self.sae_files.get("weights") or Path(self.sae_files["path"]) / "sae_weights.safetensors")
                self.sae_source = {"kind": self.sae_files["kind"], **(self.manifest.get("sae") or {}),
                                   "sha256": sha256_file(weights)}
        except LMUnavailable as e:
            raise AuditInputError(str(e), source=f"model {self.manifest.get('name', '')}".strip()) from None
        return files

    def load(self):
        if self._loaded is None:
            from interpret.lm.loading import LMUnavailable, load_lm
            try:
                self._loaded = load_lm(self.manifest, self.model_dir)
            except LMUnavailable as e:
                raise AuditInputError(str(e), source="model") from None
        return self._loaded

    def load_sae(self):
        if self._sae is None and self.sae_files is not None:
            from interpret.lm.loading import load_sae
            self._sae = load_sae(self.sae_files)
        return self._sae

    def score_texts(self, texts: list[str]) -> list[float]:
        """Mean log-likelihood per predicted token of each text (the pyfunc prediction)."""
        import torch
        model = self.load().model
        out = []
        with torch.no_grad():
            for text in texts:
                toks = model.to_tokens(text, prepend_bos=True)[:, : int(model.cfg.n_ctx)]
                if toks.shape[1] < 2:
                    out.append(float("nan"))
                    continue
                logp = model(toks).log_softmax(-1)[0, :-1].gather(-1, toks[0, 1:, None])
                out.append(float(logp.mean()))
        return out


# --- held-out text --------------------------------------------------------------------------

def read_text_dataset(path: Path) -> pd.DataFrame:
    """CSV/TSV/Parquet with a `text` column (via read_table), JSON Lines with a "text" field, or plain
    text (one document per blank-line-separated paragraph)."""
    from .datasets import read_table
    name = path.name.lower()
    if not name.endswith(TEXT_SUFFIXES):
        return read_table(path)
    if not path.is_file():
        raise AuditInputError("dataset file not found", source=str(path))
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise AuditInputError(f"text file is not UTF-8 (byte {e.start})", source=str(path)) from None
    if name.endswith(".jsonl"):
        rows = []
        for i, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise AuditInputError(f"line {i} is not JSON: {e.msg}", source=str(path)) from None
            if not isinstance(obj, dict) or not isinstance(obj.get(LM_TEXT_COLUMN), str):
                raise AuditInputError(f"line {i} has no string field '{LM_TEXT_COLUMN}'", source=str(path))
            rows.append(obj)
        df = pd.DataFrame(rows)
    else:
        df = pd.DataFrame({LM_TEXT_COLUMN: [p.strip() for p in raw.split("\n\n") if p.strip()]})
    if df.empty:
        raise AuditInputError("dataset has no text", source=str(path))
    return df


def text_frame(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """The held-out text as one `text` column (the only string column is accepted too)."""
    if LM_TEXT_COLUMN in df.columns:
        col = LM_TEXT_COLUMN
    else:
        strings = [c for c in df.columns if df[c].dtype == object]
        if len(strings) != 1:
            raise AuditInputError(f"a language-model dataset needs a '{LM_TEXT_COLUMN}' column (found "
                                  f"{list(df.columns)[:5]})", source=source)
        col = strings[0]
    text = df[col].dropna().astype(str)
    text = text[text.str.strip() != ""]
    if text.empty:
        raise AuditInputError(f"column '{col}' holds no text", source=source)
    return pd.DataFrame({LM_TEXT_COLUMN: text.reset_index(drop=True)})


def validate_lm_data(df: pd.DataFrame, spec: Any) -> Any:
    """Audit data for a language model: held-out text, no label; `protected` names built-in prompt sets."""
    from interpret.lm.prompts import BUILTIN
    from .checks.base import AuditData
    ds = spec.spec.dataset
    src = spec.resolve(ds.path).as_posix()
    if ds.label is not None:
        raise AuditInputError(f"a language-model audit takes no label column (got '{ds.label}'); the dataset is "
                              "held-out text", source=src)
    if ds.split_column:
        if ds.split_column not in df.columns:
            raise AuditInputError(f"split column '{ds.split_column}' is not in the dataset", source=src)
        df = df[df[ds.split_column].astype(str) == ds.audit_split]
        if df.empty:
            raise AuditInputError(f"no rows with {ds.split_column} == '{ds.audit_split}'", source=src)
    unknown = [a for a in ds.protected if a not in BUILTIN]
    if unknown:
        raise AuditInputError(f"no built-in prompt set for attribute(s) {unknown} (built in: {sorted(BUILTIN)}); "
                              "declare custom sets under checks.sae.prompt_sets and list them in checks.sae.attributes",
                              source="dataset.protected")
    return AuditData(frame=text_frame(df, src), label=None, protected=list(ds.protected), train=None)


# --- SAE linked to a model version -----------------------------------------------------------

def attach_sae(registry: Any, ref: Any, model: LoadedModel) -> None:
    """Download the SAE logged for this model version (if any) and verify it against the registry tag."""
    handle: LMHandle = model.estimator
    run_id = ref.tags.get(SAE_RUN_TAG)
    if not run_id:
        return
    import mlflow
    dst = Path(tempfile.mkdtemp(prefix="aiaudit-sae-"))
    try:
        local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=SAE_ARTIFACT, dst_path=str(dst),
                                                         tracking_uri=registry.settings.tracking_uri))
    except Exception as e:
        raise AuditInputError(f"cannot fetch the SAE logged in run {run_id}: {type(e).__name__}", source=ref.uri) from None
    weights = local / "sae_weights.safetensors"
    if not weights.is_file() or not (local / "cfg.json").is_file():
        raise AuditInputError("the SAE artifact lacks cfg.json or sae_weights.safetensors", source=ref.uri)
    expected = ref.tags.get(SAE_SHA_TAG)
    if expected and sha256_file(weights) != expected:
        raise IntegrityError(f"SAE weights of {ref.uri} do not match the SHA-256 recorded at registration")
    handle.sae_files = {"kind": "path", "path": str(local)}
    handle.sae_source = {"kind": "mlflow_run", "run_id": run_id, "sha256": expected,
                         "hook": ref.tags.get(SAE_HOOK_TAG)}


def log_sae(registry: Any, ref: Any, sae_dir: Path, record: dict[str, Any], quality: dict[str, float] | None = None) -> str:
    """Log an SAE folder as an MLflow run linked to a model version, and tag the version with it."""
    from mlflow.entities import Metric, Param
    weights_sha = sha256_file(sae_dir / "sae_weights.safetensors")
    cfg = record.get("config", {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = registry.client
        run = client.create_run(registry.experiment_id(SAE_EXPERIMENT), run_name=f"sae for {ref.name} v{ref.version}",
                                tags={"aiaudit.kind": "sae", "aiaudit.model": ref.uri, SAE_SHA_TAG: weights_sha})
        run_id = run.info.run_id
        params = [Param(f"sae.{k}", str(v)[:250]) for k, v in cfg.items()]
        params += [Param("sae.dataset_sha256", str(record.get("dataset_sha256", ""))),
                   Param("sae.sae_lens", str(record.get("sae_lens", ""))),
                   Param("sae.transformer_lens", str(record.get("transformer_lens", "")))]
        metrics = [Metric(f"train.{k}", float(record[k]), 0, 0) for k in ("seconds", "tokens_per_second") if k in record]
        metrics += [Metric(f"quality.{k}", float(v), 0, 0) for k, v in (quality or {}).items()
                    if isinstance(v, (int, float)) and v == v]
        client.log_batch(run_id, metrics=metrics, params=params)
        client.log_artifacts(run_id, str(sae_dir), artifact_path=SAE_ARTIFACT)
        client.set_terminated(run_id, "FINISHED")
    registry.set_version_tags(ref.name, ref.version, {SAE_RUN_TAG: run_id, SAE_SHA_TAG: weights_sha,
                                                      SAE_HOOK_TAG: cfg.get("hook", "")})
    ref.tags.update({SAE_RUN_TAG: run_id, SAE_SHA_TAG: weights_sha, SAE_HOOK_TAG: cfg.get("hook", "")})
    return run_id


def register_lm(registry: Any, name: str, artifact: LMArtifact, example_text: list[str], lineage: Lineage,
                description: str | None = None, alias: str | None = None) -> Any:
    """Register a language model like any other model (MLflow model version, SHA-256 tag, lineage)."""
    ref = registry.register(artifact, pd.DataFrame({LM_TEXT_COLUMN: example_text[:5]}), name, lineage, description)
    if alias:
        registry.set_alias(ref.name, ref.version, alias)
    return ref


def register_external_lm(registry: Any, name: str, source: str, *, sae: dict[str, Any] | None = None,
                         hook: str | None = None, alias: str | None = None, example_text: list[str] | None = None,
                         progress: Callable[[str], None] = lambda m: None) -> Any:
    """Register a model that stays where it is: a local HF directory or an official name in the HF cache.

    `sae` is {"release": ..., "sae_id": ...} (SAELens release in the HF cache) or {"path": folder}.
    Files need not be present yet; the audit checks them and says which to place where.
    """
    from interpret.lm.loading import external_manifest
    manifest = external_manifest(source, name=name, sae=sae, hook=hook)
    lineage = Lineage(name=manifest["name"], path=manifest.get("path") or f"hf-cache:{source}",
                      sha256=manifest.get("weights_sha256_at_registration"))
    progress(f"registering {name} -> {manifest['kind']} {source}")
    return register_lm(registry, name, LMArtifact(manifest=manifest), example_text or ["The nurse said that she"],
                       lineage, description=f"language model at {source} (files stay outside the registry)", alias=alias)
