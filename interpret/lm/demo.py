"""Build the demo pair (planted-bias LM and its 50 % control), each with a trained SAE, cached on disk."""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from .bundled import MANIFEST, LMTrainConfig, corpus_tokens, default_cache_root, demo_configs, ensure_lm, fixture_configs
from .loading import load_lm


@dataclass(frozen=True)
class DemoLM:
    name: str
    config: LMTrainConfig
    lm_dir: Path
    sae_dir: Path
    manifest: dict
    sae_record: dict


def sae_config(fixture: bool = False):
    from ..sae.train import SAETrainConfig
    return SAETrainConfig(training_tokens=300_000 if fixture else 1_000_000)


def build_demo_lms(cache_root: Path | None = None, fixture: bool = False,
                   configs: tuple[LMTrainConfig, ...] | None = None,
                   progress: Callable[[str], None] = lambda m: None) -> list[DemoLM]:
    """Train (or reuse) each LM and an SAE on its default hook; `fixture` is the small CI configuration."""
    from ..sae.train import TRAINING_RECORD, ensure_sae
    root = cache_root or default_cache_root()
    configs = configs or (fixture_configs() if fixture else demo_configs())
    scfg = sae_config(fixture)
    out = []
    for cfg in configs:
        lm_dir = ensure_lm(cfg, root, progress)
        manifest = json.loads((lm_dir / MANIFEST).read_text())
        model = load_lm(manifest, lm_dir).model
        scfg_m = replace(scfg, hook=manifest["hook"], context_size=cfg.n_ctx)
        sae_dir = ensure_sae(model, lambda n, c=cfg: corpus_tokens(c, n, stream="sae")[0], scfg_m, root,
                             manifest["config_key"], cfg.name, progress)
        out.append(DemoLM(cfg.name, cfg, lm_dir, sae_dir, manifest, json.loads((sae_dir / TRAINING_RECORD).read_text())))
    return out
