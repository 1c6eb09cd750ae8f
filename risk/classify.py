"""Classify a system card against the text in force on a date: the regulation plus its amendments in force.

Rule outcomes (three-valued):
  fires       condition true, no exception established
  presumed    condition true, an exception's facts are unknown -> the rule still applies (conservative)
  unknown     condition undecided because facts are unknown -> the rule does not apply yet
  blocked     a relieving rule (carve-out, derogation) whose own override is undecided -> not relied on
  overridden  condition true, an exception or override established
  no          condition false
Every unknown that could change the outcome becomes an open question and sets needs_review.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Iterable

from pydantic import BaseModel

from .card import LoadedCard, SystemCard
from .conditions import Cond, Tri, compare, kleene_not, kleene_or
from .errors import RegulationError
from .model import (TIER_RANK, Classification, CrosswalkRef, EvidenceItem, GpaiResult, ObligationResult,
                    OpenQuestion, OverlayRef, PenaltyRef, RegulationRef, ResolvedDate, TraceEntry)
from .regulation import (CHECK_NAMES, DEFAULT_REGULATION, ROUTE_KEY, Obligation, Overlay, Regulation, Rule,
                         load_regulation)

# Rules whose outcome is reported; other kinds (Annex III points, systemic-risk conditions, exceptions)
# only matter through these, so their unknowns become questions only when an outcome depends on them.
OUTCOME_EFFECTS = {"scope": "scope", "prohibition": "tier: prohibited", "high_risk": "tier: high",
                   "transparency": "transparency", "gpai": "gpai", "gpai_waiver": "gpai", "fria": "fria",
                   "role": "role"}
CITED_KINDS = ("scope_exclusion", "prohibition", "high_risk", "annex_iii", "derogation")


@dataclass
class RuleResult:
    rule: Rule
    status: str
    ref: Tri                                   # what `{rule: id}` sees elsewhere
    facts: dict[str, Any]
    rules: dict[str, str]
    unknown: frozenset[str]                    # facts that left it undecided
    doubt: frozenset[str]                      # unknown facts resolved by presumption somewhere below
    overridden_by: list[str] = field(default_factory=list)
    defeated: list[str] = field(default_factory=list)  # rules this one actually overrode


@dataclass
class _Reads:
    facts: dict[str, Any] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)


def _descriptions(model: type[BaseModel], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for name, f in model.model_fields.items():
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out |= _descriptions(ann, f"{prefix}{name}.")
        else:
            out[f"{prefix}{name}"] = f.description or name
    return out


QUESTIONS = _descriptions(SystemCard)


class _Evaluator:
    def __init__(self, card: SystemCard, rules: list[Rule]):
        self.card = card
        self.rules = {r.id: r for r in rules}
        self.order = [r.id for r in rules]
        self.overriders: dict[str, list[str]] = {}
        for r in rules:
            for target in r.overrides:
                self.overriders.setdefault(target, []).append(r.id)
        self.results: dict[str, RuleResult] = {}
        self._active: set[str] = set()

    def fact(self, path: str) -> Any:
        if path == "role":
            return self.card.roles
        value: Any = self.card
        for part in path.split("."):
            value = getattr(value, part)
        return value

    def cond(self, c: Cond, reads: _Reads) -> tuple[Tri, frozenset[str], frozenset[str]]:
        """Truth value, facts whose unknown value left it undecided, and facts behind a presumption."""
        none: frozenset[str] = frozenset()
        if c.fact is not None:
            value = self.fact(c.fact)
            reads.facts[c.fact] = value
            return (None, frozenset({c.fact}), none) if value is None else (compare(c, value), none, none)
        if c.rule is not None:
            return self._ref(c.rule, reads)
        if c.not_ is not None:
            v, u, d = self.cond(c.not_, reads)
            return kleene_not(v), u, d
        if c.any_rule_of_kind is not None:
            ids = [rid for rid in self.order if self.rules[rid].kind == c.any_rule_of_kind and rid not in c.except_]
            return self._any((lambda rid=rid: self._ref(rid, reads)) for rid in ids)
        if c.all_ is not None:
            return self._all((lambda x=x: self.cond(x, reads)) for x in c.all_)
        return self._any((lambda x=x: self.cond(x, reads)) for x in c.any_)

    @staticmethod
    def _all(parts) -> tuple[Tri, frozenset[str], frozenset[str]]:
        unknown, doubt, undecided = set(), set(), False
        for part in parts:
            v, u, d = part()
            if v is False:  # short-circuit: later operands cannot change the outcome
                return False, frozenset(), d
            if v is None:
                undecided, unknown = True, unknown | u
            doubt |= d
        return (None, frozenset(unknown), frozenset()) if undecided else (True, frozenset(), frozenset(doubt))

    @staticmethod
    def _any(parts) -> tuple[Tri, frozenset[str], frozenset[str]]:
        unknown, doubt, undecided, true = set(), set(), False, False
        for part in parts:
            v, u, d = part()
            if v is True and not d:  # short-circuit on an established operand
                return True, frozenset(), frozenset()
            if v is True:
                true = True
            elif v is None:
                undecided, unknown = True, unknown | u
            doubt |= d
        if true:
            return True, frozenset(), frozenset(doubt)
        return (None, frozenset(unknown), frozenset()) if undecided else (False, frozenset(), frozenset(doubt))

    def _ref(self, rid: str, reads: _Reads) -> tuple[Tri, frozenset[str], frozenset[str]]:
        res = self.rule(rid)
        reads.rules[rid] = res.status
        return res.ref, (res.unknown if res.ref is None else frozenset()), res.doubt

    def rule(self, rid: str) -> RuleResult:
        if rid in self.results:
            return self.results[rid]
        if rid in self._active:
            raise RegulationError(f"rule cycle through '{rid}'")
        self._active.add(rid)
        rule = self.rules[rid]
        reads = _Reads()
        w, w_unknown, w_doubt = self.cond(rule.when, reads)
        overriders: list[RuleResult] = []
        o: Tri = False
        o_unknown: frozenset[str] = frozenset()
        if w is not False:
            for oid in self.overriders.get(rid, []):
                res = self.rule(oid)
                reads.rules[oid] = res.status
                overriders.append(res)
            o = kleene_or(r.ref for r in overriders)
            if o is None:
                o_unknown = frozenset().union(*(r.unknown for r in overriders if r.ref is None))
        relieves = rule.effect == "relieves"
        if w is False:
            status, ref = "no", False
        elif o is True:
            status, ref = ("overridden" if w is True else "no"), False
            for r in overriders:
                if r.ref is True and w is True:
                    r.defeated.append(rid)
        elif w is True and o is False:
            status, ref = "fires", True
        elif w is True:  # an exception or override is undecided
            status, ref = ("blocked", None) if relieves else ("presumed", True)
        else:
            status, ref = "unknown", None
        unknown: frozenset[str] = frozenset()
        if status == "unknown":
            unknown = w_unknown | o_unknown
        elif status in ("presumed", "blocked"):
            unknown = o_unknown
        doubt: set[str] = set()
        if ref is not None:
            doubt = set(w_doubt) | (set(o_unknown) if status == "presumed" else set())
            for r in overriders:
                doubt |= r.doubt
        result = RuleResult(rule=rule, status=status, ref=ref, facts=reads.facts, rules=reads.rules,
                            unknown=unknown, doubt=frozenset(doubt),
                            overridden_by=[r.rule.id for r in overriders if r.ref is True])
        self._active.discard(rid)
        self.results[rid] = result
        return result

    def evaluate(self, cond: Cond) -> tuple[Tri, frozenset[str], frozenset[str]]:
        return self.cond(cond, _Reads())


class _Dates:
    def __init__(self, reg: Regulation, overlays: list[Overlay], ev: _Evaluator, as_of: date):
        self.reg, self.overlays, self.ev, self.as_of = reg, overlays, ev, as_of
        self.extra = {c.target: c for o in overlays for c in o.changes if c.kind == "date_key"}

    def resolve(self, key: str, subject: str) -> ResolvedDate:
        if key in self.extra:
            c = self.extra[key]
            return self._make(key, c.date, f"{c.basis or c.description} [SECONDARY]", overlay=c.id)
        entry = self.reg.date_entry(key)
        for t in entry.transitional:
            if self.ev.evaluate(t.when)[0] is True:
                return self._make(key, t.date, t.basis, note=t.note)
        for o in self.overlays:
            for c in o.changes:
                if c.kind != "date" or c.target != key or (c.rules and subject not in c.rules):
                    continue
                if c.when is None or self.ev.evaluate(c.when)[0] is True:
                    return self._make(key, c.date, f"{o.title}: {c.description} [SECONDARY]", overlay=c.id,
                                      text_date=entry.date)
        return self._make(key, entry.date, entry.basis)

    def _make(self, key: str, d: date | None, basis: str, **kw: Any) -> ResolvedDate:
        return ResolvedDate(key=key, date=d, basis=basis, in_effect=d is not None and self.as_of >= d, **kw)

    def route(self, subject: str) -> ResolvedDate:
        candidates = [self.resolve(k, subject) for rid, k in (("eu.aia.art.6.2", "annex_iii_high_risk"),
                                                               ("eu.aia.art.6.1", "art_6_1"))
                      if self.ev.rule(rid).ref is True]
        if not candidates:
            return self.resolve("annex_iii_high_risk", subject)
        return min(candidates, key=lambda d: (d.date is None, d.date or date.max))


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _active_rules(reg: Regulation, overlays: list[Overlay]) -> list[Rule]:
    rules = list(reg.rules.rules)
    for o in overlays:
        rules += [c.rule for c in o.changes if c.kind == "rule" and c.rule is not None]
    return rules


def _open_questions(ev: _Evaluator, tier: str) -> list[OpenQuestion]:
    def undecided(res: RuleResult) -> set[str]:
        facts = set(res.unknown) if res.status in ("unknown", "presumed", "blocked") else set()
        return facts | (set(res.doubt) if res.ref is True else set())

    by_fact: dict[str, tuple[list[str], list[str]]] = {}
    questions = dict(QUESTIONS)
    for rid in ev.order:
        res = ev.results.get(rid)
        if res is None or res.rule.kind not in OUTCOME_EFFECTS:
            continue
        effect = OUTCOME_EFFECTS[res.rule.kind]
        if tier == "prohibited" and effect not in ("tier: prohibited", "scope"):
            continue  # moot: the practice may not be placed on the market or used at all
        for f in undecided(res):
            affects, effects = by_fact.setdefault(f, ([], []))
            affects.append(res.rule.citation)
            effects.append(effect)
    for rid in ev.order:  # facts that contradict the card's own Annex III list
        res = ev.results.get(rid)
        if res is not None and res.rule.kind == "consistency" and res.ref is True and tier != "prohibited":
            affects, effects = by_fact.setdefault("annex_iii", ([], []))
            affects.append(res.rule.citation)
            effects.append("tier: high")
            questions["annex_iii"] = f"{QUESTIONS['annex_iii']} Inconsistent: {res.rule.title}."
    for rid in ev.order:  # name the point-level rules behind each question too
        res = ev.results.get(rid)
        if res is not None and res.rule.kind not in OUTCOME_EFFECTS and not res.rule.overrides:
            for f in undecided(res) & set(by_fact):
                by_fact[f][0].append(res.rule.citation)
    return [OpenQuestion(fact=f, question=questions.get(f, f), affects=_unique(a), effects=_unique(e))
            for f, (a, e) in sorted(by_fact.items())]


def _obligation(ob: Obligation, ev: _Evaluator, dates: _Dates, reg: Regulation,
                roles: list[str] | None) -> ObligationResult | None:
    applies, _, _ = ev.evaluate(ob.applies_when)
    if applies is False:
        return None
    resolved = dates.route(ob.id) if ob.applies_from == ROUTE_KEY else dates.resolve(ob.applies_from, ob.id)
    notes = [ob.note] if ob.note else []
    notes += _unique(n.text for n in ob.notes if ev.evaluate(n.when)[0] is True)
    if resolved.note:
        notes.append(resolved.note)
    frameworks = {f.id: f for f in reg.crosswalks.frameworks}
    evidence_ids = {ob.id} | {e.id for e in ob.evidence}
    crosswalk = []
    for link in reg.crosswalks.links:
        if link.from_ in evidence_ids:
            fw = ("nist-ai-rmf-1.0" if link.to.startswith("nist.") else
                  "iso-iec-42001-2023" if link.to.startswith("iso42001.") else "kr-ai-basic-act")
            crosswalk.append(CrosswalkRef(framework=fw, to=link.to, rel=link.rel, provenance=link.provenance,
                                          label=frameworks[fw].label,
                                          marks=_unique([*frameworks[fw].marks, *link.marks])))
    return ObligationResult(
        id=ob.id, article=ob.article, title=ob.title, addressee=list(ob.addressee),
        binds_card_role=None if roles is None else any(r in ob.addressee for r in roles),
        conditional=applies is None, checks=ob.checks, supporting_checks=ob.supporting,
        status="manual-only" if not ob.checks else "no-evidence", automation=ob.automation,
        applies_from=resolved.date, in_effect=resolved.in_effect, dates=resolved, penalty=ob.penalty,
        penalty_via=ob.penalty_via, notes=notes, crosswalk=crosswalk,
        evidence=[EvidenceItem(id=e.id, point=e.point, what=e.what, checks=list(e.checks),
                               supporting=list(e.supporting), automation=e.automation,
                               status="manual-only" if not e.checks else "no-evidence",
                               threshold_source=e.threshold_source, annex_iv=list(e.annex_iv))
                  for e in ob.evidence])


def layers_in_force(reg: Regulation, as_of: date, requested: Iterable[str] = (),
                    as_enacted: bool = False) -> list[tuple[Overlay, str]]:
    """The amendments that make up the text on `as_of`: every layer in force on that date, plus layers
    asked for by id (`requested`: proposals or layers not yet in force); none with `as_enacted`."""
    requested = _unique(requested)
    if as_enacted and requested:
        raise RegulationError("--as-enacted evaluates the original text: it cannot be combined with overlays")
    wanted = {o: "requested" for o in requested}
    for o in reg.overlays.overlays:
        if not as_enacted and o.in_force is not None and o.in_force <= as_of:
            wanted[o.id] = "in_force"
    return [(o, wanted[o.id]) for o in (reg.overlay(i) for i in wanted)]


def consolidated_version(reg: Regulation, layers: list[tuple[Overlay, str]], as_of: date) -> str:
    text = f"{reg.index.edition}"
    if not layers:
        return f"{text}, as enacted (no amendment applied), evaluated as of {as_of.isoformat()}"
    parts = []
    for o, how in layers:
        when = (f"in force since {o.in_force.isoformat()}" if how == "in_force" else
                f"applied on request{f', in force from {o.in_force.isoformat()}' if o.in_force else ', not in force'}")
        parts.append(f"{o.title} ({o.oj_ref or 'no OJ reference'}; {when}; "
                     f"{'verified' if o.verified_against_oj else 'not verified'} against the OJ)")
    return f"{text}, as amended by {'; '.join(parts)}, consolidated as of {as_of.isoformat()}"


def classify(card: SystemCard | LoadedCard, as_of: date | None = None, overlays: Iterable[str] = (),
             regulation: str = DEFAULT_REGULATION, as_enacted: bool = False) -> Classification:
    """Tier, citations, duties and obligations of `card` under the text in force on `as_of` (default: today,
    UTC): the enacted regulation plus every amendment in force on that date (`as_enacted`: the original text;
    `overlays`: also apply these layers by id)."""
    system = card.card if isinstance(card, LoadedCard) else card
    as_of = as_of or datetime.now(timezone.utc).date()
    reg = load_regulation(regulation)
    layers = layers_in_force(reg, as_of, overlays, as_enacted)
    active = [o for o, _ in layers]
    ev = _Evaluator(system, _active_rules(reg, active))
    for rid in ev.order:
        if not ev.rules[rid].overrides:  # exceptions are evaluated when the rule they qualify needs them
            ev.rule(rid)
    dates = _Dates(reg, active, ev, as_of)
    res = ev.results
    applying = [res[rid] for rid in ev.order if rid in res and res[rid].ref is True]

    tier = "minimal"
    for r in applying:
        if r.rule.tier and TIER_RANK[r.rule.tier] > TIER_RANK[tier]:
            tier = r.rule.tier
    tier_rules = [r for r in applying if r.rule.tier == tier]
    tier_dates = [dates.resolve(r.rule.applies_from, r.rule.id) for r in tier_rules]
    known = [d.date for d in tier_dates if d.date is not None]
    tier_from = min(known) if known else None

    citations = [r.rule.citation for r in applying if r.rule.kind in CITED_KINDS]
    citations += [r.rule.citation for r in applying if r.rule.kind == "override" and r.defeated]
    transparency = _unique(r.rule.citation for r in applying if r.rule.kind == "transparency")

    gpai_rule, systemic_rule, waiver_rule = res["eu.aia.art.53.1"], res["eu.aia.art.55.1"], res["eu.aia.art.53.2"]
    gpai_cites = [r.rule.citation for r in applying if r.rule.kind in ("gpai", "gpai_systemic", "gpai_waiver")]
    gpai = GpaiResult(is_gpai=gpai_rule.ref, systemic_risk=False if gpai_rule.ref is False else systemic_rule.ref,
                      citations=_unique(gpai_cites), open_source_waiver=waiver_rule.ref)

    fria_rules = [res[rid] for rid in ev.order if rid in res and res[rid].rule.kind == "fria"]
    fria_required = kleene_or(r.ref for r in fria_rules)
    roles = system.roles
    if roles is not None and res["eu.aia.art.25.1"].ref is True:
        roles = _unique([*roles, "provider"])

    notes = [f"{r.rule.citation}: {r.rule.title}" for r in applying if r.rule.kind == "note"]
    notes += [f"{r.rule.citation}: {r.rule.title}" for r in applying if r.rule.kind == "role"]
    open_questions = _open_questions(ev, tier)
    obligations = [o for o in (_obligation(ob, ev, dates, reg, roles) for ob in reg.obligations.obligations
                               if tier != "prohibited" or ob.survives_prohibition) if o]
    required = {c for o in obligations if not o.conditional for c in o.checks}
    penalty_ids = _unique([*(o.penalty for o in obligations if o.penalty), *(r.rule.penalty for r in applying
                                                                              if r.rule.penalty)])
    trace = [TraceEntry(rule=r.rule.id, citation=r.rule.citation, title=r.rule.title, kind=r.rule.kind,
                        status=r.status, facts=r.facts, rules=r.rules, overridden_by=r.overridden_by,
                        applies_from=dates.resolve(r.rule.applies_from, r.rule.id), marks=list(r.rule.marks))
             for r in (res[rid] for rid in ev.order if rid in res)]
    return Classification(
        system=system.name, as_of=as_of,
        regulation=RegulationRef(name=reg.name, version=reg.version, checksum=reg.checksum,
                                 edition=reg.index.edition, eli=reg.index.eli,
                                 legal_signoff=reg.index.review.legal_signoff),
        as_enacted=as_enacted, consolidated_version=consolidated_version(reg, layers, as_of),
        overlays=[OverlayRef(id=o.id, title=o.title, status=o.status, verified_against_oj=o.verified_against_oj,
                             in_force=o.in_force, oj_ref=o.oj_ref, applied=how, sources=list(o.sources),
                             marks=list(o.marks), notes=[c.description for c in o.changes if c.kind == "note"])
                  for o, how in layers],
        tier=tier, citations=_unique(citations), tier_applies_from=tier_from,
        tier_in_effect=tier == "minimal" or any(d.in_effect for d in tier_dates),
        transparency=transparency, gpai=gpai, fria_required=fria_required,
        fria_citations=_unique(r.rule.citation for r in fria_rules if r.ref is True),
        roles=roles, domains=_unique(r.rule.domain for r in applying if r.rule.kind == "annex_iii" and r.rule.domain),
        needs_review=bool(open_questions), open_questions=open_questions, notes=notes, obligations=obligations,
        required_checks=[c for c in CHECK_NAMES if c in required],
        penalties={p.id: PenaltyRef(id=p.id, citation=p.citation, covers=p.covers, max_eur=p.max_eur,
                                    max_turnover_pct=p.max_turnover_pct, combine=p.combine)
                   for p in (reg.penalty(pid) for pid in penalty_ids)},
        trace=trace)
