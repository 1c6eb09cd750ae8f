"""Audit checks: one module per check, each exposing `CHECK` (a `Check`).

Checks are discovered from this package and named once in the check catalogue
(policies/checks.yaml: display names per language, run order); adding a module and its
catalogue entry adds a check, nothing else in the engine changes.  Every check returns a `CheckResult` in the one finding
schema (`audit.findings.Finding`).
"""
from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from risk.catalogue import check_catalogue

from .base import AuditContext, Check, CheckResult

__all__ = ["AuditContext", "Check", "CheckResult", "available_checks", "check_catalogue"]


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
    catalogue = check_catalogue().names
    if unlisted := sorted(set(found) - set(catalogue)):
        raise RuntimeError(f"check(s) {unlisted} are not in the catalogue, policies/checks.yaml")
    if unimplemented := [n for n in catalogue if n not in found]:
        raise RuntimeError(f"catalogue check(s) {unimplemented} have no implementation in audit/checks")
    return {name: found[name] for name in catalogue}  # the catalogue's order is the run order
