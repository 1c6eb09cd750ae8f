"""Language catalogs (Jinja2 templates under audit/templates/<lang>/) and number formatting.

Each catalog exports a `labels` dict, a `terms` glossary and parametrised sentences as
macros.  Catalogs render plain text (no autoescape); the layout renderers escape it.
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from risk.catalogue import check_catalogue

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
LANGS = ("en", "ko")
CATALOGS = ("common", "checks", "annex_iv", "fria", "model_card", "pmm_plan")


@lru_cache(maxsize=1)
def catalog_env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=False,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=False)


@lru_cache(maxsize=16)
def _module(lang: str, catalog: str) -> Any:
    return catalog_env().get_template(f"{lang}/{catalog}.j2").module


def catalog_names(lang: str, catalog: str) -> set[str]:
    """Macro and variable names a catalog exports (the en and ko sets must be equal)."""
    mod = _module(lang, catalog)
    return {n for n in dir(mod) if not n.startswith("_")}


class Text:
    def __init__(self, lang: str):
        if lang not in LANGS:
            raise ValueError(f"unsupported language {lang!r}")
        self.lang = lang
        common = _module(lang, "common")
        self.labels: dict[str, str] = common.labels
        self.terms: dict[str, str] = common.terms
        self.columns: dict[str, str] = common.columns
        self.obligations: dict[str, str] = common.obligations

    def __call__(self, catalog: str, macro: str, /, **kw: Any) -> str:
        return " ".join(str(getattr(_module(self.lang, catalog), macro)(**kw)).split())

    def l(self, key: str) -> str:  # noqa: E743 - short name used in every builder
        return self.labels[key]

    def term(self, token: str, default: str | None = None) -> str:
        return self.terms.get(token, token if default is None else default)

    def check(self, name: str) -> str:
        """A check's one display name, from the catalogue (the risk section is not a check)."""
        return self.terms.get(f"check.{name}") or check_catalogue().title(name, self.lang)

    def status(self, value: str) -> str:
        return self.terms.get(f"status.{value}", value)

    def severity(self, value: str) -> str:
        return self.terms.get(f"severity.{value}", value)

    def column(self, key: str) -> str:
        if key in self.columns:
            return self.columns[key]
        return key.replace("_", " ") if self.lang == "en" else key

    def metric(self, key: str | None) -> str:
        """Readable metric name from a dotted key: performance.roc_auc -> ROC AUC; unknown parts kept."""
        if not key:
            return "—"
        parts = key.split(".")
        if parts[0] in ("performance", "fairness", "slices", "explanations", "robustness", "sae") and len(parts) > 1:
            parts = parts[1:]
        return " · ".join(self.terms.get(p, p) for p in parts)

    # numbers ----------------------------------------------------------------------
    @staticmethod
    def num(v: Any, digits: int = 4) -> str:
        if v is None:
            return "—"
        if isinstance(v, bool):
            return str(v).lower()
        if isinstance(v, int):
            return f"{v:,}"
        if isinstance(v, float):
            if not math.isfinite(v):
                return "—"
            if v != 0 and (abs(v) >= 1e6 or abs(v) < 0.5 * 10 ** -digits):
                return f"{v:.3e}"
            if v == int(v) and abs(v) >= 2:
                return f"{int(v):,}"
            return f"{v:.{digits}f}"
        return str(v)

    def ci(self, ci: Any, digits: int = 4) -> str:
        if not ci or len(ci) != 2 or ci[0] is None or ci[1] is None:
            return "—"
        lo, hi = (self.num(v, digits) for v in ci)
        if ("." in lo) != ("." in hi) and all(isinstance(v, (int, float)) for v in ci):
            lo, hi = (f"{float(v):.{digits}f}" for v in ci)  # one bound integral, the other not: same style
        return f"[{lo}, {hi}]"

    def yes_no(self, v: bool) -> str:
        return self.labels["yes"] if v else self.labels["no"]

    @staticmethod
    def when(iso: str | None) -> str:
        """2026-11-22T02:57:53Z -> 2026-11-22 02:57 UTC (the same in both languages)."""
        if not iso:
            return "—"
        m = re.match(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})", iso)
        return f"{m.group(1)} {m.group(2)} UTC" if m else iso
