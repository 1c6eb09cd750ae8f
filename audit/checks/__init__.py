"""Audit checks: one module per check, each exposing `CHECK` (a `Check`).

Checks are discovered from this package, so adding a module adds a check; nothing
else in the engine changes.  Every check returns a `CheckResult` in the one finding
schema (`audit.findings.Finding`).
"""
from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from .base import AuditContext, Check, CheckResult

__all__ = ["AuditContext", "Check", "CheckResult", "available_checks"]


@cache
def available_checks() -> dict[str, Check]:
    found: dict[str, Check] = {}
    for mod in pkgutil.iter_modules(__path__):
        if mod.name.startswith("_") or mod.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{mod.name}")
        for check in getattr(module, "CHECKS", [getattr(module, "CHECK", None)]):
            if check is not None:
                found[check.name] = check
    return dict(sorted(found.items(), key=lambda kv: (kv[1].order, kv[0])))
