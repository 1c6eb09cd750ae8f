"""The bundled planted-bias LM: a small TransformerLens model trained here on the generated corpus.

Training is seeded and cached on disk by a hash of its configuration, so the CI fixture,
the demo and the benchmark reuse one another's work. A model directory holds:

    lm.json              manifest: kind, config, corpus ground truth, training record, file hashes
    model.safetensors    the state dict (no pickle)
    tl_config.json       HookedTransformerConfig fields
    tokenizer/           Hugging Face tokenizer files (character level)
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from .corpus import CorpusConfig, CorpusGenerator
from .env import TRAINING_THREADS, deterministic_torch, offline
from .tokenizer import build_char_tokenizer, char_vocab

MANIFEST = "lm.json"
WEIGHTS = "model.safetensors"
TL_CONFIG = "tl_config.json"
TOKENIZER_DIR = "tokenizer"
DEFAULT_HOOK = "blocks.1.hook_resid_pre"


@dataclass(frozen=True)
class LMTrainConfig:
    """Architecture, optimisation and corpus of a bundled LM; `key()` names its cache entry."""

    name: str = "planted-bias-lm"
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    n_layers: int = 2
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    n_ctx: int = 128
    steps: int = 1200
    batch_rows: int = 32
    lr: float = 2e-3
    warmup_steps: int = 50
    weight_decay: float = 0.01
    seed: int = 0                 # weight initialisation (the corpus has its own seed, corpus.seed)
    threads: int = TRAINING_THREADS  # torch intra-op threads while training: part of the result

    def to_dict(self) -> dict:
        d = asdict(self)
        d["corpus"] = self.corpus.to_dict()
        return d

    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    @property
    def tokens(self) -> int:
        return self.steps * self.batch_rows * self.n_ctx

    def with_rate(self, attribute: str, rate: float, name: str | None = None) -> "LMTrainConfig":
        rates = {**self.corpus.rates, attribute: rate}
        return replace(self, name=name or self.name, corpus=CorpusConfig(rates=rates, seed=self.corpus.seed))


def demo_configs() -> tuple[LMTrainConfig, LMTrainConfig]:
    """The demo's planted model (gender 90 %) and its control (50 %): same seed, same steps."""
    planted = LMTrainConfig(name="planted-bias-lm", corpus=CorpusConfig(rates={"gender": 0.9, "nationality": 0.5}))
    return planted, planted.with_rate("gender", 0.5, name="control-lm")


def fixture_configs() -> tuple[LMTrainConfig, LMTrainConfig]:
    """A smaller, faster pair for the test suite (a quarter of the demo's tokens; the planted
    association is learned by then: gap ≈ 3.6 nats on the 300-step model)."""
    planted, control = demo_configs()
    return replace(planted, steps=300), replace(control, steps=300)


def tl_config_dict(cfg: LMTrainConfig, d_vocab: int) -> dict:
    return {"n_layers": cfg.n_layers, "d_model": cfg.d_model, "d_head": cfg.d_model // cfg.n_heads,
            "n_heads": cfg.n_heads, "d_mlp": cfg.d_mlp, "n_ctx": cfg.n_ctx, "d_vocab": d_vocab, "act_fn": "gelu",
            "normalization_type": "LN", "positional_embedding_type": "standard", "seed": cfg.seed,
            "device": "cpu", "default_prepend_bos": True, "model_name": cfg.name}


def encode_rows(rows: list[str]) -> np.ndarray:
    """Character ids with a leading BOS, as one int64 array (fast path of the char tokenizer)."""
    vocab = char_vocab()
    lut = np.full(256, vocab["<unk>"], dtype=np.int64)
    for ch, i in vocab.items():
        if len(ch) == 1:
            lut[ord(ch)] = i
    raw = np.frombuffer("".join(rows).encode("ascii", errors="replace"), dtype=np.uint8).reshape(len(rows), -1)
    return np.concatenate([np.full((len(rows), 1), vocab["<bos>"], dtype=np.int64), lut[raw]], axis=1)


def corpus_tokens(cfg: LMTrainConfig, n_rows: int, stream: str = "train") -> tuple[np.ndarray, CorpusGenerator]:
    gen = CorpusGenerator(cfg.corpus, stream=stream)
    rows = gen.rows(n_rows, cfg.n_ctx - 1)
    return encode_rows(rows), gen


def _lr_at(cfg: LMTrainConfig, step: int) -> float:
    warm = min(1.0, (step + 1) / cfg.warmup_steps)
    cosine = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
    return cfg.lr * warm * cosine


def train_lm(cfg: LMTrainConfig, out_dir: Path, progress: Callable[[str], None] = lambda m: None) -> dict:
    """Train from scratch and write the model directory; returns the manifest.

    Training runs under `deterministic_torch(cfg.threads)`: deterministic kernels and a fixed thread
    count, restored afterwards, so the same configuration gives bit-identical weights run to run on a
    machine (across CPUs with another SIMD level the last bits may differ; the probe verdicts are
    checked across training seeds for that reason, benchmarks/bench_sae_seeds.py)."""
    offline()
    with deterministic_torch(cfg.threads) as determinism:
        return _train_lm(cfg, out_dir, progress, determinism)


def _train_lm(cfg: LMTrainConfig, out_dir: Path, progress: Callable[[str], None], determinism: dict) -> dict:
    import torch
    from safetensors.torch import save_file
    from sae_lens import HookedSAETransformer
    from transformer_lens import HookedTransformerConfig

    out_dir.mkdir(parents=True, exist_ok=True)
    tok = build_char_tokenizer(out_dir / TOKENIZER_DIR)
    tl_cfg = tl_config_dict(cfg, len(tok))
    torch.manual_seed(cfg.seed)
    model = HookedSAETransformer(HookedTransformerConfig(**tl_cfg), tokenizer=tok)
    data, gen = corpus_tokens(cfg, cfg.steps * cfg.batch_rows)
    corpus_hash = hashlib.sha256(data.tobytes()).hexdigest()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    t0, losses = time.perf_counter(), []
    model.train()
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = _lr_at(cfg, step)
        batch = torch.from_numpy(data[step * cfg.batch_rows:(step + 1) * cfg.batch_rows])
        loss = model(batch, return_type="loss")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if step % 100 == 0 or step == cfg.steps - 1:
            progress(f"{cfg.name}: step {step + 1}/{cfg.steps}, loss {losses[-1]:.3f} nats/char")
    seconds = time.perf_counter() - t0
    model.eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out_dir / WEIGHTS))
    (out_dir / TL_CONFIG).write_text(json.dumps(tl_cfg, indent=2))
    files = {p.relative_to(out_dir).as_posix(): sha256_file(p) for p in sorted(out_dir.rglob("*"))
             if p.is_file() and p.name != MANIFEST}
    manifest = {
        "kind": "bundled", "name": cfg.name, "general_purpose": False, "hook": DEFAULT_HOOK,
        "config": cfg.to_dict(), "config_key": cfg.key(),
        "corpus": {"generator": "interpret.lm.corpus", "rates": cfg.corpus.to_dict()["rates"],
                   "vocabulary": cfg.corpus.to_dict()["vocabulary"],
                   "empirical_rates": gen.empirical_rates(), "sha256": corpus_hash, "tokens": int(data.size),
                   "seed": cfg.corpus.seed},
        "training": {"steps": cfg.steps, "tokens": cfg.tokens, "seconds": round(seconds, 2),
                     "tokens_per_second": round(cfg.tokens / seconds, 1),
                     "final_loss": float(np.mean(losses[-20:])), "threads": torch.get_num_threads(),
                     "seeds": {"model_init": cfg.seed, "corpus": cfg.corpus.seed}, "determinism": determinism},
        "files": files,
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def default_cache_root() -> Path:
    env = os.environ.get("AIAUDIT_CACHE")
    if env:
        return Path(env)
    home = os.environ.get("AIAUDIT_HOME")
    return Path(home) / "cache" if home else Path.home() / ".cache" / "aiaudit"


def ensure_lm(cfg: LMTrainConfig, cache_root: Path | None = None,
              progress: Callable[[str], None] = lambda m: None) -> Path:
    """The cached model directory for `cfg`, training it first if absent (atomic rename)."""
    root = (cache_root or default_cache_root()) / "lm"
    final = root / f"{cfg.name}-{cfg.key()}"
    if (final / MANIFEST).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cfg.name}-", dir=root))
    try:
        progress(f"training {cfg.name} ({cfg.tokens:,} tokens; cached under {final})")
        train_lm(cfg, tmp, progress)
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished first; keep its copy
            if not (final / MANIFEST).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def heldout_text(cfg: LMTrainConfig, n_docs: int = 300, sentences_per_doc: int = 4) -> list[str]:
    """Held-out documents from the same generator on a separate stream (never seen in training)."""
    gen = CorpusGenerator(cfg.corpus, stream="heldout")
    return [" ".join(gen.sentences(sentences_per_doc)) for _ in range(n_docs)]


