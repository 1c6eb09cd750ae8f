"""Per-process resources (engine, parsed audits) and the per-request context handed to pages."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import streamlit as st

from audit import review
from audit.config import Settings
from audit.engine import AuditEngine
from audit.errors import AuditInputError
from audit.result import AuditResult
from audit.users import User

from . import i18n
from .render import md


@st.cache_resource(show_spinner=False)
def _engine(home: str, tracking_uri: str) -> AuditEngine:
    return AuditEngine(Settings(home=Path(home), tracking_uri=tracking_uri))


def get_engine() -> AuditEngine:
    s = Settings.from_env()
    return _engine(str(s.home), s.tracking_uri)


@st.cache_resource(show_spinner=False, max_entries=64)
def _result(home: str, audit_id: str, sha256: str) -> AuditResult:
    return get_engine().load_result(audit_id)


def load_result(engine: AuditEngine, audit_id: str) -> AuditResult:
    """audit.json is immutable once published; cache it by id and recorded hash."""
    row = engine.records.get_audit(audit_id)
    if row is None:
        raise KeyError(audit_id)
    return _result(str(engine.settings.home), audit_id, row["audit_sha256"])


@st.cache_data(ttl=10, show_spinner=False)
def _versions(home: str, tracking_uri: str) -> list[dict[str, Any]]:
    try:
        versions = get_engine().registry.list_versions()
    except Exception:  # registry unreachable: the inventory falls back to the audit records
        return []
    aliases: dict[tuple[str, str], list[str]] = {}
    for name in sorted({v.name for v in versions}):  # search results do not carry aliases; the model does
        try:
            for alias, version in (get_engine().registry.client.get_registered_model(name).aliases or {}).items():
                aliases.setdefault((name, str(version)), []).append(alias)
        except Exception:
            pass
    return [{"name": v.name, "version": str(v.version), "aliases": sorted(aliases.get((v.name, str(v.version)), [])),
             "tags": dict(v.tags or {}), "created": v.creation_timestamp} for v in versions]


def model_versions(engine: AuditEngine) -> list[dict[str, Any]]:
    return _versions(str(engine.settings.home), engine.settings.tracking_uri)


def refresh_registry_cache() -> None:
    _versions.clear()


@dataclass
class Ctx:
    engine: AuditEngine
    user: User
    lang: str

    def t(self, key: str, **kw: Any) -> str:
        return i18n.t(key, self.lang, **kw)

    def can(self, action: str) -> bool:
        return review.can(self.user, action)

    def role_name(self) -> str:
        return self.t(f"role_{self.user.role.value}")


def default_language() -> str:
    lang = os.environ.get("AIAUDIT_LANG", "en")
    return lang if lang in i18n.LANGUAGES else "en"


def flash(kind: str, message: str) -> None:
    """Show a message after the next rerun (e.g. after saving)."""
    st.session_state.setdefault("_flash", []).append((kind, message))


def attempt(ctx: Ctx, action: Callable[..., Any], /, *args: Any, **kw: Any) -> tuple[bool, Any]:
    """Run a review action; a refused permission or a bad input is shown on the page, not raised.
    Returns (succeeded, the action's return value)."""
    try:
        return True, action(*args, **kw)
    except review.PermissionDenied as e:
        st.error(ctx.t("permission_denied", msg=str(e)))
    except AuditInputError as e:
        st.error(md(str(e)))
    return False, None


def show_flash() -> None:
    for kind, message in st.session_state.pop("_flash", []):
        getattr(st, kind)(message)
