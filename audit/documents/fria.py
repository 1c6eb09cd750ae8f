"""Fundamental-rights impact assessment draft for deployers (EU AI Act Art. 27(1)(a)-(f))."""
from __future__ import annotations

import re
from typing import Any

from . import blocks as B
from . import views
from .model import Bullets, Document, KeyValues, Note, Paragraph, Section, Table
from .sources import Sources
from .text import Text

C = "fria"
HARM_CHECKS = ("fairness", "slices", "sae", "explanations", "robustness", "performance")


def _rights(f: Any) -> list[str]:
    """Charter of Fundamental Rights articles a finding bears on (a starting point for the deployer)."""
    text = " ".join(str(x) for x in (f.group, f.metric, f.title) if x).lower()
    rights = []
    if f.check in ("fairness", "slices", "sae"):
        rights.append("charter.21")
        if re.search(r"\b(sex|gender|female|male|women|men)\b", text):
            rights.append("charter.23")
    if f.check in ("performance", "robustness"):
        rights.append("charter.38")
    if f.check == "explanations":
        rights.append("charter.47")
    return rights or ["charter.21"]


def build(src: Sources, t: Text, manifest: dict, generated_at: str) -> Document:
    r = src.result
    items = B.OpenItems(t)
    card = src.card
    sections: list[Section] = []

    intro = Section("about", t.l("about_document"))
    intro.add(Paragraph(t(C, "intro", system=r.name, audit_id=r.audit_id), style="lead"))
    intro.add(Paragraph(t("common", "legend")))
    sections.append(intro)

    who = Section("who", t(C, "who_title"))
    risk = r.risk or {}
    required = risk.get("fria_required")
    if not risk:
        who.status = "not_assessed"
        who.add(Note(t(C, "who_unknown"), kind="warning"))
        who.add(items.add(t(C, "who_title"), t(C, "need_who")))
    elif required is None:
        who.status = "open"
        who.add(Note(t(C, "who_undetermined"), kind="warning"))
        who.add(items.add(t(C, "who_title"), t(C, "need_who")))
    else:
        who.status = "filled"
        who.add(Paragraph(t(C, "who_result", required=bool(required),
                            tier=t.term(f"tier.{risk.get('tier')}", str(risk.get("tier"))),
                            citations=", ".join(B.cite(c, t) for c in [*risk.get("citations", []),
                                                                      *risk.get("fria_citations", [])]))))
    who.add(Bullets([t(C, "who_rule_public"), t(C, "who_rule_credit")]))
    who.add(Paragraph(t(C, "who_timing")))
    sections.append(who)

    parties = Section("parties", t(C, "parties_title"), status="partial")
    parties.add(KeyValues([(t.l("system"), r.name), (t.l("model"), r.model.uri),
                           (t.l("risk_tier"), t.term(f"tier.{(r.risk or {}).get('tier')}", str((r.risk or {}).get("tier")))
                            if r.risk else t.l("not_classified"))]))
    roles = B.card_value(card, "role")
    roles = [roles] if isinstance(roles, str) else list(roles or [])
    parties.add(Paragraph(t.l("deployer"), style="label"))
    if "deployer" in roles and B.card_value(card, "provider"):
        parties.add(Paragraph(t(C, "deployer_is_provider", provider=str(B.card_value(card, "provider")),
                                kind=t.term(f"deployer_type.{B.card_value(card, 'deployer_type')}",
                                            str(B.card_value(card, "deployer_type") or "—")))))
    else:
        parties.add(items.add(t(C, "parties_title"), t(C, "need_deployer")))
    for paths, label, need in ((("provider", "provider.name"), t.l("provider"), t(C, "need_provider")),
                               (("intended_purpose", "purpose"), t.l("intended_purpose"), t(C, "need_purpose"))):
        parties.add(Paragraph(label, style="label"))
        blocks, _ = B.from_card(card, paths, t, items, t(C, "parties_title"), need)
        parties.add(*blocks)
    sections.append(parties)

    def card_point(key: str, paths: tuple[str, ...], need: str, extra: list | None = None) -> Section:
        sec = Section(f"art27-1{key}", t(C, f"p{key}_title"))
        blocks, ok = B.from_card(card, paths, t, items, f"27(1)({key})", t(C, need))
        sec.status = "filled" if ok else "open"
        sec.add(Paragraph(t(C, f"p{key}_ask")))
        sec.add(*blocks)
        if extra:
            sec.add(*extra)
        return sec

    sections.append(card_point("a", ("deployer_processes", "deployment.process", "processes", "use_context"), "need_processes"))
    b = Section("art27-1b", t(C, "pb_title"))
    b.add(Paragraph(t(C, "pb_ask")))
    period, freq = B.card_value(card, "period_of_use"), B.card_value(card, "frequency_of_use")
    if period or freq:
        b.status = "filled" if period and freq else "partial"
        b.add(Paragraph(t.l("from_card"), style="label"),
              KeyValues([(t.l("period_of_use"), str(period or "—")), (t.l("frequency_of_use"), str(freq or "—"))]))
    if not (period and freq):
        b.status = b.status or "open"
        b.add(items.add("27(1)(b)", t(C, "need_period")))
    sections.append(b)

    # (c) persons and groups -----------------------------------------------------------------------
    c = Section("art27-1c", t(C, "pc_title"), status="partial")
    c.add(Paragraph(t(C, "pc_ask")))
    blocks, _ = B.from_card(card, ("affected_persons", "affected_groups", "deployment.affected_persons"), t, items,
                            "27(1)(c)", t(C, "need_affected"))
    c.add(*blocks)
    if r.dataset.protected:
        c.add(Paragraph(t(C, "pc_protected", attrs=", ".join(r.dataset.protected), rows=t.num(r.dataset.rows))))
    groups = views.group_tables(src, t)
    if groups:
        c.add(Paragraph(t(C, "pc_groups")))
        c.add(*groups)
    else:
        c.add(B.not_assessed(src, "fairness", t) or Note(t(C, "pc_no_groups"), kind="warning"))
    sections.append(c)

    # (d) specific risks of harm --------------------------------------------------------------------
    d = Section("art27-1d", t(C, "pd_title"))
    d.add(Paragraph(t(C, "pd_ask")))
    card_risks = B.card_value(card, "specific_risks")
    if card_risks:
        d.add(Paragraph(t(C, "pd_card"), style="label"), *B.value_blocks(card_risks, t))
    risks = B.concerns(src, HARM_CHECKS)
    missing = [ch for ch in ("fairness", "sae", "explanations") if B.not_assessed(src, ch, t)]
    for ch in missing:
        d.add(B.not_assessed(src, ch, t))
    if risks:
        d.status = "partial"
        d.add(Paragraph(t(C, "pd_found", n=len(risks))))
        d.add(Table([t.l("risk"), t.l("group"), t.l("evidence"), t.l("severity"), t.l("rights")],
                    [[B.finding_title(f, t) + f" ({t.check(f.check)})", f.group or "—",
                      B.finding_evidence(f, t), t.severity(f.severity.value),
                      "; ".join(t.term(x) for x in _rights(f))] for f in risks], kind="risks"))
        details = [f for f in risks if f.detail]
        if details and t.lang == "en":
            d.add(Bullets([f"{f.title}{' [' + f.group + ']' if f.group else ''}: {f.detail}" for f in details[:30]]))
    else:
        d.status = "partial"
        d.add(Paragraph(t(C, "pd_none", checks=", ".join(t.check(ch) for ch in HARM_CHECKS if not B.not_assessed(src, ch, t)))))
    perf = B.performance_table(src, t)
    if perf:
        d.add(Paragraph(t(C, "pd_art13")))
        d.add(perf)
    d.add(items.add("27(1)(d)", t(C, "need_harm_review")))
    sections.append(d)

    expl = src.details("explanations")
    e_extra = [Paragraph(t(C, "pe_aids", available=expl is not None))]
    sections.append(card_point("e", ("human_oversight", "oversight", "deployment.human_oversight"), "need_oversight", e_extra))
    f_extra = [Paragraph(t(C, "pf_suggestions"), style="label"),
               Bullets([t(C, "pf_s1"), t(C, "pf_s2"), t(C, "pf_s3"), t(C, "pf_s4")])]
    sec_f = card_point("f", ("risk_measures", "governance"), "need_measures")
    complaints = B.card_value(card, "complaint_mechanism", "complaints")
    sec_f.add(Paragraph(t.l("complaint_mechanism"), style="label"))
    if complaints is None:
        sec_f.add(items.add("27(1)(f)", t(C, "need_complaints")))
        sec_f.status = "open" if sec_f.status == "open" else "partial"
    else:
        sec_f.add(*B.value_blocks(complaints, t))
    sec_f.add(*f_extra)
    sections.append(sec_f)

    notify = Section("notification", t(C, "notify_title"), status="open")
    notify.add(Paragraph(t(C, "notify_text")))
    notify.add(items.add("27(3)", t(C, "need_notification")))
    notify.add(Paragraph(t(C, "dpia_text")))
    sections.append(notify)

    sections.append(B.signoff_section(src, t, items))
    sections.append(items.section())
    sections.append(B.manifest_section(manifest, t))
    return Document(kind="fria", lang=t.lang, title=t(C, "title"), subtitle=t(C, "subtitle", system=r.name),
                    cover=B.cover_rows(src, t, generated_at), sections=sections, manifest=manifest, labels=t.labels)
