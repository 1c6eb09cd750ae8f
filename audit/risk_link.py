"""The join between the risk engine (law + system card) and the audit (checks + findings).

`risk` knows the EU AI Act and the system card; this module asks it for the tier and the
obligations, adds the checks those obligations require to the plan, and rates each
obligation's evidence from the checks that ran.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Iterable

from risk.card import LoadedCard
from risk.card import load_card as _load_card
from risk.classify import classify
from risk.errors import CardError, RegulationError
from risk.evidence import rate_evidence
from risk.model import Classification
from risk.regulation import DEFAULT_REGULATION, load_regulation

from .errors import AuditInputError
from .findings import Finding, Severity, Status

REGULATION_SOURCE = f"policies/{DEFAULT_REGULATION}"


def load_card(path: Path) -> LoadedCard:
    try:
        return _load_card(path)
    except CardError as e:
        raise AuditInputError(str(e), source=e.source or str(path)) from None


def classify_card(card: Any, as_of: date | None = None, overlays: Iterable[str] = (),
                  as_enacted: bool = False) -> Classification | None:
    """Classify under the text in force on `as_of` (default: today, UTC), amendments in force included."""
    if card is None:
        return None
    try:
        return classify(card, as_of=as_of, overlays=overlays, as_enacted=as_enacted)
    except RegulationError as e:
        raise AuditInputError(str(e), source=REGULATION_SOURCE) from None


def required_checks(classification: Any) -> list[str]:
    return [] if classification is None else list(classification.required_checks)


def _reference(point: str) -> str:
    return f"EU-AI-Act {point}"


def assess(card: Any, classification: Any, ran: dict[str, str], findings: list[Any]) -> tuple[dict[str, Any] | None, list[Any]]:
    """Return the `risk` block of audit.json and extra findings (e.g. missing required checks)."""
    if classification is None:
        return None, []
    cited = [{"id": f.id, "check": f.check, "status": f.status.value} for f in findings]
    report = rate_evidence(classification, ran, cited, source="this audit")
    c = report.classification
    block = c.model_dump(mode="json")
    block["card"] = {"path": getattr(card, "path", None), "sha256": getattr(card, "sha256", None),
                     "name": getattr(card, "name", None)}
    block["evidence_summary"] = report.summary
    block["missing_checks"] = [m.model_dump() for m in report.missing_checks]
    extra: list[Finding] = []
    why = ", ".join(c.citations) or c.tier
    policy = load_regulation().obligations.missing_check
    for m in report.missing_checks:
        state = {"not run": "was not run", "skipped": "was skipped (its data requirements were not met)",
                 "error": "failed with an error"}.get(m.state, m.state)
        extra.append(Finding.make(
            "risk", f"Required check '{m.check}' is missing", status=Status(policy.status),
            severity=Severity(policy.severity), metric=f"risk.required_check.{m.check}",
            references=[_reference(p) for p in m.points],
            detail=(f"The system is {c.tier}-risk ({why}); the '{m.check}' check is required to evidence "
                    f"{', '.join(m.points)} but {state}, so those obligations lack audit evidence."),
            data={"check": m.check, "state": m.state, "obligations": m.obligations, "points": m.points}))
    if c.tier == "prohibited":
        extra.append(Finding.make(
            "risk", "Prohibited AI practice", status=Status.fail, severity=Severity.critical, metric="risk.tier",
            references=[_reference(x) for x in c.citations if x.startswith("Art. 5")],
            detail=(f"The system card describes a practice prohibited by {why}; it may not be placed on the "
                    "market, put into service or used, whatever the technical results."),
            data={"tier": c.tier, "citations": c.citations}))
    if c.needs_review:
        extra.append(Finding.make(
            "risk", "Risk classification needs legal review", status=Status.warn, severity=Severity.medium,
            metric="risk.open_questions", value=float(len(c.open_questions)),
            references=_unique(_reference(a) for q in c.open_questions for a in q.affects[:3]),
            detail=(f"{len(c.open_questions)} system-card fact(s) are unknown and could change the outcome: "
                    + "; ".join(q.fact for q in c.open_questions[:10]) + ("; ..." if len(c.open_questions) > 10 else "")),
            data={"open_questions": [q.model_dump() for q in c.open_questions]}))
    return block, extra


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
