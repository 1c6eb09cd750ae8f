"""Model card (Mitchell et al. 2019 layout) for the audited model version."""
from __future__ import annotations

from pathlib import PurePosixPath

from . import blocks as B
from . import views
from .charts import performance_chart
from .model import Bullets, Document, Figure, KeyValues, Note, Paragraph, Section
from .sources import Sources
from .text import Text

C = "model_card"


def build(src: Sources, t: Text, manifest: dict, generated_at: str) -> Document:
    r = src.result
    items = B.OpenItems(t)
    card, reg = src.card, src.registry
    meta = reg.meta if reg else {}
    sections: list[Section] = []

    details = Section("model-details", t(C, "details_title"), status="filled")
    details.add(Paragraph(t(C, "intro", model=r.model.name, version=r.model.version, audit_id=r.audit_id), style="lead"))
    kv = [(t.l("model"), r.model.name), (t.l("model_version"), r.model.version), (t.l("model_uri"), r.model.uri),
          (t.l("task"), t.term(f"task.{r.model.task}", r.model.task or "—")), (t.l("estimator"), meta.get("estimator") or "—"),
          (t.l("model_format"), r.model.format or "—"), (t.l("model_sha256"), r.model.sha256 or "—")]
    if reg:
        kv += [(t.l("registered_at"), t.when(reg.created_at)), (t.l("registry_description"), reg.description or "—")]
    details.add(KeyValues(kv))
    if src.registry_error:
        details.add(Note(t("common", "registry_unavailable", error=src.registry_error), kind="warning"))
    blocks, _ = B.from_card(card, ("provider", "provider.name"), t, items, t(C, "details_title"), t(C, "need_provider"))
    details.add(Paragraph(t.l("provider"), style="label"), *blocks)
    sections.append(details)

    use = Section("intended-use", t(C, "use_title"))
    blocks, ok = B.from_card(card, ("intended_purpose", "purpose", "system.intended_purpose"), t, items,
                             t(C, "use_title"), t(C, "need_use"))
    use.status = "filled" if ok else "open"
    use.add(*blocks)
    blocks, _ = B.from_card(card, ("out_of_scope", "out_of_scope_uses", "prohibited_uses", "foreseeable_misuse"), t,
                            items, t(C, "use_title"), t(C, "need_out_of_scope"))
    use.add(Paragraph(t(C, "out_of_scope"), style="label"), *blocks)
    sections.append(use)

    data = Section("data", t(C, "data_title"), status="filled")
    ds = r.dataset
    data.add(Paragraph(t(C, "eval_data", file=PurePosixPath(ds.path).name, rows=t.num(ds.rows), split=ds.split or "—",
                         label=ds.label or "—")))
    lineage = meta.get("lineage") or {}
    if lineage:
        data.add(Paragraph(t(C, "train_data", name=lineage.get("name") or "—", rows=t.num(lineage.get("rows")),
                             sha=(lineage.get("sha256") or "—")[:16])))
    features = meta.get("features") or []
    if features:
        data.add(Paragraph(t(C, "features", n=len(features),
                             names=", ".join(f["name"] for f in features[:40]) + (" …" if len(features) > 40 else ""))))
    if ds.protected:
        used = [p for p in ds.protected if p in {f["name"] for f in features}]
        data.add(Paragraph(t(C, "protected", attrs=", ".join(ds.protected), used=", ".join(used), n_used=len(used))))
    sections.append(data)

    metrics = Section("metrics", t(C, "metrics_title"))
    perf = B.performance_table(src, t)
    if perf:
        metrics.status = "filled"
        metrics.add(perf)
        png = performance_chart(src, t)
        if png:
            metrics.add(Figure(png, t.l("performance_chart")))
    else:
        metrics.status = "not_assessed"
        metrics.add(B.not_assessed(src, "performance", t) or Note(t("common", "not_assessed", check=t.check("performance"),
                                                                     reason=""), kind="warning"))
    sections.append(metrics)

    groups = Section("group-metrics", t(C, "groups_title"))
    if src.details("fairness") is not None:
        groups.status = "filled"
        groups.add(Paragraph(t(C, "groups_intro")))
        groups.add(*views.check_blocks(src, "fairness", t))
    else:
        groups.status = "not_assessed"
        groups.add(*views.check_blocks(src, "fairness", t))
    sections.append(groups)

    expl = Section("explanations", t(C, "explanations_title"))
    if src.details("explanations") is not None:
        expl.status = "filled"
        expl.add(Paragraph(t(C, "explanations_intro")))
    else:
        expl.status = "not_assessed"
    expl.add(*views.check_blocks(src, "explanations", t,  # the full set of figures is in Annex IV
                                 view=lambda s, tt: views.explanations(s, tt, all_figures=False)))
    sections.append(expl)

    other = Section("other-analyses", t(C, "other_title"), status="partial")
    others = [c for c in B.checks_in(src) if c not in ("performance", "fairness", "explanations")]
    if any(c in views.TABLES_ONLY for c in others):
        other.add(Paragraph(t(C, "other_intro")))
    for check in others:
        other.add(Paragraph(t.check(check), style="label"))
        other.add(*views.check_blocks(src, check, t, view=views.TABLES_ONLY.get(check)))
    sections.append(other)

    caveats = Section("caveats", t(C, "caveats_title"), status="partial")
    concerns = B.concerns(src)
    if concerns:
        caveats.add(Paragraph(t(C, "caveats_findings", n=len(concerns))))
        caveats.add(B.findings_list(concerns, t, with_detail=False))
    else:
        caveats.add(Paragraph(t(C, "caveats_none")))
    missing = [t.check(ch) for ch in B.checks_in(src) if B.not_assessed(src, ch, t)]
    bullets = [t(C, "caveat_thresholds", policy=r.policy.name, version=r.policy.version),
               t(C, "caveat_sample", rows=t.num(ds.rows)), t(C, "caveat_point_in_time", date=t.when(r.created_at))]
    if missing:
        bullets.append(t(C, "caveat_missing", checks=", ".join(missing)))
    caveats.add(Bullets(bullets))
    blocks, _ = B.from_card(card, ("limitations", "known_limitations"), t, items, t(C, "caveats_title"),
                            t(C, "need_limitations"))
    caveats.add(Paragraph(t(C, "provider_limitations"), style="label"), *blocks)
    sections.append(caveats)

    sections.append(B.signoff_section(src, t, items))
    sections.append(items.section())
    sections.append(B.manifest_section(manifest, t))
    return Document(kind="model-card", lang=t.lang, title=t(C, "title"), subtitle=t(C, "subtitle", model=r.model.uri),
                    cover=B.cover_rows(src, t, generated_at), sections=sections, manifest=manifest, labels=t.labels)
