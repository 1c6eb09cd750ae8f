"""Train an SAE on a hook point of a local model with SAELens's LM runner (offline, wandb disabled)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np

from ..lm.env import TRAINING_THREADS, deterministic_torch, offline

Architecture = Literal["topk", "batchtopk", "standard", "jumprelu", "gated"]
SAE_FILES = ("cfg.json", "sae_weights.safetensors")
TRAINING_RECORD = "aiaudit_sae.json"


@dataclass(frozen=True)
class SAETrainConfig:
    architecture: Architecture = "topk"
    hook: str = "blocks.1.hook_resid_pre"
    d_sae: int = 1024
    k: int = 16                   # TopK / BatchTopK sparsity
    l1_coefficient: float = 5.0   # standard / gated
    l0_coefficient: float = 1.0   # jumprelu
    training_tokens: int = 1_000_000
    batch_tokens: int = 1024
    context_size: int = 128
    lr: float = 1e-3
    seed: int = 0                 # SAE initialisation and activation-buffer shuffling
    threads: int = TRAINING_THREADS  # torch intra-op threads while training: part of the result

    def to_dict(self) -> dict:
        return asdict(self)

    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def _training_sae_config(cfg: SAETrainConfig, d_in: int):
    from sae_lens import (BatchTopKTrainingSAEConfig, GatedTrainingSAEConfig, JumpReLUTrainingSAEConfig,
                          StandardTrainingSAEConfig, TopKTrainingSAEConfig)
    common: dict[str, Any] = {"d_in": d_in, "d_sae": cfg.d_sae, "device": "cpu", "dtype": "float32"}
    if cfg.architecture == "topk":
        return TopKTrainingSAEConfig(k=cfg.k, **common)
    if cfg.architecture == "batchtopk":
        return BatchTopKTrainingSAEConfig(k=cfg.k, **common)
    if cfg.architecture == "standard":
        return StandardTrainingSAEConfig(l1_coefficient=cfg.l1_coefficient, **common)
    if cfg.architecture == "gated":
        return GatedTrainingSAEConfig(l1_coefficient=cfg.l1_coefficient, **common)
    if cfg.architecture == "jumprelu":
        return JumpReLUTrainingSAEConfig(l0_coefficient=cfg.l0_coefficient, **common)
    raise ValueError(f"unknown SAE architecture {cfg.architecture!r}")


def train_sae(model: Any, tokens: np.ndarray, cfg: SAETrainConfig, out_dir: Path, model_name: str,
              progress: Callable[[str], None] = lambda m: None) -> dict:
    """Train on `tokens` ([rows, context_size] ids with BOS) and write an SAE folder; returns its record."""
    offline()
    import datasets
    import torch
    from sae_lens import LanguageModelSAERunnerConfig, LanguageModelSAETrainingRunner, LoggingConfig

    if tokens.ndim != 2 or tokens.shape[1] != cfg.context_size:
        raise ValueError(f"tokens must be [rows, {cfg.context_size}], got {tokens.shape}")
    needed = -(-cfg.training_tokens // cfg.context_size)
    if tokens.shape[0] < needed:  # cycle the data rather than stop early
        tokens = np.concatenate([tokens] * (-(-needed // tokens.shape[0])))[:needed]
    d_in = int(model.cfg.d_model)
    steps = cfg.training_tokens // cfg.batch_tokens
    dataset = datasets.Dataset.from_dict({"tokens": tokens.astype(np.int64).tolist()})
    runner_cfg = LanguageModelSAERunnerConfig(
        sae=_training_sae_config(cfg, d_in), model_name=model_name, hook_name=cfg.hook, dataset_path="",
        context_size=cfg.context_size, training_tokens=cfg.training_tokens, train_batch_size_tokens=cfg.batch_tokens,
        n_batches_in_buffer=max(8, 2 * -(-cfg.batch_tokens // cfg.context_size)), store_batch_size_prompts=16,
        n_batches_for_norm_estimate=20, lr=cfg.lr, lr_warm_up_steps=max(1, steps // 20), device="cpu",
        seed=cfg.seed, dead_feature_window=max(50, steps // 8), feature_sampling_window=max(100, steps // 4),
        logger=LoggingConfig(log_to_wandb=False), checkpoint_path=None, output_path=str(out_dir), verbose=False,
        streaming=False, is_dataset_tokenized=True, prepend_bos=True)
    progress(f"training {cfg.architecture} SAE {d_in}->{cfg.d_sae} on {cfg.hook}, {cfg.training_tokens:,} tokens")
    t0 = time.perf_counter()
    # the runner installs SIGINT/SIGTERM handlers for checkpointing and never restores them
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    # deterministic kernels and a fixed thread count (restored after): same config, same SAE
    with deterministic_torch(cfg.threads) as determinism:
        torch.manual_seed(cfg.seed)
        try:
            LanguageModelSAETrainingRunner(runner_cfg, override_model=model, override_dataset=dataset).run()
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
    seconds = time.perf_counter() - t0
    for f in SAE_FILES:
        if not (out_dir / f).is_file():
            raise RuntimeError(f"SAELens did not write {f} to {out_dir}")
    record = {"config": cfg.to_dict(), "config_key": cfg.key(), "model_name": model_name, "d_in": d_in,
              "seconds": round(seconds, 2), "tokens_per_second": round(cfg.training_tokens / seconds, 1),
              "dataset_sha256": hashlib.sha256(tokens.tobytes()).hexdigest(),
              "seeds": {"sae": cfg.seed}, "determinism": determinism,
              "sae_lens": _version("sae-lens"), "transformer_lens": _version("transformer-lens")}
    (out_dir / TRAINING_RECORD).write_text(json.dumps(record, indent=2))
    return record


def _version(dist: str) -> str:
    from importlib import metadata
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def ensure_sae(model: Any, tokens_fn: Callable[[int], np.ndarray], cfg: SAETrainConfig, cache_dir: Path,
               model_key: str, model_name: str, progress: Callable[[str], None] = lambda m: None) -> Path:
    """Cached SAE folder for (model, cfg); `tokens_fn(n_rows)` supplies training rows if it must be trained."""
    final = cache_dir / "sae" / f"{model_key}-{cfg.key()}"
    if all((final / f).is_file() for f in (*SAE_FILES, TRAINING_RECORD)):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".sae-", dir=final.parent))
    try:
        rows = -(-cfg.training_tokens // cfg.context_size)
        train_sae(model, tokens_fn(rows), cfg, tmp, model_name, progress)
        try:
            os.replace(tmp, final)
        except OSError:
            if not (final / TRAINING_RECORD).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
