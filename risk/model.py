"""What a classification returns (the `risk` block of audit.json is built from it)."""
from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

TierName = Literal["prohibited", "high", "transparency", "minimal"]
RuleStatus = Literal["fires", "presumed", "unknown", "blocked", "overridden", "no"]
EvidenceStatus = Literal["evidenced", "failing", "partial", "no-evidence", "manual-only"]
TIER_RANK: dict[str, int] = {"minimal": 0, "transparency": 1, "high": 2, "prohibited": 3}


class RegulationRef(BaseModel):
    name: str
    version: str
    checksum: str
    edition: str
    eli: str
    legal_signoff: bool


class OverlayRef(BaseModel):
    """An amendment layer that is part of the text evaluated."""
    id: str
    title: str
    status: str
    verified_against_oj: bool
    in_force: dt.date | None = Field(None, description="Entry into force of the amending act.")
    oj_ref: str | None = Field(None, description="Official Journal reference, as reported.")
    applied: Literal["in_force", "requested"] = Field(
        "in_force", description="in_force: in force on the evaluation date; requested: asked for by id.")
    sources: list[str] = Field(default_factory=list)
    marks: list[str]
    notes: list[str] = Field(default_factory=list, description="Reported changes without a computed effect.")


class ResolvedDate(BaseModel):
    key: str
    date: dt.date | None = Field(description="None: does not apply on a fixed date (see note).")
    basis: str
    in_effect: bool
    overlay: str | None = Field(None, description="Overlay change that set this date [SECONDARY].")
    text_date: dt.date | None = Field(None, description="Date under the 2024 text when an overlay changed it.")
    note: str | None = None


class TraceEntry(BaseModel):
    rule: str
    citation: str
    title: str
    kind: str
    status: RuleStatus
    facts: dict[str, Any] = Field(description="Card facts read, with their values (null = unknown).")
    rules: dict[str, str] = Field(default_factory=dict, description="Other rules consulted, with their status.")
    overridden_by: list[str] = Field(default_factory=list)
    applies_from: ResolvedDate | None = None
    marks: list[str] = Field(default_factory=list)


class OpenQuestion(BaseModel):
    fact: str
    question: str
    affects: list[str] = Field(description="Citations of the rules the answer decides.")
    effects: list[str] = Field(description="What could change: tier, transparency, gpai, fria, role, scope.")


class GpaiResult(BaseModel):
    is_gpai: bool | None
    systemic_risk: bool | None
    citations: list[str]
    open_source_waiver: bool | None = None


class EvidenceItem(BaseModel):
    id: str
    point: str
    what: str
    checks: list[str]
    supporting: list[str]
    automation: str
    status: EvidenceStatus
    threshold_source: str | None = None
    annex_iv: list[str] = Field(default_factory=list)


class CrosswalkRef(BaseModel):
    framework: str
    to: str
    rel: str
    provenance: str
    label: str
    marks: list[str] = Field(default_factory=list)


class ObligationResult(BaseModel):
    id: str
    article: str
    title: str
    addressee: list[str]
    binds_card_role: bool | None = Field(description="Whether the card's role is an addressee (null: role unknown).")
    conditional: bool = Field(False, description="Applies only if open questions are answered a certain way.")
    checks: list[str]
    supporting_checks: list[str]
    status: EvidenceStatus
    automation: str
    applies_from: dt.date | None
    in_effect: bool
    dates: ResolvedDate
    penalty: str | None = None
    penalty_via: str | None = None
    notes: list[str] = Field(default_factory=list)
    evidence: list[EvidenceItem]
    findings: dict[str, Any] = Field(default_factory=dict, description="Findings of the checks that evidence it, by status.")
    crosswalk: list[CrosswalkRef] = Field(default_factory=list)


class PenaltyRef(BaseModel):
    id: str
    citation: str
    covers: str
    max_eur: int | None
    max_turnover_pct: float | None
    combine: str | None


class Classification(BaseModel):
    system: str
    as_of: dt.date
    regulation: RegulationRef
    as_enacted: bool = Field(False, description="True: the original text, no amendment applied.")
    consolidated_version: str = Field("", description="The text evaluated: the act and every amendment applied.")
    overlays: list[OverlayRef] = Field(description="Amendment layers applied (see consolidated_version).")
    tier: TierName
    citations: list[str]
    tier_applies_from: dt.date | None
    tier_in_effect: bool
    transparency: list[str]
    gpai: GpaiResult
    fria_required: bool | None
    fria_citations: list[str]
    roles: list[str] | None
    domains: list[str] = Field(description="aiaudit policy domains that fit the Annex III use cases.")
    needs_review: bool
    open_questions: list[OpenQuestion]
    notes: list[str]
    obligations: list[ObligationResult]
    required_checks: list[str]
    penalties: dict[str, PenaltyRef]
    trace: list[TraceEntry]
    evidence_source: str | None = Field(None, description="Audit whose checks rated the obligations.")
