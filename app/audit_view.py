"""One audit: summary, findings and review decisions, per-check evidence, compare, sign-off, export, history."""
from __future__ import annotations

import importlib
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from audit import review
from audit.checks import check_catalogue
from audit.errors import AuditInputError, IntegrityError
from audit.findings import Severity

from . import i18n
from .render import csv_safe, md, render_details, show_evidence, to_csv
from .state import Ctx, attempt, flash, load_result, refresh_registry_cache

STATUS_ORDER = {"fail": 0, "error": 1, "warn": 2, "pass": 3}
SEV_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
ARTICLE = re.compile(r"(Art\.\s*\d+|Annex\s+[IVXL]+)")
KINDS = [k.value for k in review.DispositionKind]
FALLBACK_DOCUMENTS = ("annex-iv", "model-card", "fria", "audit-report")
FALLBACK_FORMATS = ("pdf", "docx", "html", "md")


def audit_page(ctx: Ctx) -> None:
    audits = ctx.engine.records.list_audits(limit=1000)
    if not audits:
        st.info(ctx.t("no_audits"))
        return
    ids = [a["audit_id"] for a in audits]
    wanted = st.session_state.get("current_audit") or st.query_params.get("audit")
    if wanted not in ids:
        wanted = ids[0]
    names = {a["audit_id"]: f"{a['model_name']} v{a['model_version']} · {a['created_at']} · {a['audit_id']}" for a in audits}
    audit_id = st.selectbox(ctx.t("choose_audit"), ids, index=ids.index(wanted), format_func=names.get,
                            key=f"audit_pick_{wanted}")
    st.session_state["current_audit"] = audit_id
    st.query_params["audit"] = audit_id
    result = load_result(ctx.engine, audit_id)
    audit_dir = ctx.engine.audit_dir(audit_id)
    dispositions = review.current_dispositions(ctx.engine.records, audit_id)
    signoff = review.get_signoff(ctx.engine.records, audit_id)
    _header(ctx, result, signoff)
    if not ctx.can("disposition.record"):
        st.caption(ctx.t("read_only_note", role=ctx.role_name()))
    checks = [name for name, run in result.checks.items() if run.status != "skipped"]  # a tab per check that ran
    tab_names = ([ctx.t("tab_summary"), ctx.t("tab_findings")] + [_check_title(ctx, c) for c in checks]
                 + [ctx.t("tab_compare"), ctx.t("tab_signoff"), ctx.t("tab_export"), ctx.t("tab_history")])
    tabs = st.tabs(tab_names, key=f"tabs-{audit_id}", on_change="rerun")  # only the open tab's content runs
    renderers = ([lambda: _summary(ctx, result, dispositions, signoff),
                  lambda: _findings(ctx, result, audit_dir, dispositions, signoff)]
                 + [lambda name=name: _check(ctx, result, name, audit_dir) for name in checks]
                 + [lambda: _compare(ctx, result, signoff), lambda: _signoff(ctx, result, dispositions, signoff),
                    lambda: _export(ctx, result, audit_dir), lambda: _history(ctx, result)])
    for tab, render in zip(tabs, renderers):
        if tab.open is not False:
            with tab:
                render()


def _check_title(ctx: Ctx, name: str) -> str:
    """The catalogue's short name in the app's language (the risk section is not a check)."""
    if name in check_catalogue().names:
        return check_catalogue()[name].short.get(ctx.lang)
    key = f"check_{name}"
    return ctx.t(key) if key in i18n.TEXT else name


def _header(ctx: Ctx, result: Any, signoff: dict | None) -> None:
    st.title(ctx.t("audit_header", model=result.model.uri))
    c = st.columns(4)
    c[0].metric(ctx.t("status"), review.SIGNED_OFF if signoff else result.status)
    c[1].metric(ctx.t("tier"), (result.risk or {}).get("tier") or "—")
    c[2].metric(ctx.t("findings"), len(result.findings))
    blockers = review.signoff_blockers(result, review.current_dispositions(ctx.engine.records, result.audit_id))
    c[3].metric(ctx.t("needs_decision"), len(blockers))
    st.caption(f"{result.audit_id} · {ctx.t('created')} {result.created_at} · {result.policy.name} "
               f"{result.policy.version} · {Path(result.dataset.path).name} ({result.dataset.rows})")
    if signoff:
        st.success(ctx.t("signed_off_banner", who=md(signoff["signed_off_by"]), when=signoff["signed_off_at"]))


# summary -------------------------------------------------------------------------------------
RISK_SHOWN = {"tier", "trace", "proof_trace", "citations", "obligations", "open_questions", "needs_review",
              "tier_in_effect", "fria_required", "fria_citations"}
EVIDENCE_ICON = {"evidenced": "●", "failing": "✖", "partial": "◐", "no-evidence": "○", "manual-only": "✎"}


def _cell(v: Any) -> Any:
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    if isinstance(v, list) and all(isinstance(x, (str, int, float)) for x in v):
        return ", ".join(str(x) for x in v)
    if isinstance(v, dict) and all(isinstance(x, (str, int, float, bool)) or x is None for x in v.values()):
        return "; ".join(f"{k}={x}" for k, x in v.items())
    return json.dumps(v, ensure_ascii=False, default=str)


def _table(rows: list[dict], columns: list[str] | None, key: str) -> None:
    cols = columns or list(dict.fromkeys(k for r in rows for k in r))
    df = pd.DataFrame([{c: _cell(r.get(c)) for c in cols if any(c in x for x in rows)} for r in rows])
    st.dataframe(df, hide_index=True, key=key)


def _risk(ctx: Ctx, risk: dict) -> None:
    c = st.columns(4)
    c[0].metric(ctx.t("tier"), str(risk.get("tier", "—")))
    if "tier_in_effect" in risk:
        c[1].metric(ctx.t("in_effect"), "✓" if risk["tier_in_effect"] else "✗")
    if "needs_review" in risk:
        c[2].metric(ctx.t("needs_legal_review"), "✓" if risk["needs_review"] else "✗")
    if "fria_required" in risk:
        c[3].metric(ctx.t("fria_required"), {True: "✓", False: "✗", None: "?"}.get(risk["fria_required"], "?"))
    if risk.get("citations"):
        st.markdown(f"**{ctx.t('citations')}:** " + " · ".join(md(x) for x in risk["citations"]))
    if risk.get("open_questions"):
        st.warning(ctx.t("open_questions"))
        _table(risk["open_questions"], ["fact", "question", "affects", "effects"], "risk-oq")
    trace = risk.get("trace") or risk.get("proof_trace")
    if trace:
        with st.expander(f"{ctx.t('proof_trace')} ({len(trace)})"):
            if isinstance(trace, list) and all(isinstance(x, dict) for x in trace):
                _table(trace, ["citation", "title", "kind", "status", "facts", "rules", "overridden_by", "rule"],
                       "risk-trace")
            else:
                st.json(trace)
    obligations = risk.get("obligations")
    if obligations and isinstance(obligations, list) and all(isinstance(x, dict) for x in obligations):
        st.markdown(f"##### {ctx.t('obligations')}")
        rows = [{**o, "status": f"{EVIDENCE_ICON.get(str(o.get('status')), '')} {o.get('status', '')}".strip()}
                for o in obligations]
        _table(rows, ["article", "title", "status", "automation", "checks", "supporting_checks", "applies_from",
                      "in_effect", "conditional", "binds_card_role", "penalty"], "risk-obl")
        items = [{"article": o.get("article"), **e} for o in obligations for e in (o.get("evidence") or [])
                 if isinstance(e, dict)]
        if items:
            with st.expander(ctx.t("evidence")):
                _table(items, ["article", "point", "what", "status", "checks", "supporting", "automation",
                               "threshold_source", "annex_iv"], "risk-evidence")
    other = {k: v for k, v in risk.items() if k not in RISK_SHOWN}
    if other:
        with st.expander(ctx.t("risk_other")):
            st.json(other, expanded=False)


def _verdict(ctx: Ctx, result: Any, dispositions: dict, signoff: dict | None) -> None:
    """Can this audit be signed off, and if not, why.  Once signed off the header's banner says so."""
    if signoff:
        return
    gating = [f for f in result.findings if f.gates(Severity(result.policy.fail_on))]
    undecided = [f for f in gating if f.id not in dispositions]
    blockers = review.signoff_blockers(result, dispositions)
    if undecided:
        st.error(ctx.t("verdict_blocked", n=len(undecided)))
    elif blockers:
        st.warning(ctx.t("verdict_review", n=len(blockers)))
    elif gating:
        st.info(ctx.t("verdict_decided", n=len(gating)))
    else:
        st.success(ctx.t("verdict_clear"))


def _summary(ctx: Ctx, result: Any, dispositions: dict, signoff: dict | None = None) -> None:
    """The verdict and what needs attention first; the risk classification (its proof trace folded) after."""
    _verdict(ctx, result, dispositions, signoff)
    attention = sorted((f for f in result.findings if f.status.value != "pass"),
                       key=lambda f: (STATUS_ORDER[f.status.value], -f.severity.rank))  # fail, error, warn
    if attention:
        st.subheader(ctx.t("needs_attention"))
        rows = [{"status": f.status.value, "severity": f.severity.value, "check": _check_title(ctx, f.check),
                 "title": f.title, "group": f.group or "", "value": f.value,
                 "disposition": ctx.t(f"kind_{dispositions[f.id]['kind']}") if f.id in dispositions else ""}
                for f in attention]
        st.dataframe(pd.DataFrame(rows).rename(columns={c: ctx.t(f"fcol_{c}") for c in rows[0]}),
                     hide_index=True, key="sum-attention")
    st.subheader(ctx.t("findings"))
    counts = pd.crosstab(pd.Series([f.severity.value for f in result.findings], name="severity"),
                         pd.Series([f.status.value for f in result.findings], name="status"))
    st.dataframe(counts, key="sum-counts")
    st.subheader(ctx.t("risk_title"))
    if not result.risk:
        st.info(ctx.t("no_risk"))
    else:
        _risk(ctx, result.risk)
    st.subheader(ctx.t("facts"))
    facts = {"audit_id": result.audit_id, "model": result.model.uri, "format": result.model.format,
             "task": result.model.task, "model sha256": result.model.sha256, "dataset": result.dataset.path,
             "dataset sha256": result.dataset.sha256, "rows": result.dataset.rows, "label": result.dataset.label,
             "protected": ", ".join(result.dataset.protected), "policy": f"{result.policy.name} {result.policy.version}",
             "fail_on": result.policy.fail_on, "actor": result.actor, "aiaudit": result.aiaudit_version,
             "mlflow run": result.mlflow.get("run_id")}
    st.dataframe(pd.DataFrame({"": list(facts), " ": [str(v) for v in facts.values()]}), hide_index=True, key="sum-facts")


# findings and review -----------------------------------------------------------------------
def _articles(refs: list[str]) -> list[str]:
    return sorted({m.group(1).replace("  ", " ") for r in refs for m in ARTICLE.finditer(r)})


def _sorted_findings(result: Any, dispositions: dict) -> list[Any]:
    return sorted(result.findings, key=lambda f: (not review.needs_disposition(f) or f.id in dispositions,
                                                 STATUS_ORDER[f.status.value], SEV_ORDER[f.severity.value], f.check, f.id))


def findings_frame(ctx: Ctx, findings: list[Any], dispositions: dict) -> pd.DataFrame:
    rows = []
    for f in findings:
        d = dispositions.get(f.id)
        rows.append({"status": f.status.value, "severity": f.severity.value, "check": f.check,
                     "title": f.title, "group": f.group, "value": f.value,
                     "ci": "" if f.ci is None else f"{f.ci[0]:.4g} – {f.ci[1]:.4g}", "threshold": f.threshold,
                     "articles": ", ".join(_articles(f.references)),
                     "disposition": ctx.t(f"kind_{d['kind']}") if d else "",
                     "decided_by": d["actor"] if d else "", "rationale": d["rationale"] if d else "", "id": f.id})
    return pd.DataFrame(rows)


def _findings(ctx: Ctx, result: Any, audit_dir: Path, dispositions: dict, signoff: dict | None) -> None:
    aid = result.audit_id
    findings = _sorted_findings(result, dispositions)
    c = st.columns(4)
    sev = c[0].multiselect(ctx.t("filter_severity"), list(SEV_ORDER), key=f"f-sev-{aid}", placeholder=ctx.t("choose"))
    stat = c[1].multiselect(ctx.t("filter_fstatus"), list(STATUS_ORDER), key=f"f-stat-{aid}", placeholder=ctx.t("choose"))
    chk = c[2].multiselect(ctx.t("filter_check"), sorted({f.check for f in findings}), key=f"f-chk-{aid}", placeholder=ctx.t("choose"))
    art = c[3].multiselect(ctx.t("filter_article"), sorted({a for f in findings for a in _articles(f.references)}),
                           key=f"f-art-{aid}", placeholder=ctx.t("choose"))
    shown = [f for f in findings if (not sev or f.severity.value in sev) and (not stat or f.status.value in stat)
             and (not chk or f.check in chk) and (not art or set(art) & set(_articles(f.references)))]
    df = findings_frame(ctx, shown, dispositions)
    if df.empty:
        st.info(ctx.t("no_findings_match"))
        return
    st.dataframe(df.drop(columns=["rationale"]).rename(columns={c: ctx.t(f"fcol_{c}") for c in df.columns if c != "rationale"}),
                 hide_index=True, key=f"f-table-{aid}")
    st.download_button(ctx.t("download_csv"), to_csv(findings_frame(ctx, findings, dispositions)),
                       file_name=f"findings-{aid}.csv", mime="text/csv", key=f"f-csv-{aid}", on_click="ignore")
    by_id = {f.id: f for f in shown}
    fid = st.selectbox(ctx.t("finding_detail"), list(by_id), key=f"f-pick-{aid}",
                       format_func=lambda i: f"[{by_id[i].status.value.upper()} · {by_id[i].severity.value}] "
                                             f"{by_id[i].title}"
                                             + (f" [{by_id[i].group}]" if by_id[i].group else "")
                                             + (" ✓" if i in dispositions else ""))
    _finding_detail(ctx, result, by_id[fid], audit_dir, dispositions, signoff)


def _finding_detail(ctx: Ctx, result: Any, f: Any, audit_dir: Path, dispositions: dict, signoff: dict | None) -> None:
    aid = result.audit_id
    left, right = st.columns([3, 2])
    with left:
        st.markdown(f"#### {md(f.title)}" + (f" · {md(f.group)}" if f.group else ""))
        st.caption(f"{f.id} · {f.check} · {f.status.value} · {f.severity.value}")
        if f.detail:
            st.markdown(md(f.detail))
        facts = {ctx.t("value"): f.value, ctx.t("ci"): None if f.ci is None else f"{f.ci[0]:.4g} – {f.ci[1]:.4g}",
                 ctx.t("threshold"): f.threshold}
        st.dataframe(pd.DataFrame({"": list(facts), " ": ["" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
                                                          for v in facts.values()]}),
                     hide_index=True, key=f"fd-facts-{aid}-{f.id}")
        if f.references:
            st.markdown(f"**{ctx.t('references')}:** " + "; ".join(md(r) for r in f.references))
        if f.evidence:
            st.markdown(f"**{ctx.t('evidence')}**")
            show_evidence(audit_dir, f.evidence, set(), f"fd-{aid}-{f.id}")
        if f.data:
            with st.expander(ctx.t("more_data")):
                st.json(f.data, expanded=False)
    with right:
        st.markdown(f"#### {ctx.t('disposition')}")
        history = review.disposition_history(ctx.engine.records, aid, f.id)
        if history:
            st.dataframe(pd.DataFrame([{"ts": h["ts"], "actor": h["actor"], "kind": ctx.t(f"kind_{h['kind']}"),
                                        "rationale": h["rationale"], "owner": h["owner"] or "",
                                        "due": h["due_date"] or "", "carried from": h["carried_from"] or ""}
                                       for h in reversed(history)]), hide_index=True, key=f"fd-hist-{aid}-{f.id}")
        else:
            st.caption(ctx.t("no_disposition"))
        if signoff:
            st.info(ctx.t("frozen"))
        elif ctx.can("disposition.record"):
            _disposition_form(ctx, aid, f)


def _disposition_form(ctx: Ctx, aid: str, f: Any) -> None:
    version = st.session_state.get(f"_dv-{aid}-{f.id}", 0)
    with st.form(f"disp-{aid}-{f.id}-{version}"):
        st.markdown(f"**{ctx.t('record_disposition')}**")
        kind = st.radio(ctx.t("disposition"), KINDS, format_func=lambda k: ctx.t(f"kind_{k}"), key=f"d-kind-{aid}-{f.id}-{version}")
        rationale = st.text_area(ctx.t("rationale"), key=f"d-rat-{aid}-{f.id}-{version}", max_chars=5000)
        st.caption(ctx.t("owner_hint"))
        owner = st.text_input(ctx.t("owner"), key=f"d-owner-{aid}-{f.id}-{version}", max_chars=200)
        due = st.date_input(ctx.t("due_date"), value=None, min_value=date.today(), key=f"d-due-{aid}-{f.id}-{version}")
        submitted = st.form_submit_button(ctx.t("save_disposition"), type="primary", key=f"d-save-{aid}-{f.id}-{version}")
    if submitted:
        ok, rec = attempt(ctx, review.record_disposition, ctx.engine, ctx.user, aid, f.id, kind, rationale, owner or None, due)
        if not ok:
            return
        st.session_state[f"_dv-{aid}-{f.id}"] = version + 1
        flash("success", ctx.t("disposition_saved", seq=rec["ledger_seq"]))
        st.rerun()


# per-check evidence ---------------------------------------------------------------------------
def _check(ctx: Ctx, result: Any, name: str, audit_dir: Path) -> None:
    run = result.checks[name]
    st.caption(ctx.t("check_status", name=name, status=run.status, seconds=run.seconds))
    if run.status == "skipped":
        st.info(ctx.t("check_skipped", reason=md(run.error or "")))
        return
    if run.status == "error":
        st.error(ctx.t("check_error", error=md(run.error or "")))
    mine = [f for f in result.findings if f.check == name]
    if mine:
        st.markdown(f"##### {ctx.t('check_findings')}")
        df = pd.DataFrame([{"status": f.status.value, "severity": f.severity.value, "title": f.title, "group": f.group,
                            "value": f.value, "ci_low": f.ci[0] if f.ci else None, "ci_high": f.ci[1] if f.ci else None,
                            "threshold": f.threshold} for f in mine])
        st.dataframe(df, hide_index=True, key=f"chk-f-{result.audit_id}-{name}")
    shown: set[str] = set()
    if run.details:
        st.markdown(f"##### {ctx.t('details')}")
        render_details(run.details, audit_dir, f"chk-{result.audit_id}-{name}", shown, lang=ctx.lang,
                       settings_label=ctx.t("method_settings"))
    rest = [p for p in sorted(result.evidence) if p.startswith(f"evidence/{name}/") and p not in shown]
    for f in mine:
        rest += [p for p in f.evidence if p not in rest and p not in shown]
    if rest:
        st.markdown(f"##### {ctx.t('evidence_files')}")
        show_evidence(audit_dir, rest, shown, f"chk-ev-{result.audit_id}-{name}")


# compare -------------------------------------------------------------------------------------
def _compare(ctx: Ctx, result: Any, signoff: dict | None) -> None:
    aid = result.audit_id
    others = [a for a in ctx.engine.records.list_audits(result.model.name, limit=1000) if a["audit_id"] != aid]
    if not others:
        st.info(ctx.t("no_previous"))
        return
    prev = review.previous_audit(ctx.engine.records, aid)
    ids = [a["audit_id"] for a in others]
    default = ids.index(prev["audit_id"]) if prev and prev["audit_id"] in ids else 0
    labels = {a["audit_id"]: f"v{a['model_version']} · {a['created_at']} · {a['audit_id']}" for a in others}
    other = st.selectbox(ctx.t("compare_with"), ids, index=default, format_func=labels.get, key=f"cmp-pick-{aid}")
    cmp = review.compare(ctx.engine, aid, other)
    c = st.columns(5)
    for col, key, items in zip(c, ("cmp_new", "cmp_resolved", "cmp_changed", "cmp_removed", "cmp_unchanged"),
                               (cmp.new, cmp.resolved, cmp.changed, cmp.removed, cmp.unchanged)):
        col.metric(ctx.t(key), len(items))
    for key, items in (("cmp_new", cmp.new), ("cmp_resolved", cmp.resolved), ("cmp_changed", cmp.changed),
                       ("cmp_removed", cmp.removed)):
        if items:
            st.markdown(f"##### {ctx.t(key)}")
            st.dataframe(pd.DataFrame(items), hide_index=True, key=f"cmp-{key}-{aid}")
    if cmp.metric_deltas:
        st.markdown(f"##### {ctx.t('metric_deltas')}")
        st.dataframe(pd.DataFrame(cmp.metric_deltas), hide_index=True, key=f"cmp-metrics-{aid}")
    if signoff or not ctx.can("disposition.record"):
        return
    prev_disp = review.current_dispositions(ctx.engine.records, other)
    mine = review.current_dispositions(ctx.engine.records, aid)
    eligible = [fid for fid in cmp.unchanged if fid in prev_disp and fid not in mine]
    if not eligible:
        st.caption(ctx.t("carry_none"))
        return
    if st.button(ctx.t("carry_forward", n=len(eligible)), key=f"cmp-carry-{aid}"):
        try:
            carried = review.carry_forward(ctx.engine, ctx.user, aid, other)
        except (review.PermissionDenied, AuditInputError) as e:
            st.error(md(str(e)))
            return
        flash("success", ctx.t("carried", n=len(carried)))
        st.rerun()


# sign-off ------------------------------------------------------------------------------------
def _signoff(ctx: Ctx, result: Any, dispositions: dict, signoff: dict | None) -> None:
    aid = result.audit_id
    st.subheader(ctx.t("signoff_title"))
    problems = review.verify_review(ctx.engine.records, aid)
    if problems:
        st.error(ctx.t("integrity_bad", msg=md(problems[0])))
    else:
        st.caption("✓ " + ctx.t("integrity_ok"))
    if signoff:
        st.dataframe(pd.DataFrame({"": ["signed off by", "signed off at", "comment", "role", "audit.json sha256", "ledger entry", "entry hash"],
                                   " ": [signoff["signed_off_by"], signoff["signed_off_at"], signoff["comment"], signoff["role"], signoff["audit_sha256"],
                                         str(signoff["ledger_seq"]), signoff["entry_hash"]]}),
                     hide_index=True, key=f"so-facts-{aid}")
        if signoff["self_review"]:
            st.warning(ctx.t("self_review_note"))
        if ctx.can("audit.sign_off"):
            if st.button(ctx.t("resync"), key=f"so-resync-{aid}"):
                ok = review.resync_registry(ctx.engine, ctx.user, aid)
                refresh_registry_cache()
                st.toast(ctx.t("synced_yes") if ok else ctx.t("synced_no"))
            _promote(ctx, result)
            with st.expander(ctx.t("revoke")):
                reason = st.text_area(ctx.t("revoke_reason"), key=f"so-revoke-reason-{aid}")
                if st.button(ctx.t("revoke"), key=f"so-revoke-{aid}"):
                    try:
                        review.revoke_signoff(ctx.engine, ctx.user, aid, reason)
                    except (review.PermissionDenied, AuditInputError) as e:
                        st.error(md(str(e)))
                        return
                    refresh_registry_cache()
                    flash("info", ctx.t("revoked"))
                    st.rerun()
        return
    st.info(ctx.t("not_signed_off"))
    blockers = review.signoff_blockers(result, dispositions)
    if blockers:
        st.warning(ctx.t("blockers"))
        st.dataframe(pd.DataFrame([{"id": f.id, "status": f.status.value, "severity": f.severity.value,
                                    "title": f.title, "group": f.group} for f in blockers]),
                     hide_index=True, key=f"so-blockers-{aid}")
    else:
        st.success(ctx.t("ready"))
    if not ctx.can("audit.sign_off"):
        st.caption(ctx.t("approver_only"))
        return
    comment = st.text_area(ctx.t("signoff_comment"), key=f"so-comment-{aid}", max_chars=5000)
    if st.button(ctx.t("sign_off_button"), type="primary", disabled=bool(blockers), key=f"so-go-{aid}"):
        try:
            done = review.sign_off(ctx.engine, ctx.user, aid, comment)
        except review.PermissionDenied as e:
            st.error(ctx.t("permission_denied", msg=str(e)))
            return
        except (AuditInputError, IntegrityError) as e:
            st.error(md(str(e)))
            return
        refresh_registry_cache()
        flash("success", ctx.t("signoff_done", seq=done["ledger_seq"],
                               synced=ctx.t("synced_yes") if done["registry_synced"] else ctx.t("synced_no")))
        st.rerun()


def _promote(ctx: Ctx, result: Any) -> None:
    aid = result.audit_id
    with st.expander(ctx.t("promote")):
        alias = st.text_input(ctx.t("alias"), value="production", key=f"pr-alias-{aid}")
        if st.button(ctx.t("promote_button"), key=f"pr-go-{aid}"):
            try:
                done = review.promote(ctx.engine, result.model.name, result.model.version, alias, user=ctx.user)
            except (review.PermissionDenied, review.PromotionRefused, AuditInputError) as e:
                st.error(md(str(e)))
                return
            refresh_registry_cache()
            st.success(ctx.t("promoted", model=done["model"], alias=md(done["alias"])))


# export --------------------------------------------------------------------------------------
def documents_module() -> tuple[Any, str | None]:
    try:
        return importlib.import_module("audit.documents"), None
    except Exception as e:  # not written yet, or broken: say so instead of crashing the page
        return None, f"{type(e).__name__}: {e}"


def _document_choices(mod: Any) -> tuple[list[str], list[str]]:
    docs = getattr(mod, "DOCS", None) or getattr(mod, "DOCUMENTS", None)
    docs = list(docs) if docs else list(FALLBACK_DOCUMENTS)
    fmts = getattr(mod, "FORMATS", None)
    fmts = list(fmts) if fmts else list(FALLBACK_FORMATS)
    return docs, fmts


def _export(ctx: Ctx, result: Any, audit_dir: Path) -> None:
    aid = result.audit_id
    st.subheader(ctx.t("export_title"))
    json_path = audit_dir / "audit.json"
    st.download_button(ctx.t("download_json"), json_path.read_bytes(), file_name=f"audit-{aid}.json",
                       mime="application/json", key=f"ex-json-{aid}", on_click="ignore")
    if not ctx.can("document.export"):
        return
    mod, err = documents_module()
    if mod is None:
        st.warning(ctx.t("documents_missing", err=md(err)))
        return
    docs, fmts = _document_choices(mod)
    c = st.columns(3)
    doc = c[0].selectbox(ctx.t("document"), docs, key=f"ex-doc-{aid}")
    fmt = c[1].selectbox(ctx.t("format"), fmts, key=f"ex-fmt-{aid}")
    lang = c[2].selectbox(ctx.t("doc_language"), ["en", "ko"], index=0 if ctx.lang == "en" else 1,
                          format_func={"en": "English", "ko": "한국어"}.get, key=f"ex-lang-{aid}")
    if st.button(ctx.t("generate"), key=f"ex-go-{aid}", type="primary"):
        out = ctx.engine.settings.home / "exports" / aid / f"{doc}-{lang}.{fmt}"
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            review.require(ctx.user, "document.export")
            written = mod.render_document(ctx.engine, aid, doc, fmt, lang, out)
        except Exception as e:  # the renderer's message is shown to the user
            st.error(ctx.t("export_failed", err=md(f"{type(e).__name__}: {e}")))
            return
        path = Path(written) if isinstance(written, (str, Path)) and Path(written).is_file() else out
        st.session_state[f"_export-{aid}"] = str(path)
    path = st.session_state.get(f"_export-{aid}")
    if path and Path(path).is_file():
        p = Path(path)
        st.success(ctx.t("exported", name=md(p.name)))
        st.download_button(ctx.t("download", name=p.name), p.read_bytes(), file_name=p.name,
                           key=f"ex-dl-{aid}", on_click="ignore", type="primary")


# history -------------------------------------------------------------------------------------
def _history(ctx: Ctx, result: Any) -> None:
    st.subheader(ctx.t("history_title"))
    entries = [e for e in ctx.engine.records.entries(result.audit_id) if e.event != "finding.recorded"]
    st.dataframe(pd.DataFrame([{"seq": e.seq, "ts": e.ts, "actor": e.actor, "event": e.event,
                                "payload": csv_safe(json.dumps(e.payload, ensure_ascii=False)[:400]),
                                "hash": e.entry_hash[:16]} for e in entries]),
                 hide_index=True, key=f"hist-{result.audit_id}")
