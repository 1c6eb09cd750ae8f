"""EU AI Act Annex IV technical documentation, point by point (Art. 11(1))."""
from __future__ import annotations

from pathlib import PurePosixPath

from . import blocks as B
from . import pmm_plan
from . import views
from .charts import performance_chart
from .model import Bullets, Document, Figure, KeyValues, Note, Paragraph, Section, Table
from .sources import Sources
from .text import Text

C = "annex_iv"


def _sub(id_: str, title: str, status: str) -> Section:
    return Section(id_, title, level=2, status=status)


def risk_section(src: Sources, t: Text, items: B.OpenItems) -> Section:
    """The classifier's result: tier, citations, obligations and the status of their evidence."""
    sec = Section("classification", t.l("classification"), status="filled" if src.result.risk else "not_assessed")
    return sec.add(*views.risk(src, t, items, t.l("classification")))


def build(src: Sources, t: Text, manifest: dict, generated_at: str) -> Document:
    r = src.result
    items = B.OpenItems(t)
    card, reg = src.card, src.registry
    meta = reg.meta if reg else {}
    features = meta.get("features") or []
    sections: list[Section] = []

    intro = Section("about", t.l("about_document"))
    intro.add(Paragraph(t(C, "intro", system=r.name, model=r.model.uri, audit_id=r.audit_id), style="lead"))
    intro.add(Paragraph(t("common", "legend")))
    if r.status == "failed":
        intro.add(Note(t("common", "audit_failed_notice"), kind="warning"))
    if src.registry_error:
        intro.add(Note(t("common", "registry_unavailable", error=src.registry_error), kind="warning"))
    intro.add(B.coverage_table(src, t))
    sections.append(intro)
    sections.append(risk_section(src, t, items))

    # 1 General description --------------------------------------------------------------
    s1 = Section("annex-iv-1", t(C, "p1_title"), status="partial")
    a = _sub("1a", t(C, "p1a"), "partial")
    kv = [(t.l("system"), str(B.card_value(card, "name") or r.name)), (t.l("system_version"), str(B.card_value(card, "version") or "—")),
          (t.l("model"), r.model.name), (t.l("model_version"), r.model.version), (t.l("model_uri"), r.model.uri)]
    if reg:
        kv += [(t.l("registered_at"), t.when(reg.created_at)), (t.l("registry_description"), reg.description or "—")]
    a.add(KeyValues(kv))
    blocks, _ = B.from_card(card, ("intended_purpose", "purpose", "system.intended_purpose"), t, items, "1(a)",
                            t(C, "need_purpose"))
    a.add(*blocks)
    blocks, _ = B.from_card(card, ("provider", "provider.name", "system.provider"), t, items, "1(a)", t(C, "need_provider"))
    a.add(*blocks)
    if src.history:
        a.add(Paragraph(t(C, "history_intro", n=len(src.history))))
        a.add(Table([t.l("audit_id"), t.l("model_version"), t.l("audit_date"), t.l("audit_result")],
                    [[h["audit_id"], h["model_version"], t.when(h["created_at"]), t.term(f"audit.{h['status']}", h["status"])]
                     for h in src.history]))
    else:
        a.add(Paragraph(t(C, "history_none")))
    s1.blocks.append(a)
    for key, paths, need in (("1b", ("interactions", "integration", "system.interactions"), "need_interactions"),
                             ("1d", ("placing_on_market", "distribution", "deployment.channel"), "need_market"),
                             ("1e", ("hardware", "deployment.hardware"), "need_hardware"),
                             ("1f", ("product_illustrations",), "need_illustrations"),
                             ("1g", ("user_interface", "deployer_interface", "deployment.interface"), "need_ui")):
        sub = _sub(key, t(C, f"p{key}"), "open")
        blocks, ok = B.from_card(card, paths, t, items, f"{key[0]}({key[1]})", t(C, need))
        sub.status = "filled" if ok else "open"
        sub.add(*blocks)
        if key == "1b":
            s1.blocks.append(sub)
            c = _sub("1c", t(C, "p1c"), "partial")
            c.add(Paragraph(t(C, "software_intro", format=r.model.format or "—",
                              estimator=meta.get("estimator") or (reg.params.get("estimator") if reg else None) or "—")))
            c.add(Table([t.l("component"), t.l("version")], [[k, v] for k, v in r.environment.items()],
                        caption=t.l("audit_environment")))
            c.add(items.add("1(c)", t(C, "need_updates")))
            s1.blocks.append(c)
        else:
            s1.blocks.append(sub)
    h = _sub("1h", t(C, "p1h"), "partial")
    h.add(Paragraph(t(C, "ifu_text")))
    h.add(items.add("1(h)", t(C, "need_ifu")))
    s1.blocks.append(h)
    sections.append(s1)

    # 2 Elements and development -------------------------------------------------------------
    s2 = Section("annex-iv-2", t(C, "p2_title"), status="partial")
    a2 = _sub("2a", t(C, "p2a"), "partial")
    a2.add(Paragraph(t(C, "methods_text", estimator=meta.get("estimator") or "—", format=r.model.format or "—",
                       task=r.model.task or "—")))
    libs = [k for k in r.environment if k != "aiaudit"]
    a2.add(Paragraph(t(C, "third_party_tools", tools=", ".join(f"{k} {r.environment[k]}" for k in libs))))
    a2.add(items.add("2(a)", t(C, "need_methods")))
    s2.blocks.append(a2)

    b2 = _sub("2b", t(C, "p2b"), "partial")
    pos = (src.details("performance") or {}).get("positive_label")
    kv = [(t.l("task"), t.term(f"task.{r.model.task}", r.model.task or "—")),
          (t.l("classes"), ", ".join(str(c) for c in meta.get("classes", [])) or "—"),
          (t.l("positive_label"), "—" if pos is None else str(pos)),
          (t.l("decision_rule"), t(C, "decision_rule") if r.model.task in ("binary", "multiclass") else "—"),
          (t.l("n_features"), t.num(len(features)) if features else "—")]
    b2.add(KeyValues(kv))
    inputs = {f["name"] for f in features}
    prot = r.dataset.protected
    if prot:
        used = [p for p in prot if p in inputs]
        b2.add(Paragraph(t(C, "protected_inputs", protected=", ".join(prot), used=", ".join(used), n_used=len(used))))
    if features:
        b2.add(Table([t.l("feature"), t.l("type"), t.l("categories")],
                     [[f["name"], t.term(f"kind.{f['kind']}", f["kind"]),
                       t.num(len(f.get("categories") or [])) if f["kind"] == "categorical" else "—"] for f in features],
                     caption=t.l("input_schema"), numeric=[False, False, True]))
    b2.add(items.add("2(b)", t(C, "need_design_rationale")))
    s2.blocks.append(b2)

    c2 = _sub("2c", t(C, "p2c"), "partial")
    c2.add(KeyValues([(t.l("estimator"), meta.get("estimator") or "—"), (t.l("model_format"), r.model.format or "—"),
                      (t.l("model_sha256"), r.model.sha256 or "—"), (t.l("training_run"), r.model.run_id or "—")]))
    c2.add(items.add("2(c)", t(C, "need_compute")))
    s2.blocks.append(c2)

    d2 = _sub("2d", t(C, "p2d"), "partial")
    ds = r.dataset
    d2.add(Paragraph(t.l("audit_data"), style="label"))
    d2.add(KeyValues([(t.l("file"), PurePosixPath(ds.path).name), ("SHA-256", ds.sha256), (t.l("rows"), t.num(ds.rows)),
                      (t.l("split"), ds.split or "—"), (t.l("label"), ds.label or "—"),
                      (t.l("protected"), ", ".join(ds.protected) or "—"), (t.l("columns"), t.num(len(ds.columns)))]))
    lineage = meta.get("lineage") or {}
    if lineage:
        d2.add(Paragraph(t.l("training_data"), style="label"))
        same = lineage.get("sha256") == ds.sha256
        d2.add(KeyValues([(t.l("name"), lineage.get("name") or "—"), ("SHA-256", lineage.get("sha256") or "—"),
                          (t.l("rows"), t.num(lineage.get("rows"))), (t.l("columns"), t.num(len(lineage.get("columns") or []))),
                          (t.l("label"), lineage.get("label") or "—")]))
        if same:
            d2.add(Paragraph(t(C, "same_file_split", train_rows=t.num(ds.train_rows), split=ds.split or "—")))
    d2.add(*views.composition_tables(src, t))
    d2.add(items.add("2(d)", t(C, "need_datasheet")))
    s2.blocks.append(d2)

    e2 = _sub("2e", t(C, "p2e"), "partial")
    blocks, _ = B.from_card(card, ("human_oversight", "oversight", "deployment.human_oversight"), t, items, "2(e)",
                            t(C, "need_oversight"))
    e2.add(*blocks)
    has_expl = src.details("explanations") is not None
    e2.add(Paragraph(t(C, "interpretation_aids", available=has_expl)))
    s2.blocks.append(e2)

    f2 = _sub("2f", t(C, "p2f"), "open")
    blocks, ok = B.from_card(card, ("predetermined_changes", "changes"), t, items, "2(f)", t(C, "need_changes"))
    f2.status = "filled" if ok else "open"
    f2.add(*blocks)
    s2.blocks.append(f2)

    g2 = _sub("2g", t(C, "p2g"), "filled" if src.signoff else "partial")
    g2.add(Paragraph(t(C, "testing_intro", rows=t.num(ds.rows), split=ds.split or "—", policy=r.policy.name,
                       version=r.policy.version)))
    g2.add(Paragraph(t.l("test_log"), style="label"))
    g2.add(KeyValues([(t.l("audit_id"), r.audit_id), (t.l("started"), t.when(r.created_at)),
                      (t.l("completed"), t.when(r.completed_at)), (t.l("run_by"), r.actor),
                      (t.l("spec_digest"), r.spec.get("digest", "—")),
                      (t.l("mlflow_run"), (r.mlflow or {}).get("run_id") or "—"),
                      (t.l("signed_by"), f"{src.signoff.who} ({src.signoff.role or '—'}), {src.signoff.when}"
                       if src.signoff else t.l("not_signed"))]))
    for check in B.checks_in(src):
        g2.add(Paragraph(t.check(check), style="label"))
        if check == "performance" and src.details("performance") is not None:
            tab = B.performance_table(src, t)
            if tab:
                g2.add(tab)
            png = performance_chart(src, t)
            if png:
                g2.add(Figure(png, t.l("performance_chart")))
            bad = B.concerns(src, ["performance"])
            if bad:
                g2.add(B.findings_list(bad, t))
        else:
            g2.add(*views.check_blocks(src, check, t))
    s2.blocks.append(g2)

    h2 = _sub("2h", t(C, "p2h"), "partial")
    if src.details("robustness") is not None:
        h2.add(Paragraph(t(C, "security_from_robustness")))
    else:
        h2.add(B.not_assessed(src, "robustness", t))
    h2.add(items.add("2(h)", t(C, "need_security")))
    s2.blocks.append(h2)
    sections.append(s2)

    # 3 Monitoring, functioning and control ----------------------------------------------------
    s3 = Section("annex-iv-3", t(C, "p3_title"), status="partial")
    s3.add(Paragraph(t(C, "capabilities_text")))
    tab = B.performance_table(src, t)
    if tab:
        s3.add(tab)
    groups = views.group_tables(src, t, rates=("accuracy", "selection_rate", "tpr", "fpr"))
    if groups:
        s3.add(Paragraph(t(C, "group_accuracy_text")))
        s3.add(*groups)
    else:
        s3.add(B.not_assessed(src, "fairness", t) or Note(t(C, "no_group_tables"), kind="warning"))
    concerns = B.concerns(src)
    s3.add(Paragraph(t.l("foreseeable_risks"), style="label"))
    if concerns:
        s3.add(Paragraph(t(C, "risks_from_findings", n=len(concerns))))
        s3.add(B.findings_list(concerns, t, with_detail=False))
    else:
        s3.add(Paragraph(t(C, "no_concerns")))
    blocks, _ = B.from_card(card, ("limitations", "known_limitations", "foreseeable_misuse"), t, items, "3",
                            t(C, "need_limitations"))
    s3.add(*blocks)
    s3.add(Paragraph(t(C, "oversight_and_inputs")))
    sections.append(s3)

    # 4 Appropriateness of the metrics ---------------------------------------------------------------
    s4 = Section("annex-iv-4", t(C, "p4_title"), status="partial")
    names = [f.metric.split(".", 1)[1] for f in r.findings if f.check == "performance" and f.metric]
    if names:
        s4.add(Bullets([t(C, "metric_rationale", metric=n, name=t.metric(n)) for n in names]))
    s4.add(Paragraph(t(C, "thresholds_declared", policy=r.policy.name, version=r.policy.version)))
    s4.add(items.add("4", t(C, "need_metric_confirmation")))
    sections.append(s4)

    # 5-8: organisational -----------------------------------------------------------------------------
    s5 = Section("annex-iv-5", t(C, "p5_title"), status="partial")
    s5.add(Paragraph(t(C, "rms_text", n=len(concerns))))
    s5.add(items.add("5", t(C, "need_rms")))
    sections.append(s5)
    s6 = Section("annex-iv-6", t(C, "p6_title"), status="open")
    s6.add(Paragraph(t(C, "changes_text", n=len(src.history))))
    s6.add(items.add("6", t(C, "need_change_log")))
    sections.append(s6)
    s7 = Section("annex-iv-7", t(C, "p7_title"), status="open")
    s7.add(Paragraph(t(C, "standards_text")))
    s7.add(items.add("7", t(C, "need_standards")))
    sections.append(s7)
    s8 = Section("annex-iv-8", t(C, "p8_title"), status="open")
    s8.add(items.add("8", t(C, "need_declaration")))
    sections.append(s8)

    # 9 Post-market monitoring ------------------------------------------------------------------------
    s9 = Section("annex-iv-9", t(C, "p9_title"), status="partial")
    s9.add(*pmm_plan.annex_iv_blocks(src, t, items))
    sections.append(s9)

    # annexes ---------------------------------------------------------------------------------------
    reg_sec = Section("findings", t.l("findings_register"))
    reg_sec.add(Paragraph(t("common", "register_intro", n=len(r.findings))))
    reg_sec.add(B.findings_table(r.findings, t, kind="register", with_references=True))
    sections.append(reg_sec)
    sections.append(B.signoff_section(src, t, items))
    sections.append(items.section())
    sections.append(B.manifest_section(manifest, t))
    return Document(kind="annex-iv", lang=t.lang, title=t(C, "title"), subtitle=t(C, "subtitle", system=r.name),
                    cover=B.cover_rows(src, t, generated_at), sections=sections, manifest=manifest,
                    labels=t.labels)
