"""Rate each obligation's evidence from the checks an audit ran and the findings that cite it."""
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


def rate(checks: list[str], completed: set[str]) -> EvidenceStatus:
    if not checks:
        return "manual-only"
    done = sum(c in completed for c in checks)
    return "evidenced" if done == len(checks) else "partial" if done else "missing"


def reference_id(reference: str) -> str | None:
    """'EU-AI-Act Art. 10(2)(f)' -> 'eu.aia.art.10.2.f' (None for other frameworks)."""
    if "AI-Act" not in reference and "AI Act" not in reference:
        return None
    m = REF.search(reference)
    if not m:
        return None
    points = re.findall(r"\((\w+)\)", m.group(2))
    return ".".join(["eu.aia.art", m.group(1), *points])


def _related(a: str, b: str) -> bool:
    pa, pb = a.split("."), b.split(".")
    n = min(len(pa), len(pb))
    return pa[:n] == pb[:n]


def rate_evidence(classification: Classification, ran: Mapping[str, str],
                  findings: Iterable[Mapping[str, Any]] = (), source: str | None = None) -> EvidenceReport:
    """`ran`: check name -> completed|error|skipped; `findings`: dicts with id, status and references."""
    completed = {name for name, state in ran.items() if state == "completed"}
    cited = [(f["id"], f["status"], rid) for f in findings for ref in f.get("references", [])
             if (rid := reference_id(ref))]
    obligations = []
    for ob in classification.obligations:
        evidence = [e.model_copy(update={"status": rate(e.checks, completed)}) for e in ob.evidence]
        hits = {(fid, status) for fid, status, rid in cited if _related(rid, ob.id)}
        by_status = {s: sum(1 for _, st in hits if st == s) for s in ("pass", "warn", "fail", "error")}
        failing = sorted(fid for fid, st in hits if st in ("fail", "error"))
        obligations.append(ob.model_copy(update={
            "status": rate(ob.checks, completed), "evidence": evidence,
            "findings": {"count": len(hits), "by_status": by_status, "failing": failing}}))
    missing: dict[str, MissingCheck] = {}
    for ob in obligations:
        if ob.conditional:
            continue
        for e in ob.evidence:
            for check in e.checks:
                if check in completed:
                    continue
                m = missing.setdefault(check, MissingCheck(check=check, state=ran.get(check, "not run"),
                                                           obligations=[], points=[]))
                if ob.id not in m.obligations:
                    m.obligations.append(ob.id)
                if e.point not in m.points:
                    m.points.append(e.point)
    summary = {s: sum(1 for o in obligations if o.status == s) for s in ("evidenced", "partial", "missing", "manual-only")}
    updated = classification.model_copy(update={"obligations": obligations, "evidence_source": source})
    return EvidenceReport(classification=updated, missing_checks=list(missing.values()), summary=summary)
