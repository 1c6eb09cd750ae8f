"""Language models in the audit: the lazy model handle, held-out text files, registration of an LM
and of its SAE in MLflow, and resolving the SAE linked to a model version.

Nothing here downloads: a model or SAE whose files are not on this machine is an `AuditInputError`
(exit 2) naming the directory to populate.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import warnings
import weakref
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
DEFAULT_EXAMPLE = "The nurse said that she went home early."


@dataclass
class LMHandle:
    """The estimator of a registered language model: loads weights only when a check needs them."""

    model_dir: Path
    manifest: dict[str, Any]
    sae_files: dict[str, Any] | None = None
    sae_source: dict[str, Any] = field(default_factory=dict)
    _loaded: Any = None
    _sae: Any = None
    _owned: list[weakref.finalize] = field(default_factory=list, repr=False, compare=False)

    @property
    def hook(self) -> str | None:
        return self.manifest.get("hook")

    def own(self, directory: Path) -> None:
        """Remove `directory` (downloaded model or SAE files) on `close()` or when this handle is garbage-collected.

        The files are read lazily, when a check first calls `load()` / `load_sae()`, so they must outlive
        registry loading; once loaded, weights and tokenizer are in memory and the files are no longer needed.
        """
        self._owned.append(weakref.finalize(self, shutil.rmtree, str(directory), ignore_errors=True))

    def close(self) -> None:
        for finalizer in self._owned:
            finalizer()

    def __enter__(self) -> "LMHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def check_available(self) -> dict[str, Any]:
        """Resolve every local file now, so missing weights stop the audit before it starts."""
        from interpret.lm.loading import LMUnavailable, resolve_model_files, resolve_sae_files
        try:
            files = resolve_model_files(self.manifest, self.model_dir)
            recorded = self.manifest.get("weights_sha256_at_registration")
            if files.get("weights") and recorded and sha256_file(files["weights"]) != recorded:
                raise IntegrityError(f"weights {files['weights']} changed since model {self.manifest.get('name')} was "
                                     "registered (SHA-256 differs): register the new weights as a new version")
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
    except UnicodeDecodeError:
        from .textcheck import not_utf8_message
        raise AuditInputError(not_utf8_message(path, "text file"), source=str(path)) from None
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
    """Download the SAE logged for this model version (if any) and verify it against the registry tag.

    The download lives as long as the model's handle (SAELens reads it when a check first needs the SAE)."""
    handle: LMHandle = model.estimator
    run_id = ref.tags.get(SAE_RUN_TAG)
    if not run_id:
        return
    dst = Path(tempfile.mkdtemp(prefix="aiaudit-sae-"))
    try:
        local = _fetch_sae(registry, ref, run_id, dst)
    except BaseException:
        shutil.rmtree(dst, ignore_errors=True)
        raise
    handle.own(dst)
    handle.sae_files = {"kind": "path", "path": str(local)}
    handle.sae_source = {"kind": "mlflow_run", "run_id": run_id, "sha256": ref.tags.get(SAE_SHA_TAG),
                         "hook": ref.tags.get(SAE_HOOK_TAG)}


def _fetch_sae(registry: Any, ref: Any, run_id: str, dst: Path) -> Path:
    import mlflow
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
    return local


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
    return _register_manifest(registry, name, external_manifest(source, name=name, sae=sae, hook=hook), None,
                              alias=alias, example_text=example_text, progress=progress)


def _register_manifest(registry: Any, name: str, manifest: dict[str, Any], source_dir: Path | None, *,
                       alias: str | None, example_text: list[str] | None, progress: Callable[[str], None]) -> Any:
    """A bundled model (`source_dir`: its files are copied into the registry) or one whose files stay outside."""
    source = str(source_dir or manifest.get("path") or manifest.get("source"))
    progress(f"registering {name} -> {manifest['kind']} {source}")
    if source_dir is not None:
        corpus = manifest.get("corpus") or {}
        lineage = Lineage(name="aiaudit generated corpus" if corpus else manifest.get("name"), path=corpus.get("generator"),
                          sha256=corpus.get("sha256"), columns=[LM_TEXT_COLUMN] if corpus else [])
        description = f"aiaudit bundled language model {manifest.get('name', '')} (files copied from {source})"
    else:
        lineage = Lineage(name=manifest["name"], path=manifest.get("path") or f"hf-cache:{source}",
                          sha256=manifest.get("weights_sha256_at_registration"))
        description = f"language model at {source} (files stay outside the registry)"
    return register_lm(registry, name, LMArtifact(manifest=manifest, source_dir=source_dir),
                       example_text or [DEFAULT_EXAMPLE], lineage, description=description, alias=alias)


# --- registering a model directory (the `register-lm` command) ------------------------------

@dataclass(frozen=True)
class LMSource:
    """A checked model directory, ready to register: nothing has been written yet."""

    manifest: dict[str, Any]
    source_dir: Path | None          # set for a bundled model, whose files are copied into the registry
    weights_sha256: str | None
    sae_dir: Path | None = None
    sae_record: dict[str, Any] | None = None


@dataclass(frozen=True)
class LMRegistration:
    ref: Any
    kind: str
    weights_sha256: str | None
    sae_run_id: str | None = None
    sae_sha256: str | None = None


def inspect_lm_dir(source: Path, *, name: str, sae_dir: Path | None = None, hook: str | None = None) -> LMSource:
    """Check a model directory (and SAE folder) completely before anything is registered.

    A Hugging Face `save_pretrained` folder (config.json, weights, tokenizer files) must hold a causal LM that
    TransformerBridge boots; it stays where it is, its weights' SHA-256 recorded and re-checked at every audit.
    A bundled aiaudit LM folder (lm.json, model.safetensors, tl_config.json, tokenizer/) must match the hashes in
    its lm.json; it is copied into the registry. The SAE must load with SAELens and read the model's width.
    """
    from interpret.lm.bundled import MANIFEST, TL_CONFIG
    from interpret.lm.loading import (LMUnavailable, describe_model_dir, describe_sae_dir, external_manifest,
                                      resolve_model_files)
    if not source.exists():
        raise AuditInputError("model directory not found", source=str(source))
    if not source.is_dir():
        raise AuditInputError("not a directory: give the folder that holds the model files", source=str(source))
    if sae_dir is not None and not sae_dir.is_dir():
        raise AuditInputError("SAE folder not found", source=str(sae_dir))
    try:
        if (source / MANIFEST).is_file():
            manifest = _bundled_manifest(source, hook)
            resolve_model_files(manifest, source)
            width = _json_file(source / TL_CONFIG).get("d_model")
            local, weights = source, manifest["files"].get("model.safetensors")
        elif (source / "config.json").is_file():
            resolve_model_files({"kind": "local_dir", "path": str(source)}, source)
            width = describe_model_dir(source)["d_model"]
            manifest = external_manifest(str(source.resolve()), name=name, hook=hook)
            local, weights = None, manifest["weights_sha256_at_registration"]
        else:
            raise AuditInputError("not a language-model directory: expected a Hugging Face save_pretrained folder "
                                  "(config.json, model.safetensors, tokenizer files) or a bundled aiaudit LM (lm.json)",
                                  source=str(source))
        sae_info = describe_sae_dir(sae_dir) if sae_dir is not None else None
    except LMUnavailable as e:
        raise AuditInputError(str(e)) from None
    record = None
    if sae_dir is not None and sae_info is not None:
        if width and sae_info["d_in"] != width:
            raise AuditInputError(f"the SAE reads {sae_info['d_in']}-wide activations but the model's residual stream "
                                  f"is {width} wide", source=str(sae_dir))
        from interpret.sae.train import TRAINING_RECORD
        trained = sae_dir / TRAINING_RECORD
        record = _json_file(trained) if trained.is_file() else {"config": {**sae_info, "source": str(sae_dir.resolve())}}
    return LMSource(manifest=manifest, source_dir=local, weights_sha256=weights, sae_dir=sae_dir, sae_record=record)


def register_lm_source(registry: Any, name: str, lm: LMSource, *, alias: str | None = None,
                       example_text: list[str] | None = None,
                       progress: Callable[[str], None] = lambda m: None) -> LMRegistration:
    """Register a checked model directory, and log its SAE linked to the new version."""
    ref = _register_manifest(registry, name, lm.manifest, lm.source_dir, alias=alias, example_text=example_text,
                             progress=progress)
    run_id = None
    if lm.sae_dir is not None:
        progress(f"logging the SAE from {lm.sae_dir}")
        run_id = log_sae(registry, ref, lm.sae_dir, lm.sae_record or {})
    return LMRegistration(ref=ref, kind=lm.manifest["kind"], weights_sha256=lm.weights_sha256, sae_run_id=run_id,
                          sae_sha256=ref.tags.get(SAE_SHA_TAG) if run_id else None)


def _json_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AuditInputError(f"not readable JSON ({type(e).__name__})", source=str(path)) from None
    if not isinstance(data, dict):
        raise AuditInputError("expected a JSON object", source=str(path))
    return data


def _bundled_manifest(source: Path, hook: str | None) -> dict[str, Any]:
    from interpret.lm.bundled import MANIFEST
    manifest = _json_file(source / MANIFEST)
    if manifest.get("kind") != "bundled":
        raise AuditInputError(f"{MANIFEST} describes a {manifest.get('kind')!r} model; only a bundled aiaudit LM is "
                              "registered from its own folder", source=str(source))
    files = manifest.get("files")
    if not isinstance(files, dict) or "model.safetensors" not in files:
        raise AuditInputError(f"{MANIFEST} records no file hashes", source=str(source))
    for rel, digest in files.items():
        path = source / rel
        if not path.is_file() or sha256_file(path) != digest:
            raise AuditInputError(f"{rel} is missing or does not match the SHA-256 recorded in {MANIFEST}", source=str(source))
    return {**manifest, "hook": hook or manifest.get("hook")}
