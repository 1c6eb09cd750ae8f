"""Weak-slice discovery: where in the data the model quietly fails (EU AI Act Art. 15(1), (3)).

Searches single-feature and feature-pair slices for an error rate, false-negative rate or
calibration gap significantly worse than the rest of the population, with Benjamini-Hochberg
control over every (slice, metric) test, false-coverage-rate adjusted intervals for the slices it
selects, and overlapping slices merged into distinct problems (`audit.metrics.slices`).
"""
from __future__ import annotations

import json
import math
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from risk.catalogue import citations

from ..csvsafe import write_frame
from ..findings import Finding, Severity, Status
from ..metrics.intervals import interval_status
from ..metrics.slices import RowOutcomes, SliceSearchResult, effect_label, find_weak_slices
from .base import AuditContext, Check, CheckConfig, CheckResult

NAME = "slices"
REFERENCES = list(citations(NAME).values())
METRIC_TITLES = {"error_rate": "error rate", "false_negative_rate": "false-negative rate",
                 "calibration_gap": "calibration gap (observed minus predicted positive rate)",
                 "absolute_error": "mean absolute error"}
SliceMetric = Literal["error_rate", "false_negative_rate", "calibration_gap", "absolute_error"]


class SlicesConfig(CheckConfig):
    metrics: list[SliceMetric] = Field(
        default_factory=lambda: ["error_rate", "false_negative_rate", "calibration_gap", "absolute_error"],
        description="Metrics to search; those that do not apply to the task (e.g. FNR for regression) are skipped.")
    min_size: int = Field(30, ge=5, description="Minimum rows in a slice (and outside it).")
    min_fraction: float = Field(0.005, ge=0, lt=0.5, description="Minimum slice size as a share of the rows; the larger of the two applies.")
    min_positives: int = Field(10, ge=1, description="Minimum positive-class rows for a false-negative-rate test.")
    n_bins: int = Field(5, ge=2, le=20, description="Quantile bins for numeric features.")
    max_categories: int = Field(20, ge=2, le=200, description="Most frequent categories kept per feature; the rest pool into '(other)'.")
    max_features: Literal[1, 2] = Field(2, description="1: single-feature slices; 2: also feature pairs.")
    include_protected: bool = Field(True, description="Also slice by the protected attributes (intersections with other features).")
    exclude: list[str] = Field(default_factory=list, description="Columns never used to define slices (e.g. identifiers).")
    fdr: float = Field(0.05, gt=0, lt=0.5, description="False-discovery rate for the family of slice tests.")
    fdr_method: Literal["bh", "by"] = Field("bh", description="Benjamini-Hochberg, or Benjamini-Yekutieli (any dependence).")
    min_difference: float = Field(0.05, ge=0, le=1, description="Rates: how much worse than the population a slice must be.")
    min_calibration_difference: float = Field(0.05, ge=0, le=1, description="Calibration: excess absolute gap over the population's.")
    min_effect: float = Field(0.2, ge=0, description="Minimum effect size (Cohen's h for rates, d for calibration).")
    min_refinement: float = Field(0.1, ge=0, lt=1, description="A pair slice must drop at least this share of each parent's rows.")
    max_share: float = Field(0.5, gt=0, le=1, description="Largest share of rows a slice may hold.")
    merge_jaccard: float = Field(0.5, gt=0, le=1, description="Slices whose rows overlap this much (Jaccard) are one problem.")
    merge_containment: float = Field(0.8, gt=0, le=1.01, description="A slice with this share of its rows inside a higher-ranked one joins it.")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Marginal interval level; reported intervals are FCR-adjusted.")
    max_reported: int = Field(10, ge=1, le=100, description="Distinct weak slices reported as findings and metrics.")
    severity: Severity = Severity.medium

    @model_validator(mode="after")
    def _some_metric(self) -> "SlicesConfig":
        if not self.metrics:
            raise ValueError("metrics: name at least one metric")
        return self


def _outcomes(ctx: AuditContext) -> RowOutcomes:
    preds = ctx.predictions
    task = ctx.model.task
    if task == "binary":
        return RowOutcomes.binary(ctx.y_true_bin(), preds.y_pred_bin, preds.score)
    if task == "multiclass":
        return RowOutcomes.multiclass(ctx.data.y.to_numpy(), preds.y_pred)
    return RowOutcomes.continuous(ctx.data.y.to_numpy(dtype=float), preds.y_pred)


def slice_columns(ctx: AuditContext, cfg: SlicesConfig) -> list[str]:
    ds = ctx.spec.spec.dataset
    skip = {ds.label, ds.split_column, *cfg.exclude}
    if not cfg.include_protected:
        skip |= set(ctx.data.protected)
    frame = ctx.data.frame
    return [c for c in frame.columns if c not in skip and frame[c].nunique(dropna=False) > 1]


def _fmt(x: float) -> str:
    return f"{x:.3f}" if abs(x) >= 0.001 or x == 0 else f"{x:.2e}"


def _q(q: float) -> str:
    return f"{q:.2g}" if q >= 1e-4 else "< 0.0001"


def _threshold(metric: str, population: float, cfg: SlicesConfig) -> float:
    if metric == "calibration_gap":
        return abs(population) + cfg.min_calibration_difference
    return population + cfg.min_difference


def _abs_ci(lo: float, hi: float) -> tuple[float, float]:
    if lo <= 0 <= hi:
        return 0.0, max(-lo, hi)
    return min(abs(lo), abs(hi)), max(abs(lo), abs(hi))


def _plot(ctx: AuditContext, groups: list[dict], population: dict[str, float], fcr: float) -> str | None:
    """The reported weak slices and their intervals, saved as data (`audit.figures`)."""
    if not groups:
        return None
    rows = [{"rank": g["rank"], "slice": g["slice"], "n": g["size"], "metric": m["metric"], "value": m["value"],
             "ci_low": m["ci"][0], "ci_high": m["ci"][1]} for g in groups for m in g["metrics"][:1]]
    return ctx.figure(NAME, "weak_slices", "slices.weak", rows=rows,
                      population={r["metric"]: population[r["metric"]] for r in rows}, fcr=fcr)


def draw_weak_slices(path, *, rows: list[dict], population: dict[str, float], fcr: float) -> None:
    from matplotlib.figure import Figure

    from interpret.plots import DPI, PNG, fit_left

    metrics = sorted({r["metric"] for r in rows})
    counts = [sum(r["metric"] == m for r in rows) for m in metrics]
    fig = Figure(figsize=(9, 0.42 * len(rows) + 1.1 * len(metrics) + 0.6))
    axes = fig.subplots(len(metrics), 1, squeeze=False, gridspec_kw={"height_ratios": [c + 1.2 for c in counts]})
    for ax, metric in zip(axes[:, 0], metrics):
        sub = [r for r in rows if r["metric"] == metric]
        y = np.arange(len(sub))[::-1]
        vals, lo, hi = (np.array([r[k] for r in sub], dtype=float) for k in ("value", "ci_low", "ci_high"))
        ax.errorbar(vals, y, xerr=np.clip(np.vstack([vals - lo, hi - vals]), 0, None), fmt="o", color="#c0392b", ecolor="#555555", capsize=3)
        ax.axvline(population[metric], color="#1f4e79", linestyle="--", label=f"population {population[metric]:.3f}")
        labels = [f"#{r['rank']} {r['slice'] if len(r['slice']) <= 55 else r['slice'][:52] + '…'} (n={r['n']:,})" for r in sub]
        ax.set_yticks(y, labels, fontsize=7)
        ax.set_title(METRIC_TITLES[metric], fontsize=9, y=1.0)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Weak slices with {fcr:.1%} false-coverage-adjusted intervals", fontsize=10)
    fit_left(fig, [lab for ax in axes[:, 0] for lab in (t.get_text() for t in ax.get_yticklabels())], 7,
             top=0.6, bottom=0.35, hspace=0.5)
    fig.savefig(path, dpi=DPI, **PNG)


def _write_evidence(ctx: AuditContext, res: SliceSearchResult, settings: dict) -> dict[str, str]:
    weak_cols = ["group", "slice", "metric", "n", "n_eff", "value", "population", "rest", "difference", "effect",
                 "excess", "ci_low", "ci_high", "ci_low_marginal", "ci_high_marginal", "p", "q"]
    csv_path, csv_rel = ctx.evidence_path(NAME, "weak_slices.csv")
    write_frame(csv_path, res.weak, weak_cols)
    tests_path, tests_rel = ctx.evidence_path(NAME, "slice_tests.csv")
    cols = ["slice", "metric", "n", "n_eff", "value", "population", "rest", "difference", "effect", "p", "q",
            "significant", "weak"]
    t = res.tests.assign(slice=res.describe(res.tests)) if len(res.tests) else pd.DataFrame(columns=cols)
    for c in ("value", "population", "rest", "difference", "effect", "p", "q"):
        t[c] = [float(f"{v:.6g}") for v in t[c].to_numpy(dtype=float)]
    write_frame(tests_path, t, cols)
    json_path, json_rel = ctx.evidence_path(NAME, "weak_slices.json")
    json_path.write_text(json.dumps({"settings": settings, "population": res.population, "tests": res.n_tests,
                                     "significant": res.n_significant, "fcr_confidence": res.fcr_confidence,
                                     "groups": res.groups}, indent=2, default=float))
    return {"csv": csv_rel, "tests_csv": tests_rel, "json": json_rel}


def run(ctx: AuditContext, cfg: SlicesConfig) -> CheckResult:
    columns = slice_columns(ctx, cfg)
    n = len(ctx.data.frame)
    min_size = max(cfg.min_size, math.ceil(cfg.min_fraction * n))
    ctx.progress(f"slices: searching {len(columns)} features (min slice {min_size} rows)")
    res = find_weak_slices(
        ctx.data.frame[columns], _outcomes(ctx), metrics=list(cfg.metrics), n_bins=cfg.n_bins,
        max_categories=cfg.max_categories, max_features=cfg.max_features, min_size=min_size,
        min_positives=cfg.min_positives, fdr=cfg.fdr, fdr_method=cfg.fdr_method, min_difference=cfg.min_difference,
        min_calibration_difference=cfg.min_calibration_difference, min_effect=cfg.min_effect,
        min_refinement=cfg.min_refinement, max_share=cfg.max_share, merge_jaccard=cfg.merge_jaccard,
        merge_containment=cfg.merge_containment, confidence=cfg.confidence)
    settings = {"min_size": min_size, "min_positives": cfg.min_positives, "n_bins": cfg.n_bins,
                "max_features": cfg.max_features, "fdr": cfg.fdr, "fdr_method": cfg.fdr_method,
                "test": "one-sided Fisher exact (rates), Welch t (calibration, absolute error), slice vs rest",
                "min_difference": cfg.min_difference, "min_calibration_difference": cfg.min_calibration_difference,
                "min_effect": cfg.min_effect, "effect_size": "Cohen's h (rates), Cohen's d (means)",
                "merge": {"jaccard": cfg.merge_jaccard, "containment": cfg.merge_containment},
                "interval": "Wilson (rates) / t (means), false-coverage-rate adjusted (Benjamini-Yekutieli 2005)",
                "columns": columns, "protected_included": cfg.include_protected}
    files = _write_evidence(ctx, res, settings)
    reported = res.groups[: cfg.max_reported]
    plot = _plot(ctx, reported, res.population, res.fcr_confidence or cfg.confidence)
    evidence = [files["csv"], files["json"]] + ([plot] if plot else [])
    result = CheckResult()
    result.metrics.update({"slices.count": float(len(res.groups)), "slices.tested": float(res.n_tests),
                           "slices.significant": float(res.n_significant)})
    fcr = res.fcr_confidence or cfg.confidence
    level = f"{fcr * 100:.4g}"
    table = []
    protected = set(ctx.data.protected)
    for g in reported:
        rank = g["rank"]
        prim = g["metrics"][0]
        metric = prim["metric"]
        result.metrics[f"slices.{rank}.size"] = float(g["size"])
        result.metrics[f"slices.{rank}.effect"] = prim["effect"]
        result.metrics[f"slices.{rank}.q_value"] = prim["q_value"]
        for mrow in g["metrics"]:
            key = f"slices.{rank}.{mrow['metric']}"
            result.metrics[key] = mrow["value"]
            result.metrics[f"{key}.ci_low"], result.metrics[f"{key}.ci_high"] = mrow["ci"]
            result.metrics[f"{key}.population"] = mrow["population"]
        threshold = _threshold(metric, prim["population"], cfg)
        value, ci = prim["value"], tuple(prim["ci"])
        judged, judged_ci = (abs(value), _abs_ci(*ci)) if metric == "calibration_gap" else (value, ci)
        status = Status(interval_status(judged_ci, threshold, higher_is_better=False))
        others = ", ".join(f"{METRIC_TITLES[m['metric']]} {_fmt(m['value'])}" for m in g["metrics"][1:])
        unit = "positive-class rows" if metric == "false_negative_rate" else "rows"
        detail = (f"Among the {g['size']:,} rows where {g['slice']} ({g['share']:.1%} of the audited rows), the "
                  f"{METRIC_TITLES[metric]} is {_fmt(value)} ({level}% false-coverage-adjusted CI {_fmt(ci[0])}–"
                  f"{_fmt(ci[1])}; {prim['n_eff']:,} {unit}) against {_fmt(prim['population'])} for all rows and "
                  f"{_fmt(prim['rest'])} outside the slice: effect size {prim['effect']:.2f} ({effect_label(prim['effect'])}), "
                  f"BH-adjusted q {_q(prim['q_value'])}.")
        if others:
            detail += f" Also worse here: {others}."
        if g["n_related"]:
            detail += f" {g['n_related']} overlapping slice(s) describe the same rows and were merged into this one."
        if status == Status.fail:
            detail += f" The whole interval exceeds the screening bound {_fmt(threshold)} (population + declared margin)."
        touches = sorted(set(g["features"]) & protected)
        result.findings.append(Finding.make(
            NAME, f"Weak slice #{rank}: {g['slice']}", status=status,
            severity=cfg.severity if status != Status.passed else Severity.info,
            metric=f"slices.{rank}.{metric}", group=g["slice"], value=value, threshold=threshold, ci=ci,
            references=REFERENCES, evidence=evidence, detail=detail,
            data={"rank": rank, "size": g["size"], "share": g["share"], "conditions": g["conditions"],
                  "metrics": g["metrics"], "related": g["related"][:10], "n_related": g["n_related"],
                  "protected_attributes": touches, "fcr_confidence": fcr}))
        table.append({"rank": rank, "slice": g["slice"], "metric": metric, "value": value, "ci_low": ci[0],
                      "ci_high": ci[1], "population": prim["population"], "threshold": threshold, "size": g["size"],
                      "effect": prim["effect"], "q_value": prim["q_value"], "merged": g["n_related"],
                      "protected": ", ".join(touches)})
    count = len(res.groups)
    summary = (f"Tested {res.n_tests:,} (slice, metric) pairs over {len(columns)} features (single features"
               f"{' and pairs' if cfg.max_features == 2 else ''}, slices of at least {min_size} rows); "
               f"{res.n_significant:,} are significant at false-discovery rate {cfg.fdr:g} "
               f"({'Benjamini-Hochberg' if cfg.fdr_method == 'bh' else 'Benjamini-Yekutieli'}). ")
    if count:
        summary += (f"{count} distinct weak slice(s) remain after requiring a margin of {cfg.min_difference:g} "
                    f"over the population, effect size ≥ {cfg.min_effect:g}, and merging overlapping slices; "
                    f"the top {len(reported)} by excess affected rows are reported individually.")
    else:
        summary += "None is worse than the population by the declared margin; no weak slice found."
    result.findings.insert(0, Finding.make(
        NAME, "Weak-slice search", status=Status.warn if count else Status.passed,
        severity=Severity.low if count else Severity.info, metric="slices.count", value=float(count),
        references=REFERENCES, evidence=[files["csv"], files["tests_csv"]], detail=summary,
        data={"tested": res.n_tests, "significant": res.n_significant, "population": res.population,
              "fcr_confidence": res.fcr_confidence}))
    result.details = {
        "rows": n, "task": ctx.model.task, "positive_label": ctx.positive_label, "population": res.population,
        "tested": res.n_tests, "significant": res.n_significant, "weak_slices": count,
        "fcr_confidence": res.fcr_confidence, "settings": settings, "table": table,
        "groups": [{**g, "related": g["related"][:10]} for g in reported],
        "evidence": {**files, **({"plot": plot} if plot else {})},
    }
    return result


CHECK = Check(name=NAME, run=run, config=SlicesConfig, references=tuple(REFERENCES),
              requires=frozenset({"tabular", "labels"}))
