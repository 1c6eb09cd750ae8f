"""`aiaudit register-lm DIR --name NAME`: register a language model (and its SAE) from files on this machine."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import AuditInputError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
HELP = "\n\n".join((
    "Register a language model in MLflow for the SAE-probe and prompt-robustness checks.",
    "A Hugging Face folder (e.g. a gpt2 snapshot, ~/.cache/huggingface/hub/models--gpt2/snapshots/<commit>/) stays "
    "where it is: the registry records its path and the SHA-256 of its weights, and an audit refuses weights that "
    "changed since. A bundled aiaudit LM folder is copied into the registry with every file hashed. An SAE given "
    "with --sae is logged to MLflow, linked to the new version.",
    "Everything is checked before the store is touched; nothing is downloaded. Audit the model with a spec whose "
    "`model:` is models:/NAME@ALIAS and whose dataset is held-out text.",
))


def register_lm(
        source: Path = typer.Argument(..., help="Model directory: a Hugging Face save_pretrained folder (config.json, "
                                                "model.safetensors, tokenizer files), or a bundled aiaudit LM folder "
                                                "with lm.json (`aiaudit demo` caches them under "
                                                "$AIAUDIT_HOME/cache/lm/)."),
        name: str = typer.Option(..., "--name", help="Registered model name (letters, digits, '.', '_', '-')."),
        sae: Optional[Path] = typer.Option(None, "--sae", help="SAELens SAE folder (cfg.json + sae_weights.safetensors) "
                                                               "to log with the version; its SHA-256 is checked at "
                                                               "every audit."),
        hook: Optional[str] = typer.Option(None, "--hook", help="Hook point the probes read, e.g. "
                                                                "blocks.6.hook_resid_pre (default: the SAE's hook)."),
        alias: Optional[str] = typer.Option(None, "--alias", help="Alias to point at the new version, e.g. candidate."),
        example: list[str] = typer.Option([], "--example", help="Example input text stored with the version "
                                                                "(repeatable)."),
        json_output: bool = typer.Option(False, "--json", help="Print the registration as JSON.")) -> None:
    """Check a model directory (and SAE), then register it; see HELP."""
    from ..config import Settings
    from ..lm_io import inspect_lm_dir, register_lm_source
    from ..registry import SHA_TAG, Registry
    if not NAME.fullmatch(name):
        raise AuditInputError("model name may use letters, digits, '.', '_' and '-' only", source="--name")
    checked = inspect_lm_dir(source, name=name, sae_dir=sae, hook=hook)
    done = register_lm_source(Registry(Settings.from_env()), name, checked, alias=alias, example_text=example or None,
                              progress=lambda m: typer.echo(m, err=True))
    summary = {"model": done.ref.uri, "name": done.ref.name, "version": done.ref.version, "alias": alias,
               "kind": done.kind, "sha256": done.ref.tags.get(SHA_TAG), "weights_sha256": done.weights_sha256,
               "files": str(checked.manifest.get("path") or "copied into the registry"),
               "sae_run_id": done.sae_run_id, "sae_sha256": done.sae_sha256}
    if json_output:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    typer.echo(f"registered {done.ref.uri}" + (f" (@{alias})" if alias else ""))
    for key in ("kind", "files", "sha256", "weights_sha256", "sae_run_id", "sae_sha256"):
        if summary[key]:
            typer.echo(f"  {key:<15}{summary[key]}")


def register(app: typer.Typer) -> None:
    app.command("register-lm", help=HELP)(register_lm)
