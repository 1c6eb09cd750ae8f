"""`aiaudit classify CARD`: EU AI Act tier, citations, obligations and evidence status of a system card."""
from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Optional

import typer

from ..errors import AuditInputError


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise AuditInputError(f"'{value}' is not a date (use YYYY-MM-DD)", source="--date") from None


def _audit_evidence(audit_id: str | None, model: str | None) -> tuple[str, dict[str, str], list[dict]] | None:
    """Checks and findings of one stored audit (by id, or the latest of a registered model)."""
    if audit_id is None and model is None:
        return None
    if audit_id and model:
        raise AuditInputError("give --audit or --model, not both", source="classify")
    from ..config import Settings
    from ..records import Records
    records = Records(Settings.from_env().ensure().records_db)
    if audit_id:
        row = records.get_audit(audit_id)
        if row is None:
            raise AuditInputError("no such audit", source=audit_id)
    else:
        rows = records.list_audits(model, 1, kind="audit")
        if not rows:
            raise AuditInputError(f"no audit of model '{model}'", source="--model")
        row = rows[0]
    result = json.loads((Path(row["path"]) / "audit.json").read_text())
    ran = {name: run["status"] for name, run in result.get("checks", {}).items()}
    findings = [{"id": f["id"], "check": f["check"], "status": f["status"]}
                for f in result.get("findings", [])]
    return row["audit_id"], ran, findings


def classify_command(
        card: Path = typer.Argument(..., help="System card (YAML); see docs/schema/system-card.schema.json."),
        on: Optional[str] = typer.Option(None, "--date", help="Classify as of this date, YYYY-MM-DD (default: today, UTC)."),
        fmt: str = typer.Option("text", "--format", help="Output format: text or json.", metavar="[text|json]"),
        overlay: list[str] = typer.Option([], "--overlay", help="Also apply an amendment layer that is not in force "
                                                                 "on the date (e.g. a proposal). Layers in force on "
                                                                 "the date always apply."),
        as_enacted: bool = typer.Option(False, "--as-enacted", help="Evaluate the original 2024 text, without any "
                                                                     "amendment."),
        audit_id: Optional[str] = typer.Option(None, "--audit", help="Rate each obligation's evidence against this stored audit."),
        model: Optional[str] = typer.Option(None, "--model", help="Rate evidence against the latest audit of this registered model."),
        trace: bool = typer.Option(True, "--trace/--no-trace", help="Include the rule-by-rule trace in text output.")) -> None:
    """Classify a system card under the EU AI Act: tier (prohibited, high, transparency, minimal), the
    articles and Annex points that put it there, Art. 50 duties, GPAI status, FRIA, open questions for
    legal review, and the obligations that apply on the date with the audit checks that evidence them.
    The text evaluated is the one in force on the date: the Act plus every amendment in force then."""
    from risk.evidence import rate_evidence
    from risk.report import render_text

    from ..risk_link import classify_card, load_card
    if fmt not in ("text", "json"):
        raise AuditInputError(f"unknown format '{fmt}' (use text or json)", source="--format")
    as_of = _parse_date(on)
    loaded = load_card(card)
    from risk.regulation import available_overlays
    unknown = [o for o in overlay if o not in available_overlays()]
    if unknown:
        raise AuditInputError(f"unknown overlay(s) {unknown} (available: {', '.join(available_overlays())})",
                              source="--overlay")
    if as_enacted and overlay:
        raise AuditInputError("--as-enacted evaluates the original text: drop --overlay", source="--as-enacted")
    classification = classify_card(loaded, as_of=as_of, overlays=overlay, as_enacted=as_enacted)
    evidence = _audit_evidence(audit_id, model)
    if evidence is not None:
        source, ran, findings = evidence
        classification = rate_evidence(classification, ran, findings, source=source).classification
    if fmt == "json":
        payload = classification.model_dump(mode="json")
        payload["card"] = {"path": loaded.path, "sha256": loaded.sha256, "name": loaded.name}
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_text(classification, trace=trace))


def register(app: typer.Typer) -> None:
    app.command(name="classify")(classify_command)
