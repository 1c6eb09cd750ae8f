"""Plain-text rendering of a classification for the terminal (`aiaudit classify --format text`)."""
from __future__ import annotations

from textwrap import shorten

from .model import Classification

TIER_LABEL = {"prohibited": "PROHIBITED practice (Ch. II)", "high": "HIGH-RISK (Ch. III)",
              "transparency": "TRANSPARENCY obligations only (Ch. IV, Art. 50)",
              "minimal": "MINIMAL (no Art. 5, high-risk or Art. 50 outcome)"}


def _yes(value: bool | None) -> str:
    return "unknown (see open questions)" if value is None else "yes" if value else "no"


def _fmt_fact(value: object) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def render_text(c: Classification, trace: bool = True) -> str:
    lines: list[str] = []
    reg = c.regulation
    lines.append(f"System:        {c.system}")
    lines.append(f"As of:         {c.as_of}   ({reg.name} {reg.version}, {reg.edition}, checksum {reg.checksum[:12]})")
    lines.append(f"Text:          {c.consolidated_version}")
    for o in c.overlays:
        how = f"in force since {o.in_force}" if o.applied == "in_force" else "applied on request"
        lines.append(f"Amendment:     {o.id} - {o.title}, {o.oj_ref or 'no OJ reference'} [{how}; "
                     f"{', '.join(o.marks) or 'unmarked'}; {'verified' if o.verified_against_oj else 'NOT verified'} "
                     f"against the OJ; sources: {', '.join(o.sources) or '-'}]")
    when = (f"applies from {c.tier_applies_from}, {'in effect' if c.tier_in_effect else 'NOT yet in effect'}"
            if c.tier_applies_from else "")
    lines.append(f"Tier:          {TIER_LABEL[c.tier]}" + (f"   [{when}]" if when else ""))
    lines.append(f"Why:           {', '.join(c.citations) or '-'}")
    lines.append(f"Art. 50:       {', '.join(c.transparency) or 'none'}")
    g = c.gpai
    if g.is_gpai is False:
        lines.append("GPAI model:    no")
    else:
        lines.append(f"GPAI model:    {_yes(g.is_gpai)}; systemic risk {_yes(g.systemic_risk)}"
                     + (f" ({', '.join(g.citations)})" if g.citations else ""))
    lines.append(f"FRIA:          {_yes(c.fria_required)}" + (f" ({', '.join(c.fria_citations)})" if c.fria_citations else ""))
    lines.append(f"Roles:         {', '.join(c.roles) if c.roles else 'unknown'}")
    if c.domains:
        lines.append(f"Audit domain:  {', '.join(c.domains)} (policy thresholds for this use case)")
    for note in c.notes:
        lines.append(f"Note:          {note}")
    lines.append(f"Legal review:  {'NEEDED' if c.needs_review else 'not needed'} "
                 f"({len(c.open_questions)} open question{'s' if len(c.open_questions) != 1 else ''})")
    for q in c.open_questions:
        lines.append(f"  ? {q.fact}: {q.question}")
        lines.append(f"      could change {', '.join(q.effects)} via {', '.join(q.affects[:6])}"
                     + (" ..." if len(q.affects) > 6 else ""))
    lines.append("")
    src = f" (evidence: audit {c.evidence_source})" if c.evidence_source else " (no audit evidence considered)"
    lines.append(f"Obligations{src}:")
    for o in c.obligations:
        start = str(o.applies_from) if o.applies_from else "only on significant change"
        state = "in effect" if o.in_effect else "not yet"
        flag = " [conditional]" if o.conditional else ""
        overlay = " [overlay date, SECONDARY]" if o.dates.overlay else ""
        lines.append(f"  {o.article:<14} {shorten(o.title, 64, placeholder='…'):<64} {start} ({state}){overlay}{flag}")
        checks = ", ".join(o.checks) or "-"
        pen = f"; penalty {c.penalties[o.penalty].citation}" if o.penalty in c.penalties else ""
        lines.append(f"  {'':<14} status {o.status}; automation {o.automation}; checks {checks}"
                     f"; addressee {', '.join(o.addressee)}{pen}")
    if c.penalties:
        lines.append("")
        lines.append("Penalty records referenced:")
        for p in c.penalties.values():
            cap = " or ".join(x for x in (f"EUR {p.max_eur:,}".replace(",", " ") if p.max_eur else "",
                                          f"{p.max_turnover_pct:g} % of worldwide turnover" if p.max_turnover_pct else "") if x)
            combine = f", whichever is {p.combine}" if p.combine and p.max_eur and p.max_turnover_pct else ""
            lines.append(f"  {p.citation}: up to {cap}{combine} - {p.covers}")
    if trace:
        lines.append("")
        lines.append("Trace (rule: status <- facts):")
        for t in c.trace:
            facts = ", ".join(f"{k}={_fmt_fact(v)}" for k, v in t.facts.items())
            lines.append(f"  {t.status:<10} {t.citation:<16} {shorten(t.title, 70, placeholder='…')}" + (f"   <- {facts}" if facts else ""))
    return "\n".join(lines) + "\n"
