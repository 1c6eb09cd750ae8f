"""The evidence manifest every document carries, and reading it back out of each format.

The manifest names the exact inputs a document was drafted from (SHA-256 of audit.json and
of every evidence artifact, model, dataset, policy, system card, versions, sign-off), so
`aiaudit verify` can recompute each entry from the store.
"""
from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path
from typing import Any

from ..errors import AuditInputError
from ..versions import installed_versions
from .sources import Sources

MANIFEST_ID = "aiaudit-manifest"
ATTACHMENT_NAME = "aiaudit-manifest.json"
DOCX_CUSTOM_PART = "/docProps/custom.xml"
DOCX_CUSTOM_NS = "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"
DOCX_VT_NS = "http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"
RENDER_LIBRARIES = ("jinja2", "weasyprint", "python-docx", "matplotlib")


def build(src: Sources, doc: str, fmt: str, lang: str, generated_at: str) -> dict[str, Any]:
    r = src.result
    renderer = installed_versions(RENDER_LIBRARIES)
    return {
        "manifest_version": 1,
        "document": {"kind": doc, "format": fmt, "lang": lang, "generated_at": generated_at, "renderer": renderer},
        "audit": {"id": r.audit_id, "name": r.name, "created_at": r.created_at, "completed_at": r.completed_at,
                  "status": r.status, "actor": r.actor, "audit_json_sha256": src.audit_sha256,
                  "spec_digest": r.spec.get("digest")},
        "evidence": dict(sorted(r.evidence.items())),
        "model": {"name": r.model.name, "version": r.model.version, "uri": r.model.uri, "sha256": r.model.sha256,
                  "format": r.model.format},
        "dataset": {"path": r.dataset.path, "sha256": r.dataset.sha256, "rows": r.dataset.rows},
        "policy": {"name": r.policy.name, "version": r.policy.version, "checksum": r.policy.checksum},
        "system_card": ({"path": src.card_path, "sha256": src.card_sha256} if src.card_path else None),
        "regulation": _regulation(r.risk),
        "versions": {"aiaudit": r.aiaudit_version, **{k: v for k, v in r.environment.items() if k != "aiaudit"}},
        "signoff": src.signoff.as_dict() if src.signoff else None,
        **({"monitoring_windows": [{"id": m["audit_id"], "audit_json_sha256": m["sha256"]} for m in src.monitors]}
           if src.monitors else {}),
        **({"ledger_checkpoint": src.ledger_checkpoint} if src.ledger_checkpoint else {}),
    }


def _regulation(risk: dict[str, Any] | None) -> dict[str, Any] | None:
    reg = (risk or {}).get("regulation")
    if not isinstance(reg, dict):
        return None
    return {k: reg.get(k) for k in ("name", "version", "checksum")}


def canonical(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def digest(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(manifest).encode()).hexdigest()


def embeddable(manifest: dict[str, Any]) -> str:
    """JSON that is inert inside an HTML <script> element and a Markdown code fence."""
    text = json.dumps(manifest, sort_keys=True, indent=1, ensure_ascii=True)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("`", "\\u0060")):
        text = text.replace(ch, esc)
    return text


_HTML = re.compile(r'<script type="application/json" id="' + MANIFEST_ID + r'">(.*?)</script>', re.S)
_MD = re.compile(r"^```json " + MANIFEST_ID + r"\n(.*?)\n```$", re.S | re.M)


def _single(matches: list[str], where: str) -> dict[str, Any]:
    if len(matches) != 1:
        raise ValueError(f"expected one embedded manifest in the {where}, found {len(matches)}")
    return json.loads(matches[0])


def _docx_properties(path: Path) -> list[str]:
    from lxml import etree
    try:
        with zipfile.ZipFile(path) as z:
            raw = z.read(DOCX_CUSTOM_PART.lstrip("/"))
    except (zipfile.BadZipFile, KeyError) as e:
        raise ValueError(f"no custom document properties ({e})") from None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    root = etree.fromstring(raw, parser)
    return [el.findtext(f"{{{DOCX_VT_NS}}}lpwstr") or "" for el in root.findall(f"{{{DOCX_CUSTOM_NS}}}property")
            if el.get("name") == MANIFEST_ID]


def detect_format(path: Path) -> str:
    head = path.read_bytes()[:8]
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "docx"
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        return "html"
    if suffix in (".md", ".markdown"):
        return "md"
    raise AuditInputError("not a PDF, DOCX, HTML or Markdown document", source=str(path))


def extract(path: Path) -> tuple[str, dict[str, Any]]:
    """(format, manifest) read back from a rendered document; ValueError when it carries none."""
    if not path.is_file():
        raise AuditInputError("file not found", source=str(path))
    fmt = detect_format(path)
    if fmt == "html":
        return fmt, _single(_HTML.findall(path.read_text(encoding="utf-8")), "HTML")
    if fmt == "md":
        return fmt, _single(_MD.findall(path.read_text(encoding="utf-8")), "Markdown")
    if fmt == "docx":
        return fmt, _single(_docx_properties(path), "DOCX custom properties")
    from pypdf import PdfReader
    attachments = PdfReader(str(path)).attachments
    found = attachments.get(ATTACHMENT_NAME) or []
    return fmt, _single([b.decode("utf-8") for b in found], "PDF attachments")
