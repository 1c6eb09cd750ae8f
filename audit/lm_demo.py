"""The language-model demo: register the planted-bias LM and its 50 % control, each with its SAE.

    from audit.lm_demo import register_demo_lm
    register_demo_lm(registry)            # -> ["models:/planted-bias-lm/1", "models:/control-lm/1"]

then `aiaudit run examples/lm/audit.yaml` (and examples/lm/control.yaml).
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

from .model_io import LMArtifact, Lineage

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "lm"
HELDOUT = ROOT / "data" / "lm" / "heldout.csv"
SPECS = {"planted-bias-lm": EXAMPLE / "audit.yaml", "control-lm": EXAMPLE / "control.yaml"}


def write_heldout(path: Path = HELDOUT, n_docs: int = 300) -> Path:
    """Regenerate the bundled held-out text (deterministic; never seen in training)."""
    from interpret.lm.bundled import demo_configs, heldout_text
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text"])
        for doc in heldout_text(demo_configs()[0], n_docs=n_docs):
            w.writerow([doc])
    return path


def register_demo_lm(registry, alias: str = "candidate", fixture: bool = False, cache_root: Path | None = None,
                     progress: Callable[[str], None] = print, configs: tuple | None = None) -> list[str]:
    """Train (cached) and register both demo LMs with their tokenizer, and log each SAE linked to its version;
    `configs` replaces the bundled pair (e.g. the same pair with another training seed)."""
    from interpret.lm.demo import build_demo_lms
    from .lm_io import log_sae, register_lm
    uris = []
    for demo in build_demo_lms(cache_root=cache_root, fixture=fixture, configs=configs, progress=progress):
        corpus = demo.manifest["corpus"]
        lineage = Lineage(name="aiaudit planted-bias corpus (generated)", path=corpus["generator"],
                          sha256=corpus["sha256"], rows=int(corpus["tokens"]) // demo.config.n_ctx, columns=["text"])
        rates = ", ".join(f"{k} {v:.0%}" for k, v in corpus["rates"].items())
        ref = register_lm(registry, demo.name, LMArtifact(manifest=demo.manifest, source_dir=demo.lm_dir),
                          ["The nurse said that she went home early."], lineage,
                          description=f"aiaudit demo LM: {demo.config.n_layers}-layer char-level transformer, "
                                      f"planted stereotype rates {rates}", alias=alias)
        progress(f"registered {ref.uri}; logging its SAE")
        log_sae(registry, ref, demo.sae_dir, demo.sae_record)
        uris.append(ref.uri)
    return uris
