"""Serious incidents (Art. 73): the register with deadlines, recording one, moving it along, drafting its report."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from audit import incidents
from audit.review import is_open
from risk.incidents import IncidentPolicy, load_policy

from .render import md
from .state import Ctx, attempt, flash, load_result


def register_rows(ctx: Ctx, policy: IncidentPolicy, items: list[incidents.Incident]) -> list[dict[str, Any]]:
    return [{"id": i.id, "status": policy.status(i.status).label(ctx.lang), "title": i.title,
             "categories": ", ".join(policy.category(c).label(ctx.lang) for c in i.categories),
             "aware_on": i.aware_on.isoformat(), "deadline": i.deadline.due.isoformat(),
             "state": incidents.deadline_state(i, policy, ctx.lang), "overdue": i.overdue} for i in items]


def incidents_page(ctx: Ctx) -> None:
    policy = load_policy()
    st.title(ctx.t("incidents_title"))
    st.caption(ctx.t("incidents_intro"))
    with st.expander(ctx.t("incident_deadlines")):
        st.dataframe(pd.DataFrame([{ctx.t("inc_col_category"): c.label(ctx.lang), ctx.t("inc_col_basis"): c.basis(ctx.lang),
                                    ctx.t("inc_col_days"): c.deadline_days} for c in policy.categories]),
                     hide_index=True, key="inc_deadlines")
    items = incidents.list_incidents(ctx.engine.records, policy)
    if items:
        overdue = sum(i.overdue for i in items)
        if overdue:
            st.error(ctx.t("incidents_overdue", n=overdue))
        df = pd.DataFrame(register_rows(ctx, policy, items))
        st.dataframe(df.rename(columns={k: ctx.t(f"inc_col_{k}") for k in df.columns}), hide_index=True, key="inc_register")
    else:
        st.info(ctx.t("no_incidents"))
    if ctx.can("incident.record"):
        with st.expander(ctx.t("record_incident"), expanded=not items):
            _record_form(ctx, policy)
    if items:
        choice = st.selectbox(ctx.t("incident"), [i.id for i in items], key="inc_pick",
                              format_func=lambda x: next(f"{i.id} · {i.title}" for i in items if i.id == x))
        _detail(ctx, policy, next(i for i in items if i.id == choice))


def _linkable(ctx: Ctx) -> tuple[list[str], dict[str, str]]:
    """Stored audits and windows (newest first) and their open findings, as AUDIT_ID/FINDING_ID."""
    audits = ctx.engine.records.list_audits(limit=200)
    findings: dict[str, str] = {}
    for a in audits[:50]:
        try:
            result = load_result(ctx.engine, a["audit_id"])
        except Exception:  # an unreadable audit cannot be linked to; it still shows in the inventory
            continue
        for f in result.findings:
            if is_open(f):
                findings[f"{a['audit_id']}/{f.id}"] = f"{a['audit_id']} · {f.title}"
    return [a["audit_id"] for a in audits], findings


def _record_form(ctx: Ctx, policy: IncidentPolicy) -> None:
    audits, findings = _linkable(ctx)
    with st.form("inc_form", clear_on_submit=False):
        title = st.text_input(ctx.t("inc_title"), key="inc_f_title")
        description = st.text_area(ctx.t("inc_description"), key="inc_f_description")
        c1, c2 = st.columns(2)
        aware = c1.date_input(ctx.t("inc_aware_on"), value=dt.date.today(), max_value=dt.date.today(), key="inc_f_aware")
        occurred = c2.date_input(ctx.t("inc_occurred_on"), value=None, max_value=dt.date.today(), key="inc_f_occurred")
        categories = st.multiselect(ctx.t("inc_categories"), policy.category_keys, key="inc_f_categories",
                                    format_func=lambda k: f"{policy.category(k).label(ctx.lang)} "
                                                          f"({policy.category(k).deadline_days} d)",
                                    placeholder=ctx.t("choose"))
        c3, c4 = st.columns(2)
        affected = c3.number_input(ctx.t("inc_affected_count"), min_value=0, value=None, step=1, key="inc_f_affected")
        states = c4.text_input(ctx.t("inc_member_states"), key="inc_f_states")
        affected_desc = st.text_area(ctx.t("inc_affected_description"), key="inc_f_affected_desc")
        causal = st.text_area(ctx.t("inc_causal_link"), key="inc_f_causal")
        c5, c6 = st.columns(2)
        provider = c5.text_input(ctx.t("inc_provider"), key="inc_f_provider")
        deployer = c6.text_input(ctx.t("inc_deployer"), key="inc_f_deployer")
        linked = st.multiselect(ctx.t("inc_audits"), audits, key="inc_f_audits", placeholder=ctx.t("choose"))
        linked_findings = st.multiselect(ctx.t("inc_findings"), list(findings), format_func=findings.get,
                                         key="inc_f_findings", placeholder=ctx.t("choose"))
        submitted = st.form_submit_button(ctx.t("inc_submit"), type="primary", key="inc_f_submit")
    if not submitted:
        return
    data = {"title": title, "description": description, "aware_on": aware.isoformat(),
            "occurred_on": occurred.isoformat() if occurred else None, "categories": categories,
            "affected_count": None if affected is None else int(affected),
            "affected_description": affected_desc or None, "causal_link": causal or None, "provider": provider or None,
            "deployer": deployer or None, "member_states": [s.strip().upper() for s in states.split(",") if s.strip()],
            "audits": linked, "findings": linked_findings}
    ok, incident = attempt(ctx, incidents.record_incident, ctx.engine, data, user=ctx.user, what=ctx.t("incident"))
    if ok:
        flash("success", ctx.t("incident_recorded", id=incident.id, due=incident.deadline.due.isoformat()))
        st.session_state["inc_pick"] = incident.id
        st.rerun()


def _detail(ctx: Ctx, policy: IncidentPolicy, i: incidents.Incident) -> None:
    st.subheader(f"{i.id} · {md(i.title)}")
    state = incidents.deadline_state(i, policy, ctx.lang)
    (st.error if i.overdue else st.warning if not i.submitted else st.success)(
        ctx.t("incident_deadline", due=i.deadline.due.isoformat(), state=state,
              basis=policy.category(i.deadline.category).label(ctx.lang) + " · " + i.deadline.basis(ctx.lang)))
    st.markdown(md(i.description))
    st.dataframe(pd.DataFrame([{"#": e.seq, ctx.t("inc_col_when"): e.ts, ctx.t("inc_col_actor"): e.actor,
                                ctx.t("inc_col_role"): e.role, ctx.t("inc_col_event"): policy.label(f"event_{e.event}", ctx.lang),
                                "hash": e.entry_hash[:16]} for e in i.history]), hide_index=True, key=f"inc_hist_{i.id}")
    allowed = policy.status(i.status).next
    if allowed and ctx.can("incident.change_status"):
        with st.form(f"inc_status_{i.id}"):
            c1, c2 = st.columns(2)
            new = c1.selectbox(ctx.t("inc_new_status"), allowed, format_func=lambda s: policy.status(s).label(ctx.lang),
                               key=f"inc_s_new_{i.id}")
            on = c2.date_input(ctx.t("inc_status_on"), value=dt.date.today(), min_value=i.aware_on,
                               max_value=dt.date.today(), key=f"inc_s_on_{i.id}")
            note = st.text_area(ctx.t("inc_status_note"), key=f"inc_s_note_{i.id}")
            if st.form_submit_button(ctx.t("inc_status_submit"), type="primary", key=f"inc_s_submit_{i.id}"):
                ok, _ = attempt(ctx, incidents.change_status, ctx.engine, i.id, new, note, on, user=ctx.user)
                if ok:
                    flash("success", ctx.t("incident_status_changed", status=policy.status(new).label(ctx.lang)))
                    st.rerun()
    elif allowed:
        st.caption(ctx.t("approver_only_status"))
    _export(ctx, i)


def _export(ctx: Ctx, i: incidents.Incident) -> None:
    from audit.documents import FORMATS
    from audit.documents.incident_report import export
    c = st.columns(3)
    fmt = c[0].selectbox(ctx.t("format"), list(FORMATS), key=f"inc_fmt_{i.id}")
    lang = c[1].selectbox(ctx.t("doc_language"), ["en", "ko"], index=0 if ctx.lang == "en" else 1,
                          format_func={"en": "English", "ko": "한국어"}.get, key=f"inc_lang_{i.id}")
    if c[2].button(ctx.t("inc_draft_report"), key=f"inc_go_{i.id}"):
        out = ctx.engine.settings.home / "exports" / i.id
        out.mkdir(parents=True, exist_ok=True)
        ok, path = attempt(ctx, export, ctx.engine, i.id, fmt, lang, out)
        if ok:
            st.session_state[f"_inc_export_{i.id}"] = str(path)
    path = st.session_state.get(f"_inc_export_{i.id}")
    if path and Path(path).is_file():
        p = Path(path)
        st.download_button(ctx.t("download", name=p.name), p.read_bytes(), file_name=p.name, key=f"inc_dl_{i.id}",
                           on_click="ignore", type="primary")
