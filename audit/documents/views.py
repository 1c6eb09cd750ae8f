"""Readable views of each check's `details` (audit.json `checks.<name>.details`).

Each view picks the tables and figures a reader needs from the structure the check writes;
when a check is absent the caller says "not assessed", and when its details have an
unexpected shape the generic renderer in `blocks` is used instead, so a document is always
produced from whatever the audit holds.
"""
from __future__ import annotations

from typing import Any, Callable

from . import blocks as B
from .model import Block, Bullets, Figure, KeyValues, Note, Paragraph, Table
from .sources import Sources
from .text import Text

RATES = ("selection_rate", "tpr", "fpr", "precision", "accuracy")


def vci(t: Text, row: dict[str, Any], key: str, digits: int = 3, sep: str = " ") -> str:
    """'0.758 [0.673, 0.843]' from row[key], row[key_ci_low], row[key_ci_high]."""
    v = row.get(key)
    if v is None:
        return "—"
    lo, hi = row.get(f"{key}_ci_low"), row.get(f"{key}_ci_high")
    if lo is None and isinstance(row.get("ci"), (list, tuple)) and key == "value":
        lo, hi = row["ci"]
    if lo is None and key == "value":
        lo, hi = row.get("ci_low"), row.get("ci_high")
    return t.num(v, digits) + (sep + t.ci((lo, hi), digits) if lo is not None and hi is not None else "")


def _details_with(src: Sources, check: str, key: str) -> tuple[dict[str, Any], Any]:
    """A check's details and their entry `key`; KeyError when that entry is missing or empty, so
    the caller falls back to the generic rendering."""
    d = src.details(check) or {}
    value = d.get(key)
    if not value:
        raise KeyError(key)
    return d, value


def _figure(src: Sources, rel: Any, caption: str) -> Figure | None:
    if not B.is_image(rel) or rel not in src.result.evidence:
        return None
    return B.figure(src, rel, caption)


# fairness -----------------------------------------------------------------------------------
def fairness_group_tables(src: Sources, t: Text, rates: tuple[str, ...] = RATES) -> list[Table]:
    d = src.details("fairness") or {}
    out = []
    wanted = rates
    for a in d.get("analyses") or []:
        groups = a.get("groups") or []
        if not groups:
            continue
        rates = tuple(r for r in wanted if any(g.get(r) is not None for g in groups))
        ref = a.get("reference_group")
        rows = []
        for g in groups:
            label = str(g.get("group"))
            if g.get("reference") or (ref is not None and label == str(ref)):
                label += f" ({t.l('reference_mark')})"
            cells = [label, t.num(g.get("n"))]
            cells += ["—" if g.get("suppressed") else vci(t, g, r, sep="\n") for r in rates]
            rows.append(cells)
        out.append(Table([t.column("group"), t.column("n")] + [t.term(r) for r in rates], rows,
                         caption=t("checks", "group_table_caption", attribute=a.get("attribute", "—"),
                                   reference=str(ref) if ref is not None else "—"),
                         numeric=[False] + [True] * (1 + len(rates)), kind="groups"))
    return out


def group_tables(src: Sources, t: Text, rates: tuple[str, ...] = RATES) -> list[Table]:
    """Per-group tables: the fairness view when it applies, otherwise any rows with a group label."""
    try:
        tables = fairness_group_tables(src, t, rates)
    except (KeyError, TypeError, ValueError, AttributeError):
        tables = []
    return tables or B.group_tables(src, t)


def composition_tables(src: Sources, t: Text) -> list[Table]:
    """Group sizes and label base rates in the audited data (Annex IV 2(d), Art. 10(3))."""
    d = src.details("fairness") or {}
    rows = []
    total = src.result.dataset.rows or 0
    try:
        for a in d.get("analyses") or []:
            if a.get("kind", "single") != "single":
                continue
            for g in a.get("groups") or []:
                n = g.get("n")
                rows.append([str(a.get("attribute")), str(g.get("group")), t.num(n),
                             t.num(n / total, 3) if isinstance(n, (int, float)) and total else "—",
                             vci(t, g, "base_rate") if g.get("base_rate") is not None else "—"])
    except (TypeError, AttributeError):
        rows = []
    if not rows:
        return []
    return [Table([t.column("attribute"), t.l("group"), t.column("n"), t.column("share"), t.term("base_rate")], rows,
                  caption=t("checks", "composition_caption", rows=t.num(total)), numeric=[False, False, True, True, True],
                  kind="groups")]


def _evidence_cell(t: Text, o: dict) -> str:
    """The roll-up and the findings it counts, e.g. 'failing (12 findings, 3 failing)'."""
    status = t.term(f"evidence.{o.get('status')}", str(o.get("status")))
    f = o.get("findings") or {}
    if not isinstance(f.get("count"), int) or o.get("status") == "manual-only":
        return status
    return f"{status} ({t('checks', 'finding_count', n=f['count'], failing=len(f.get('failing') or []))})"


def _interval_cell(t: Text, row: dict) -> str:
    """The interval, its coverage (simultaneous over the family for a verdict statistic) and its method."""
    cell = t.ci((row.get("ci_low"), row.get("ci_high")))
    cov = row.get("ci_coverage")
    if isinstance(cov, (int, float)):
        cell += f"\n{cov:.2%}" + (f" ({t.l('simultaneous')})" if row.get("ci_simultaneous_over_family") else "")
    return cell + (f"\n{row['ci_method']}" if row.get("ci_method") else "")


def _p_cell(t: Text, row: dict) -> str:
    p, adj = row.get("p_value"), row.get("p_adjusted")
    if not isinstance(p, (int, float)):
        return "—"
    return f"{p:.3g}" + (f"\n{t.l('adjusted')} {adj:.3g}" if isinstance(adj, (int, float)) else "")


def fairness(src: Sources, t: Text) -> list[Block]:
    d, analyses = _details_with(src, "fairness", "analyses")
    out: list[Block] = []
    st = d.get("settings") or {}
    methods = st.get("intervals") or {}
    out.append(Paragraph(t("checks", "fairness_intro", ratio=st.get("ratio_threshold", "—"),
                           difference=st.get("difference_threshold", "—"), min_size=st.get("min_group_size", "—"),
                           method=st.get("method", "—"), rate_method=methods.get("rate", "—"),
                           difference_method=methods.get("difference", "—"), ratio_method=methods.get("ratio", "—"),
                           family_size=st.get("family_size", "—"), correction=st.get("correction", "—"),
                           alpha=st.get("alpha", "—"))))
    tables = {id(a): tab for a, tab in zip([a for a in analyses if a.get("groups")], fairness_group_tables(src, t))}
    for a in analyses:
        out.append(Paragraph(f"{t.column('attribute')}: {a.get('attribute')}", style="label"))
        if id(a) in tables:
            out.append(tables[id(a)])
        disp = a.get("disparities") or []
        if disp:
            out.append(Table([t.l("metric"), t.l("value"), t.l("interval"), t.column("p_value"), t.l("threshold"),
                              t.column("scale")],
                             [[t.term(x.get("metric", "")), t.num(x.get("value")), _interval_cell(t, x),
                               _p_cell(t, x), t.num(x.get("threshold")),
                               f"{t.term(x.get('scale', ''))} · {x.get('method', '')}"]
                              for x in disp],
                             caption=t("checks", "disparities_caption", attribute=a.get("attribute", "—")),
                             numeric=[False, True, True, True, True, False]))
        vs = a.get("versus_reference") or []
        if vs:
            out.append(Table([t.l("group"), t.column("reference"), t.column("rate"), t.column("difference"), t.l("status"),
                              t.column("ratio"), t.l("status")],
                             [[str(x.get("group")), str(x.get("reference")), t.term(x.get("rate", "")),
                               vci(t, x, "difference"), t.status(x.get("difference_status", "")),
                               vci(t, x, "ratio"), t.status(x.get("ratio_status", ""))] for x in vs],
                             caption=t("checks", "versus_caption"), numeric=[False, False, False, True, False, True, False]))
        amp = a.get("amplification") or {}
        if amp:
            out.append(KeyValues([(t.term(k), B.cell(v, t)) for k, v in amp.items()]))
        small = a.get("small_groups") or []
        if small:
            names = ", ".join(str(x.get("group", x)) if isinstance(x, dict) else str(x) for x in small)
            out.append(Note(t("checks", "small_groups", groups=names, min_size=st.get("min_group_size", "—")), kind="warning"))
        fig = _figure(src, a.get("chart"), t("checks", "group_chart_caption", attribute=a.get("attribute", "—")))
        if fig:
            out.append(fig)
    proxies = [p for p in d.get("proxies") or [] if p.get("strong")]
    if proxies:
        out.append(Table([t.l("feature"), t.column("attribute"), t.l("group"), "ROC AUC", "NMI"],
                         [[str(p.get("feature")), str(p.get("attribute")), str(p.get("group", "")), t.num(p.get("auc"), 3),
                           t.num(p.get("nmi"), 3)] for p in proxies],
                         caption=t("checks", "proxies_caption"), numeric=[False, False, False, True, True]))
    return out


# explanations -------------------------------------------------------------------------------------
def explanations(src: Sources, t: Text, local_rows: int = 6, waterfalls: int = 2, all_figures: bool = True) -> list[Block]:
    """Explanations for a reader; `all_figures=False` (a model card) keeps the global bar chart only."""
    d, glob = _details_with(src, "explanations", "global")
    out: list[Block] = []
    ex = d.get("explainer") or {}
    bg = d.get("background") or {}
    smp = d.get("sampling") or {}
    out.append(KeyValues([(t.column("explainer"), f"{ex.get('explainer', '—')} ({ex.get('route', '—')})"),
                          (t.column("explained_output"), str(d.get("explained_output") or d.get("scale") or "—")),
                          (t.column("background"), t("checks", "background", rows=t.num(bg.get("rows_used")),
                                                     source=str(bg.get("source", "—")))),
                          (t.column("sampling"), t("checks", "sampling", sample=t.num(smp.get("sample_rows")),
                                                   population=t.num(smp.get("population_rows")),
                                                   design=str(smp.get("design", "—"))))]))
    out.append(Table([t.column("rank"), t.l("feature"), t.column("mean_abs_shap"), t.column("share"), t.column("mean_signed")],
                     [[f"{g.get('rank')} [{g.get('rank_ci_low')}, {g.get('rank_ci_high')}]" if g.get("rank_ci_low") is not None
                       else str(g.get("rank", "")), str(g.get("feature")), vci(t, g, "mean_abs"), t.num(g.get("share"), 3),
                       t.num(g.get("mean_signed"), 3)] for g in glob],
                     caption=t("checks", "global_caption"), numeric=[True, False, True, True, True]))
    ev = d.get("evidence") or {}
    for key in ("global_bar", "beeswarm") if all_figures else ("global_bar",):
        fig = _figure(src, ev.get(key), t("checks", f"fig_{key}"))
        if fig:
            out.append(fig)
    for attr, groups in (d.get("groups") or {}).items():
        rows = [[str(g.get("group")), t.num(g.get("rows")),
                 "; ".join(f"{x.get('feature')} {t.num(x.get('mean_abs'), 3)}" for x in (g.get("top") or [])[:5])]
                for g in groups]
        out.append(Table([t.l("group"), t.l("rows"), t.column("top_features")], rows,
                         caption=t("checks", "group_drivers_caption", attribute=attr), numeric=[False, True, False]))
        fig = _figure(src, ev.get(f"groups_{attr}"), t("checks", "fig_groups", attribute=attr)) if all_figures else None
        if fig:
            out.append(fig)
    local = d.get("local") or []
    if local:
        rows = []
        for x in local[:local_rows]:
            codes = x.get("reason_codes") or {}
            text = codes.get(t.lang) or codes.get("en") or "; ".join(
                f"{r.get('label', r.get('feature'))} {r.get('value')}" for r in (x.get("reasons") or [])[:4])
            rows.append([str(x.get("row")), t.term(f"local.{x.get('kind')}", str(x.get("kind", ""))), t.num(x.get("score"), 3),
                         t.term(f"decision.{x.get('decision')}", str(x.get("decision", ""))), text])
        out.append(Table([t.column("row"), t.column("kind"), t.column("score"), t.column("decision"), t.column("reason_code")],
                         rows, caption=t("checks", "local_caption", shown=len(rows), total=len(local)),
                         numeric=[True, False, True, False, False]))
        for x in [x for x in local if x.get("waterfall")][:waterfalls if all_figures else 0]:
            fig = _figure(src, x.get("waterfall"), t("checks", "fig_waterfall", row=x.get("row")))
            if fig:
                out.append(fig)
    q = d.get("quality") or {}
    if q:
        kv = []
        add = q.get("additivity") or {}
        if add:
            kv.append((t.column("additivity"), t.num(add.get("max"))))
        if q.get("lime_topk_jaccard_mean") is not None:
            kv.append((t.column("lime_stability"), t.num(q["lime_topk_jaccard_mean"], 3)))
        if q.get("shap_lime_kendall_tau_mean") is not None:
            kv.append((t.column("shap_lime_agreement"), t.num(q["shap_lime_kendall_tau_mean"], 3)))
        dele = q.get("deletion") or {}
        if dele.get("ratio") is not None:
            kv.append((t.column("deletion_ratio"), t.num(dele["ratio"], 2)))
        bgs = q.get("background_sensitivity") or {}
        if bgs.get("redraw_kendall_topk") is not None:
            kv.append((t.column("background_stability"), t.num(bgs["redraw_kendall_topk"], 3)))
        if kv:
            out.append(Paragraph(t("checks", "quality_intro"), style="label"))
            out.append(KeyValues(kv))
        fig = _figure(src, ev.get("deletion"), t("checks", "fig_deletion")) if all_figures else None
        if fig:
            out.append(fig)
    return out


# slices -------------------------------------------------------------------------------------------
def slices(src: Sources, t: Text, figure: bool = True) -> list[Block]:
    d = src.details("slices") or {}
    if "table" not in d and "tested" not in d:
        raise KeyError("table")
    out: list[Block] = [Paragraph(t("checks", "slices_intro", tested=t.num(d.get("tested")),
                                    significant=t.num(d.get("significant")), weak=t.num(d.get("weak_slices"))))]
    pop = d.get("population") or {}
    if pop:
        out.append(KeyValues([(t.term(k), t.num(v)) for k, v in pop.items()]))
    rows = d.get("table") or []
    if rows:
        out.append(Table([t.column("rank"), t.column("slice"), t.l("metric"), t.l("value"), t.column("population"),
                          t.column("size"), t.column("effect"), t.column("q_value")],
                         [[str(r.get("rank", "")), str(r.get("slice")), t.term(r.get("metric", "")), vci(t, r, "value"),
                           t.num(r.get("population"), 3), t.num(r.get("size")), t.num(r.get("effect"), 3),
                           t.num(r.get("q_value"), 4)] for r in rows],
                         caption=t("checks", "slices_caption"), numeric=[True, False, False, True, True, True, True, True]))
    fig = _figure(src, (d.get("evidence") or {}).get("plot"), t("checks", "fig_slices")) if figure else None
    if fig:
        out.append(fig)
    return out


# robustness ---------------------------------------------------------------------------------------
def robustness(src: Sources, t: Text, top: int = 12, figure: bool = True) -> list[Block]:
    d = src.details("robustness") or {}
    if not any(k in d for k in ("joint", "per_column", "evasion")):
        raise KeyError("joint")
    out: list[Block] = []
    kv = []
    for key in ("joint", "missing_one_value"):
        x = d.get(key) or {}
        if x.get("flip_rate") is not None:
            kv.append((t.column(f"flip_{key}"), f"{vci(t, x, 'flip_rate')} · n = {t.num(x.get('n'))}"))
    ev = d.get("evasion") or {}
    if ev.get("success_rate") is not None:
        kv.append((t.column("evasion"), f"{vci(t, ev, 'success_rate')} · {t.num(ev.get('succeeded'))}/{t.num(ev.get('attempted'))}"))
        kv.append((t.column("evasion_changes"), t.num(ev.get("median_changes"))))
    if kv:
        out.append(KeyValues(kv))
    cols = sorted(d.get("per_column") or [], key=lambda r: -(r.get("flip_rate") or 0))[:top]
    if cols:
        out.append(Table([t.l("feature"), t.column("perturbation"), t.column("flip_rate"), t.column("mean_score_change")],
                         [[str(r.get("feature")), str(r.get("perturbation") or r.get("kind", "")), vci(t, r, "flip_rate"),
                           vci(t, r, "mean_score_change")] for r in cols],
                         caption=t("checks", "per_column_caption", shown=len(cols), total=len(d.get("per_column") or [])),
                         numeric=[False, False, True, True]))
    use = ev.get("feature_use") or []
    if use:
        out.append(Table([t.l("feature"), t.column("used_in_successes"), t.column("share")],
                         [[str(u.get("feature")), t.num(u.get("used_in_successes")), t.num(u.get("share"), 3)] for u in use],
                         caption=t("checks", "evasion_caption"), numeric=[False, True, True]))
    errors = d.get("missing_errors") or []
    if errors:
        out.append(Note(t("checks", "missing_errors", columns=", ".join(str(e.get("column")) for e in errors)), kind="warning"))
    fig = _figure(src, (d.get("evidence") or {}).get("plot"), t("checks", "fig_robustness")) if figure else None
    if fig:
        out.append(fig)
    return out


# sparse-autoencoder probes (language models) ---------------------------------------------------------
def sae(src: Sources, t: Text) -> list[Block]:
    d = src.details("sae") or {}
    attributes = d.get("attributes")
    if attributes is None:
        raise KeyError("attributes")
    out: list[Block] = []
    q = d.get("quality") or {}
    kv = [(t.column("hook"), str(d.get("hook") or "—"))]
    prov = d.get("provenance")
    if isinstance(prov, dict):
        kv += [(t.column(k), B.cell(v, t)) for k, v in prov.items() if B.scalar(v)]
    if "passed" in q:
        kv.append((t.column("sae_quality"), t.yes_no(bool(q.get("passed")))))
    out.append(KeyValues(kv))
    gate = q.get("gate") or []
    if isinstance(gate, list) and gate and all(isinstance(g, dict) for g in gate):
        out.append(B.table_from_rows(gate, t, caption=t("checks", "sae_gate_caption")))
    for a in attributes:
        b = a.get("behaviour") or {}
        out.append(Paragraph(f"{t.column('attribute')}: {a.get('attribute')}", style="label"))
        if a.get("description"):
            out.append(Paragraph(str(a["description"]), style="small"))
        rows = [(t.column("gap"), t.num(b.get("gap")) + (f" {t.ci(b.get('gap_ci'))}" if b.get("gap_ci") else "")),
                (t.column("p_value"), t.num(b.get("p_value"))),
                (t.column("significant"), t.yes_no(bool(b.get("significant")))),
                (t.column("model_rate"), t.num(b.get("model_rate")) + (f" {t.ci(b.get('model_rate_ci'))}" if b.get("model_rate_ci") else "")),
                (t.column("corpus_rate"), t.num(b.get("corpus_rate")))]
        if b.get("amplification") is not None:
            rows.append((t.term("amplification"), t.num(b.get("amplification")) +
                         (f" {t.ci(b.get('amplification_ci'))}" if b.get("amplification_ci") else "")))
        out.append(KeyValues(rows))
        if a.get("features_run") is False:
            out.append(Note(t("checks", "sae_features_skipped", reason=str(a.get("features_skipped_reason") or "—"))))
        abl = a.get("ablation") or {}
        if abl:
            out.append(KeyValues([
                (t.column("n_features"), t.num(abl.get("n_features"))),
                (t.column("ablation_effect"), t.num(abl.get("effect")) + (f" {t.ci(abl.get('effect_ci'))}" if abl.get("effect_ci") else "")),
                (t.column("control_effect"), t.num(abl.get("control_effect")) +
                 (f" {t.ci(abl.get('control_effect_ci'))}" if abl.get("control_effect_ci") else "")),
                (t.column("excess_effect"), t.num(abl.get("excess_effect")) +
                 (f" {t.ci(abl.get('excess_effect_ci'))}" if abl.get("excess_effect_ci") else "")),
                (t.column("localised"), t.yes_no(bool(abl.get("localised"))))]))
        feats = a.get("features") or []
        if feats:
            out.append(Table([t.column("feature_index"), t.column("label"), t.column("selected_by"), t.column("attribution_share"),
                              "AUROC", t.column("ablation_effect_alone")],
                             [[str(f.get("index")), str(f.get("label") or ""), str(f.get("selected_by") or ""),
                               t.num(f.get("attribution_share"), 3), t.num(f.get("auroc_max_activation"), 3),
                               t.num(f.get("ablation_effect_alone"), 3)] for f in feats[:12]],
                             caption=t("checks", "sae_features_caption", attribute=a.get("attribute")),
                             numeric=[True, False, False, True, True, True]))
        steer = a.get("steering") or {}
        if steer.get("slope") is not None:
            out.append(KeyValues([(t.column("steering_slope"), t.num(steer.get("slope")) +
                                   (f" {t.ci(steer.get('slope_ci'))}" if steer.get("slope_ci") else ""))]))
        for key, rel in (a.get("plots") or {}).items():
            fig = _figure(src, rel, t("checks", "fig_sae", attribute=a.get("attribute"), kind=t.column(key)))
            if fig:
                out.append(fig)
    limits = d.get("limits") or []
    if limits:
        out.append(Paragraph(t("checks", "sae_limits"), style="label"))
        out.append(Bullets([str(x) for x in limits]))
    return out


VIEWS: dict[str, Callable[[Sources, Text], list[Block]]] = {
    "fairness": fairness, "explanations": explanations, "slices": slices, "robustness": robustness, "sae": sae}
# A summary (the model card) shows these checks' tables; their figures are in Annex IV.
TABLES_ONLY: dict[str, Callable[[Sources, Text], list[Block]]] = {
    "slices": lambda s, t: slices(s, t, figure=False), "robustness": lambda s, t: robustness(s, t, figure=False)}


def check_blocks(src: Sources, check: str, t: Text, with_findings: bool = True,
                 view: Callable[[Sources, Text], list[Block]] | None = None) -> list[Block]:
    """A check's section body: summary, its non-passing findings, curated tables and figures
    (or the generic rendering), or a not-assessed notice."""
    missing = B.not_assessed(src, check, t)
    if missing:
        return [missing]
    own = [f for f in src.result.findings if f.check == check]
    bad = [f for f in own if f.status.value != "pass"]
    by = {k: sum(f.status.value == k for f in own) for k in ("fail", "warn", "error")}
    out: list[Block] = [Paragraph(t("common", "check_summary", check=t.check(check), n=len(own), bad=len(bad),
                                    failed=by["fail"], warned=by["warn"], errored=by["error"]))]
    if bad and with_findings:
        out.append(B.findings_list(bad, t))
    view = view or VIEWS.get(check)
    body: list[Block] = []
    if view is not None:
        try:
            body = view(src, t)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            body = []
    if not body:
        body = B.detail_blocks(src.details(check) or {}, t, [t.check(check)]) + B.figures(src, check, t)
    return out + body


# risk classification -------------------------------------------------------------------------------
def risk(src: Sources, t: Text, items: B.OpenItems, where: str) -> list[Block]:
    r = src.result.risk
    if not r:
        return [Note(t("common", "no_classification"), kind="warning"), items.add(where, t.l("need_system_card"))]
    out: list[Block] = []
    tier = r.get("tier")
    fria = r.get("fria_required")
    reg = r.get("regulation") or {}
    kv = [(t.l("risk_tier"), t.term(f"tier.{tier}", str(tier))),
          (t.column("citations"), ", ".join(B.cite(c, t) for c in r.get("citations") or []) or "—"),
          (t.column("applies_from"), f"{r.get('tier_applies_from') or '—'}"
                                     f" ({t.l('in_effect') if r.get('tier_in_effect') else t.l('not_yet_in_effect')})"),
          (t.column("roles"), ", ".join(t.term(f"role.{x}", x) for x in r.get("roles") or []) or "—"),
          (t.l("fria_required"), ("—" if fria is None else t.yes_no(bool(fria)))
           + (f" ({', '.join(B.cite(c, t) for c in r.get('fria_citations') or [])})" if r.get("fria_citations") else "")),
          (t.column("as_of"), str(r.get("as_of") or "—")),
          (t.column("regulation"), f"{reg.get('name', '—')} {reg.get('version', '')} · {reg.get('edition', '')}".strip()),
          *([(t.l("law_text"), str(r["consolidated_version"]))] if r.get("consolidated_version") else [])]
    out.append(KeyValues(kv))
    obligations = r.get("obligations") or []
    if obligations:
        out.append(Table([t.column("article"), t.column("title"), t.column("addressee"), t.column("evidence_status"),
                          t.column("applies_from")],
                         [[B.cite(str(o.get("article")), t), t.obligations.get(str(o.get("id")), str(o.get("title"))), ", ".join(t.term(f"role.{a}", a) for a in o.get("addressee") or []),
                           _evidence_cell(t, o), str(o.get("applies_from") or "—")]
                          for o in obligations],
                         caption=t("checks", "obligations_caption", n=len(obligations)), kind="obligations"))
    summary = r.get("evidence_summary") or {}
    if summary:
        out.append(KeyValues([(t.term(f"evidence.{k}", k), t.num(v)) for k, v in summary.items()]))
    for m in r.get("missing_checks") or []:
        out.append(Note(t("checks", "missing_check", check=t.check(str(m.get("check"))), state=str(m.get("state"))),
                        kind="warning"))
    for q in r.get("open_questions") or []:
        text = q.get("question") if isinstance(q, dict) else str(q)
        out.append(items.add(where, str(text)))
    for n in r.get("notes") or []:
        out.append(Paragraph(str(n), style="small"))
    return out
