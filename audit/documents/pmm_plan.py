"""Post-market monitoring plan (Art. 72(3)): the thresholds every monitoring window is held to, the windows run
so far for the audited version, and the procedure. Its blocks also fill point 9 of the Annex IV documentation."""
from __future__ import annotations

from pathlib import PurePosixPath

from . import blocks as B
from .model import Block, Bullets, Document, KeyValues, Note, Paragraph, Section, Table
from .sources import Sources
from .text import Text

P = "pmm_plan"


def thresholds(src: Sources, t: Text, items: B.OpenItems) -> list[Block]:
    if src.monitoring_settings is None:
        return [items.add("9", t(P, "need_thresholds"))]
    rows = [[t(P, "setting", name=k), k, t.num(v) if isinstance(v, (int, float)) else str(v)]
            for k, v in src.monitoring_settings.items()]
    return [Paragraph(t(P, "method")),
            Table([t(P, "col_setting"), t(P, "col_key"), t(P, "col_value")], rows, caption=t(P, "thresholds_caption"),
                  numeric=[False, False, True]),
            Paragraph(t(P, f"settings_from_{src.monitoring_settings_from}", policy=src.result.policy.name), style="small")]


def windows(src: Sources, t: Text, items: B.OpenItems) -> list[Block]:
    if not src.monitors:
        return [Paragraph(t(P, "no_windows")), items.add("9", t(P, "need_windows"))]
    rows = [[str(m["window"]), t.when(m["start"]), t.when(m["end"]), t.num(m["rows"]), t.term(f"audit.{m['status']}"),
             t.num(m["breaches"]), ", ".join(m["drifted_inputs"]) or "—",
             m["baseline"] + ("" if m["baseline_signed_off"] else f" ({t(P, 'not_signed_off')})"), m["audit_id"]]
            for m in src.monitors]
    latest = src.monitors[-1]
    out: list[Block] = [Paragraph(t(P, "windows_intro", n=len(src.monitors), version=src.result.model.version)),
                        Table([t(P, "col_window"), t(P, "col_from"), t(P, "col_to"), t.l("rows"), t.l("status"),
                               t(P, "col_breaches"), t(P, "col_drifted"), t(P, "col_baseline"), t(P, "col_window_id")],
                              rows, caption=t(P, "windows_caption"),
                              numeric=[True, False, False, True, False, True, False, False, False])]
    if latest["breaches"]:
        out.append(Note(t(P, "latest_breach", window=latest["window"], n=latest["breaches"]), kind="warning"))
    return out


def audit_metrics(src: Sources, t: Text) -> list[Block]:
    """The audit's own thresholded metrics: what a re-audit is compared with."""
    measured = [f for f in src.result.findings if f.threshold is not None and f.metric]
    if not measured:
        return []
    return [Table([t.l("metric"), t.l("group"), t.l("current_value"), t.l("ci95"), t.l("threshold"), t.l("trigger")],
                  [[t.metric(f.metric), f.group or "", t.num(f.value), t.ci(f.ci), t.num(f.threshold),
                    t(P, "trigger", higher=f.data.get("higher_is_better", True), threshold=t.num(f.threshold))]
                   for f in B.sort_findings(measured)],
                  caption=t.l("pmm_table"), numeric=[False, False, True, True, True, False])]


def procedure(src: Sources, t: Text, items: B.OpenItems) -> list[Block]:
    spec = PurePosixPath(src.result.spec.get("path") or "audit.yaml").name
    return [Bullets([t(P, "step_monitor", spec=spec), t(P, "step_reaudit", spec=spec), t(P, "step_review"),
                     t(P, "step_incidents"), t(P, "step_logs")]),
            items.add("9", t(P, "need_plan"))]


def annex_iv_blocks(src: Sources, t: Text, items: B.OpenItems) -> list[Block]:
    """Point 9 of Annex IV: the plan in one section."""
    return [Paragraph(t(P, "intro")), *thresholds(src, t, items), *windows(src, t, items), *audit_metrics(src, t),
            *procedure(src, t, items)]


def build(src: Sources, t: Text, manifest: dict, generated_at: str) -> Document:
    r = src.result
    items = B.OpenItems(t)
    scope = Section("scope", t(P, "scope_title"), status="filled")
    scope.add(Paragraph(t(P, "intro"), style="lead"))
    scope.add(KeyValues([(t.l("system"), r.name), (t.l("model"), r.model.uri),
                         (t(P, "baseline_audit"), r.audit_id),
                         (t.l("signoff"), f"{src.signoff.who} · {src.signoff.when}" if src.signoff else t.l("not_signed"))]))
    if src.signoff is None:
        scope.add(Note(t(P, "baseline_unsigned"), kind="warning"))
    monitored = Section("thresholds", t(P, "thresholds_title"),
                        status="filled" if src.monitoring_settings is not None else "open")
    monitored.add(*thresholds(src, t, items))
    runs = Section("windows", t(P, "windows_title"), status="filled" if src.monitors else "open")
    runs.add(*windows(src, t, items))
    sections = [scope, monitored, runs]
    if metrics := audit_metrics(src, t):
        sections.append(Section("audit-metrics", t(P, "audit_metrics_title"), status="filled").add(
            Paragraph(t(P, "audit_metrics_intro")), *metrics))
    sections.append(Section("procedure", t(P, "procedure_title"), status="partial").add(*procedure(src, t, items)))
    sections += [B.signoff_section(src, t, items), items.section(), B.manifest_section(manifest, t)]
    return Document(kind="pmm-plan", lang=t.lang, title=t(P, "title"), subtitle=t(P, "subtitle", system=r.name),
                    cover=B.cover_rows(src, t, generated_at), sections=sections, manifest=manifest, labels=t.labels)
