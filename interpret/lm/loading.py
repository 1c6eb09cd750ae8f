"""Load a language model and its SAE from local files only, or say exactly which files to put where.

Three model sources, one manifest (`lm.json`) each:
  bundled    weights, config and tokenizer inside the registered model directory;
  local_dir  a Hugging Face model directory on this machine, booted with TransformerBridge;
  hf_cache   an official TransformerLens name (e.g. gpt2) read from the local Hugging Face cache.
SAE sources: a folder (`SAE.load_from_disk`) or a SAELens release read from the HF cache.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bundled import MANIFEST, TL_CONFIG, TOKENIZER_DIR, WEIGHTS, sha256_file
from .env import offline

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json")


class LMUnavailable(Exception):
    """Weights or tokenizer files are missing locally; the message names what to place where."""


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache directory, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")), "huggingface")
    return Path(home) / "hub"


def _repo_dir(repo_id: str) -> Path:
    return hf_hub_cache() / f"models--{repo_id.replace('/', '--')}"


def _cached(repo_id: str, filename: str, revision: str | None = None) -> Path | None:
    from huggingface_hub import try_to_load_from_cache
    hit = try_to_load_from_cache(repo_id, filename, cache_dir=str(hf_hub_cache()), revision=revision)
    return Path(hit) if isinstance(hit, str) else None


def official_hf_name(name: str) -> str:
    offline()
    from transformer_lens.loading_from_pretrained import get_official_model_name
    try:
        return get_official_model_name(name)
    except ValueError as e:
        raise LMUnavailable(f"'{name}' is not an official TransformerLens model name; register a local model "
                            "directory instead (source=/path/to/dir)") from e


# --- where the files are ---------------------------------------------------------------

def resolve_model_files(manifest: dict, model_dir: Path) -> dict[str, Any]:
    """Check that every file the model needs exists locally; never touches the network."""
    kind = manifest.get("kind")
    if kind == "bundled":
        missing = [f for f in (WEIGHTS, TL_CONFIG, f"{TOKENIZER_DIR}/tokenizer.json") if not (model_dir / f).is_file()]
        if missing:
            raise LMUnavailable(f"bundled model directory {model_dir} lacks {missing}; re-register the model")
        return {"kind": kind, "path": str(model_dir)}
    if kind == "local_dir":
        path = Path(manifest["path"])
        if not path.is_dir():
            raise LMUnavailable(f"model directory {path} does not exist: place config.json, model.safetensors "
                                f"and the tokenizer files ({', '.join(TOKENIZER_FILES)}) there")
        missing = []
        if not (path / "config.json").is_file():
            missing.append("config.json")
        if not any((path / w).is_file() for w in WEIGHT_FILES):
            missing.append("model.safetensors")
        if not any((path / t).is_file() for t in TOKENIZER_FILES):
            missing.append("tokenizer.json (or vocab.json + merges.txt)")
        if missing:
            raise LMUnavailable(f"model directory {path} lacks {missing}: place them there (e.g. from "
                                "`save_pretrained` of the model and its tokenizer)")
        weights = next(path / w for w in WEIGHT_FILES if (path / w).is_file())
        return {"kind": kind, "path": str(path), "weights": str(weights)}
    if kind == "hf_cache":
        source = manifest.get("source") or manifest["name"]
        repo = official_hf_name(source)
        revision = manifest.get("revision")
        config = _cached(repo, "config.json", revision)
        weights = next((w for w in (_cached(repo, f, revision) for f in WEIGHT_FILES) if w is not None), None)
        tokenizer = next((t for t in (_cached(repo, f, revision) for f in TOKENIZER_FILES) if t is not None), None)
        if config is None or weights is None or tokenizer is None:
            where = _repo_dir(repo) / "snapshots" / (revision or "<commit>")
            lacking = [n for n, v in (("config.json", config), ("model.safetensors", weights),
                                      ("tokenizer files", tokenizer)) if v is None]
            raise LMUnavailable(f"'{source}' is not in the local Hugging Face cache (missing {', '.join(lacking)}): "
                                f"populate {where}/ with config.json, model.safetensors and the tokenizer files "
                                f"(and {_repo_dir(repo)}/refs/main), e.g. `huggingface-cli download {repo}` on a "
                                "connected machine; this audit never downloads")
        return {"kind": kind, "repo_id": repo, "path": str(config.parent), "weights": str(weights)}
    raise LMUnavailable(f"unknown language-model kind {kind!r} in {MANIFEST}")


def resolve_sae_files(sae: dict | None, base_dir: Path | None = None) -> dict[str, Any] | None:
    """Locate the SAE a manifest names (`path` or `release` + `sae_id`)."""
    if not sae:
        return None
    if sae.get("path"):
        path = Path(sae["path"])
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        missing = [f for f in ("cfg.json", "sae_weights.safetensors") if not (path / f).is_file()]
        if missing:
            raise LMUnavailable(f"SAE folder {path} lacks {missing}: place cfg.json and sae_weights.safetensors there")
        return {"kind": "path", "path": str(path)}
    release, sae_id = sae.get("release"), sae.get("sae_id")
    offline()
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory
    directory = get_pretrained_saes_directory()
    if release not in directory:
        raise LMUnavailable(f"unknown SAELens release {release!r}")
    info = directory[release]
    if sae_id not in info.saes_map:
        raise LMUnavailable(f"release {release} has no SAE {sae_id!r}")
    folder = info.saes_map[sae_id]
    cfg = _cached(info.repo_id, f"{folder}/cfg.json")
    weights = _cached(info.repo_id, f"{folder}/sae_weights.safetensors")
    if cfg is None or weights is None:
        where = _repo_dir(info.repo_id) / "snapshots" / "<commit>" / folder
        raise LMUnavailable(f"SAE {release}/{sae_id} is not in the local Hugging Face cache: populate {where}/ "
                            f"with cfg.json and sae_weights.safetensors (`huggingface-cli download {info.repo_id} "
                            f"--include '{folder}/*'` on a connected machine)")
    return {"kind": "release", "release": release, "sae_id": sae_id, "repo_id": info.repo_id,
            "path": str(cfg.parent), "weights": str(weights)}


# --- loading -----------------------------------------------------------------------------

@dataclass
class LoadedLM:
    """A hooked model ready for probes, plus what is known about where it came from."""

    model: Any
    manifest: dict
    files: dict[str, Any]
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def general_purpose(self) -> bool:
        return bool(self.manifest.get("general_purpose", self.kind != "bundled"))


def load_lm(manifest: dict, model_dir: Path) -> LoadedLM:
    files = resolve_model_files(manifest, model_dir)
    offline()
    kind = manifest["kind"]
    if kind == "bundled":
        from safetensors.torch import load_file
        from sae_lens import HookedSAETransformer
        from transformer_lens import HookedTransformerConfig
        from .tokenizer import load_tokenizer
        cfg = HookedTransformerConfig(**json.loads((model_dir / TL_CONFIG).read_text()))
        model = HookedSAETransformer(cfg, tokenizer=load_tokenizer(model_dir / TOKENIZER_DIR))
        model.load_state_dict(load_file(str(model_dir / WEIGHTS)))
        prov = {"weights_sha256": sha256_file(model_dir / WEIGHTS), "processing": "none (trained in TransformerLens)"}
    elif kind == "local_dir":
        from transformer_lens.model_bridge import TransformerBridge
        model = TransformerBridge.boot_transformers(files["path"], device="cpu")
        prov = {"weights_sha256": sha256_file(Path(files["weights"])),
                "processing": "unprocessed Hugging Face weights (TransformerBridge)"}
    else:
        from sae_lens import HookedSAETransformer
        from transformers import AutoModelForCausalLM, AutoTokenizer
        snapshot = files["path"]  # the cached snapshot checked above: weights and tokenizer by path.
        # TransformerLens needs the official name to pick its weight conversion; it reads that name's
        # config from the local cache only (offline() set HF_HUB_OFFLINE; local_files_only, cache_dir).
        # tests/test_sae_probes.py loads this way with every socket refused.
        model = HookedSAETransformer.from_pretrained(
            manifest.get("source") or manifest["name"], device="cpu",
            hf_model=AutoModelForCausalLM.from_pretrained(snapshot, local_files_only=True),
            tokenizer=AutoTokenizer.from_pretrained(snapshot, local_files_only=True),
            cache_dir=str(hf_hub_cache()), local_files_only=True)
        prov = {"weights_sha256": sha256_file(Path(files["weights"])), "hf_repo": files["repo_id"],
                "snapshot": Path(files["path"]).name,
                "processing": "TransformerLens from_pretrained defaults (fold_ln, center_writing_weights, center_unembed)"}
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return LoadedLM(model=model, manifest=manifest, files=files, provenance=prov)


def load_sae(sae_files: dict[str, Any]):
    offline()
    from sae_lens import SAE
    sae = SAE.load_from_disk(sae_files["path"], device="cpu")  # a folder, or a release's cached folder
    sae.eval()
    for p in sae.parameters():
        p.requires_grad_(False)
    return sae


def describe_model_dir(path: Path) -> dict[str, Any]:
    """Architecture and residual width of a Hugging Face model directory, read from its config.json without
    loading weights; `LMUnavailable` unless TransformerBridge can boot it as a causal language model."""
    offline()
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformer_lens.model_bridge.sources.transformers import (determine_architecture_from_hf_config,
                                                                    get_hf_model_class_for_architecture)
    try:
        cfg = AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise LMUnavailable(f"{path / 'config.json'} is not a readable Hugging Face model config: {reason}") from None
    try:
        arch = determine_architecture_from_hf_config(cfg)
    except ValueError:
        raise LMUnavailable(f"model type {getattr(cfg, 'model_type', None)!r} in {path / 'config.json'} is not an "
                            "architecture TransformerLens's TransformerBridge supports") from None
    if get_hf_model_class_for_architecture(arch) is not AutoModelForCausalLM:
        raise LMUnavailable(f"{arch} in {path / 'config.json'} is not a causal language model; the probes score "
                            "next-token log-probabilities")
    return {"architecture": arch, "model_type": cfg.model_type, "d_model": getattr(cfg, "hidden_size", None)}


def describe_sae_dir(path: Path) -> dict[str, Any]:
    """Load an SAE folder with SAELens to validate it; its architecture, hook point and widths."""
    files = resolve_sae_files({"path": str(path)})
    try:
        sae = load_sae(files)
    except Exception as e:  # a malformed cfg.json or weights file: SAELens raises many types
        raise LMUnavailable(f"SAE folder {path} does not load with SAELens: {type(e).__name__}: "
                            f"{(str(e).strip().splitlines() or [''])[0]}") from None
    return {"architecture": sae.cfg.architecture(), "hook": sae.cfg.metadata.hook_name,
            "d_in": int(sae.cfg.d_in), "d_sae": int(sae.cfg.d_sae)}


def external_manifest(source: str, *, name: str | None = None, sae: dict | None = None, hook: str | None = None,
                      revision: str | None = None, general_purpose: bool = True) -> dict:
    """Manifest for a model that stays outside the registry: a local directory or an HF-cache name."""
    is_dir = os.sep in source or source.startswith(".") or Path(source).is_dir()
    manifest: dict[str, Any] = {"kind": "local_dir" if is_dir else "hf_cache", "source": source,
                                "name": name or (Path(source).name if is_dir else source),
                                "general_purpose": general_purpose, "hook": hook, "sae": sae, "files": {}}
    if is_dir:
        manifest["path"] = str(Path(source).resolve())
        weights = next((Path(source) / w for w in WEIGHT_FILES if (Path(source) / w).is_file()), None)
        manifest["weights_sha256_at_registration"] = sha256_file(weights) if weights else None
    else:
        manifest["revision"] = revision
    return manifest
