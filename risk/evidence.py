"""Rate each obligation's evidence from the findings of the checks that evidence it."""
from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from pydantic import BaseModel, Field

from .model import Classification, EvidenceStatus

REF = re.compile(r"Art\.\s*(\d+)((?:\(\w+\))*)")


class MissingCheck(BaseModel):
    check: str
    state: str = Field(description="not run | skipped | error")
    obligations: list[str]
    points: list[str] = Field(description="Evidence points that needed the check, e.g. Art. 10(2)(f).")


class EvidenceReport(BaseModel):
    classification: Classification
    missing_checks: list[MissingCheck]
    summary: dict[str, int]


FAILING = ("fail", "error")


def rate(checks: list[str], ran: Mapping[str, str], counted: list[tuple[str, str, str]]) -> EvidenceStatus:
    """The roll-up of one obligation or evidence point from the findings its own checks produced.

    manual-only: no check can evidence it; failing: a finding of its checks failed (or a check errored);
    evidenced: at least one finding and every check completed; partial: findings, but a check did not
    run; no-evidence: none of its checks produced a finding."""
    if not checks:
        return "manual-only"
    mine = [st for _, check, st in counted if check in checks]
    if any(st in FAILING for st in mine) or any(ran.get(c) == "error" for c in checks):
        return "failing"
    if not mine:
        return "no-evidence"
    return "evidenced" if all(ran.get(c) == "completed" for c in checks) else "partial"


def reference_id(reference: str) -> str | None:
    """'EU-AI-Act Art. 10(2)(f)' -> 'eu.aia.art.10.2.f' (None for other frameworks)."""
    if "AI-Act" not in reference and "AI Act" not in reference:
        return None
    m = REF.search(reference)
    if not m:
        return None
    points = re.findall(r"\((\w+)\)", m.group(2))
    return ".".join(["eu.aia.art", m.group(1), *points])


def rate_evidence(classification: Classification, ran: Mapping[str, str],
                  findings: Iterable[Mapping[str, Any]] = (), source: str | None = None) -> EvidenceReport:
    """`ran`: check name -> completed|error|skipped; `findings`: dicts with id, check and status.

    Each obligation counts the findings of the checks the obligations data names for it (never findings
    that merely cite the article), and is rated from them (`rate`)."""
    counted = [(f["id"], f.get("check") or f["id"].split(":", 1)[0], f["status"]) for f in findings]
    obligations = []
    for ob in classification.obligations:
        evidence = [e.model_copy(update={"status": rate(e.checks, ran, counted)}) for e in ob.evidence]
        checks = list(dict.fromkeys([*ob.checks, *(c for e in ob.evidence for c in e.checks)]))
        hits = [(fid, st) for fid, check, st in counted if check in checks]
        by_status = {s: sum(1 for _, st in hits if st == s) for s in ("pass", "warn", "fail", "error")}
        obligations.append(ob.model_copy(update={
            "status": rate(ob.checks, ran, counted), "evidence": evidence,
            "findings": {"count": len(hits), "by_status": by_status, "checks": checks,
                         "failing": sorted(fid for fid, st in hits if st in FAILING)}}))
    missing: dict[str, MissingCheck] = {}
    for ob in obligations:
        if ob.conditional:
            continue
        for e in ob.evidence:
            for check in e.checks:
                if ran.get(check) == "completed":
                    continue
                m = missing.setdefault(check, MissingCheck(check=check, state=ran.get(check, "not run"),
                                                           obligations=[], points=[]))
                if ob.id not in m.obligations:
                    m.obligations.append(ob.id)
                if e.point not in m.points:
                    m.points.append(e.point)
    summary = {s: sum(1 for o in obligations if o.status == s)
               for s in ("evidenced", "failing", "partial", "no-evidence", "manual-only")}
    updated = classification.model_copy(update={"obligations": obligations, "evidence_source": source})
    return EvidenceReport(classification=updated, missing_checks=list(missing.values()), summary=summary)
