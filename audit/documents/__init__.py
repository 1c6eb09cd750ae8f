"""Regulatory documents drafted from audit evidence: Annex IV technical documentation, the
Art. 27 fundamental-rights impact assessment and a model card, in HTML, PDF, DOCX and
Markdown, English or Korean, each carrying a verifiable evidence manifest."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from ..errors import AuditInputError
from ..records import now_iso
from . import annex_iv, fria, model_card, pmm_plan
from . import manifest as M
from .model import Document
from .renderers import render
from .sources import SignOff, Sources, gather
from .text import LANGS, Text
from .verify import VerifyReport, verify_document

DOCS = {"annex-iv": annex_iv.build, "fria": fria.build, "model-card": model_card.build, "pmm-plan": pmm_plan.build}
FORMATS = ("pdf", "docx", "html", "md")
EXTENSIONS = {"pdf": "pdf", "docx": "docx", "html": "html", "md": "md"}

__all__ = ["DOCS", "FORMATS", "LANGS", "SignOff", "VerifyReport", "build_document", "render_document",
           "render_documents", "verify_document"]


def _engine(engine_or_settings: Any) -> Any:
    from ..config import Settings
    from ..engine import AuditEngine
    if isinstance(engine_or_settings, Settings):
        return AuditEngine(engine_or_settings)
    if engine_or_settings is None:
        return AuditEngine(Settings.from_env())
    return engine_or_settings


def _validate(doc: str, fmt: str, lang: str) -> None:
    if doc not in DOCS:
        raise AuditInputError(f"unknown document '{doc}' (choose from {', '.join(DOCS)})", source="--doc")
    if fmt not in FORMATS:
        raise AuditInputError(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})", source="--format")
    if lang not in LANGS:
        raise AuditInputError(f"unknown language '{lang}' (choose from {', '.join(LANGS)})", source="--lang")


def build_document(src: Sources, doc: str, fmt: str, lang: str, generated_at: str | None = None) -> Document:
    _validate(doc, fmt, lang)
    generated_at = generated_at or now_iso()
    manifest = M.build(src, doc, fmt, lang, generated_at)
    return DOCS[doc](src, Text(lang), manifest, generated_at)


def default_name(audit_id: str, doc: str, fmt: str, lang: str) -> str:
    return f"{audit_id}_{doc}_{lang}.{EXTENSIONS[fmt]}"


def _write(engine: Any, src: Sources, document: Document, fmt: str, out: Path) -> Path:
    data = render(document, fmt)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    engine.records.log("document.exported", src.result.audit_id, {
        "doc": document.kind, "format": fmt, "lang": document.lang, "file": out.name,
        "sha256": hashlib.sha256(data).hexdigest(), "manifest_sha256": M.digest(document.manifest),
        "audit_json_sha256": src.audit_sha256, "signed_off": src.signoff is not None})
    return out


def render_document(engine_or_settings: Any, audit_id: str, doc: str, fmt: str, lang: str, out: Path,
                    *, signoff: SignOff | dict | None = None) -> Path:
    """Draft one document from the stored audit and write it to `out` (a file, or a directory to
    write `<audit>_<doc>_<lang>.<ext>` into).  `signoff` (who, when, role) overrides the review
    app's record.  Every export is logged to the ledger with the file's SHA-256."""
    _validate(doc, fmt, lang)
    engine = _engine(engine_or_settings)
    src = gather(engine, audit_id, signoff)
    out = Path(out)
    if out.is_dir():
        out = out / default_name(audit_id, doc, fmt, lang)
    return _write(engine, src, build_document(src, doc, fmt, lang), fmt, out)


def render_documents(engine_or_settings: Any, audit_id: str, docs: list[str], fmts: list[str], langs: list[str],
                     out_dir: Path, *, signoff: SignOff | dict | None = None) -> list[Path]:
    """Several documents at once, reading the store and the registry a single time."""
    for d in docs:
        for f in fmts:
            for lang in langs:
                _validate(d, f, lang)
    engine = _engine(engine_or_settings)
    src = gather(engine, audit_id, signoff)
    out_dir = Path(out_dir)
    paths = []
    for d in docs:
        for lang in langs:
            for f in fmts:
                document = build_document(src, d, f, lang)
                paths.append(_write(engine, src, document, f, out_dir / default_name(audit_id, d, f, lang)))
    return paths
