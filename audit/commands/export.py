"""`aiaudit export` (Annex IV documentation, FRIA, model card) and `aiaudit verify` (their manifests)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import AuditInputError

DOC_HELP = "Document: annex-iv (EU AI Act Annex IV technical documentation), fria (Art. 27 fundamental-rights " \
           "impact assessment), model-card, pmm-plan (Art. 72 post-market monitoring plan), or all."


def _choices(value: str, allowed: tuple[str, ...], option: str) -> list[str]:
    if value == "all":
        return list(allowed)
    if value not in allowed:
        raise AuditInputError(f"must be one of {', '.join(allowed)} or all, not '{value}'", source=option)
    return [value]


def export(audit_id: str = typer.Argument(..., help="Audit id (see `aiaudit ls`)."),
           doc: str = typer.Option(..., "--doc", help=DOC_HELP, metavar="DOC"),
           fmt: str = typer.Option("pdf", "--format", help="pdf, docx, html, md, or all.", metavar="[pdf|docx|html|md|all]"),
           lang: str = typer.Option("en", "--lang", help="Language: en (English), ko (Korean), or all.",
                                    metavar="[en|ko|all]"),
           out: Path = typer.Option(..., "--out", help="Output file, or a directory (required when any option is 'all')."),
           tables: Optional[Path] = typer.Option(None, "--tables", help="Also write every table of the document as CSV "
                                                                        "into this directory (spreadsheet-safe)."),
           json_output: bool = typer.Option(False, "--json", help="Print the written paths as JSON.")) -> None:
    """Draft a regulatory document from a stored audit; it embeds a verifiable evidence manifest and the export is logged."""
    from ..documents import DOCS, FORMATS, LANGS, render_document, render_documents
    from ..engine import AuditEngine
    from ..config import Settings
    docs, fmts, langs = _choices(doc, tuple(DOCS), "--doc"), _choices(fmt, FORMATS, "--format"), _choices(lang, LANGS, "--lang")
    engine = AuditEngine(Settings.from_env())
    engine.load_result(audit_id)  # an unknown audit is reported before anything is created
    count = len(docs) * len(fmts) * len(langs)
    if count > 1:
        if (out.exists() and not out.is_dir()) or (not out.exists() and out.suffix.lstrip(".").lower() in FORMATS):
            raise AuditInputError(f"{count} documents are exported: --out must be a directory, not a file name "
                                  f"like '{out.name}'", source="--out")
        out.mkdir(parents=True, exist_ok=True)
        paths = render_documents(engine, audit_id, docs, fmts, langs, out)
    else:
        if out.suffix == "" and not out.exists():
            out.mkdir(parents=True)
        paths = [render_document(engine, audit_id, docs[0], fmts[0], langs[0], out)]
    if tables is not None:
        from ..documents.tables import write_tables
        for d in docs:
            for lg in langs:
                paths.extend(write_tables(engine, audit_id, d, lg, tables))
    if json_output:
        sys.stdout.write(json.dumps([str(p) for p in paths], indent=2) + "\n")
    else:
        for p in paths:
            typer.echo(f"wrote {p}")


def verify(file: Path = typer.Argument(..., help="A PDF, DOCX, HTML or Markdown document exported by aiaudit."),
           json_output: bool = typer.Option(False, "--json", help="Print the full report as JSON.")) -> None:
    """Recompute a document's evidence manifest against the audit store; exit 1 on any mismatch."""
    from ..documents import verify_document
    report = verify_document(file)
    if json_output:
        sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        mark = {True: "ok  ", False: "FAIL", None: "n/a "}
        for item in report.items:
            typer.echo(f"{mark[item.ok]} {item.name:<16} {item.detail}")
        if report.ok:
            what = "incident" if str(report.audit_id).startswith("INC-") else "audit"
            typer.echo(f"verified: {file} matches {what} {report.audit_id}")
        else:
            typer.echo(f"NOT VERIFIED: {len(report.mismatches)} mismatch(es) in {file}", err=True)
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command(name="export")(export)
    app.command(name="verify")(verify)
