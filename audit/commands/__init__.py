"""CLI command groups beyond the core ones in `audit.cli`.

Each module here defines `register(app: typer.Typer) -> None`; `audit.cli` calls every
one, so a feature adds its commands by adding a module.
"""
from __future__ import annotations

import importlib
import pkgutil

import typer


def register_all(app: typer.Typer) -> None:
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}").register(app)
