"""Training- and test-data governance (EU AI Act Art. 10): the data, not only the model.

Completeness (missingness overall and by protected group), duplicates and train/test overlap, and
representativeness against the population the system card says the system is used on. Every share has
a Wilson interval; the tests of one audit (missingness by group, goodness of fit) form one Holm family.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from risk.catalogue import citations

from ..findings import Finding, Severity, Status
from ..metrics.data_quality import goodness_of_fit_p, independence_p, missing_by_group, row_keys, share
from ..metrics.inference import adjust
from ..metrics.intervals import interval_status
from .base import AuditContext, Check, CheckConfig, CheckResult

NAME = "data_governance"
R = citations(NAME)
R_QUALITY, R_BIAS, R_GAPS, R_SETTING, R_VALIDATION = (R[k] for k in ("quality", "bias", "gaps", "setting", "validation"))
REFERENCES = [R_QUALITY, R_BIAS, R_GAPS, R_SETTING, R_VALIDATION]


class DataGovernanceConfig(CheckConfig):
    confidence: float = Field(0.95, gt=0.5, lt=1)
    max_missing_share: float = Field(0.05, ge=0, le=1, description="Missing share of a model input above which it warns.")
    max_duplicate_share: float = Field(0.05, ge=0, le=1, description="Share of exact duplicate audited rows.")
    max_overlap_share: float = Field(0.01, ge=0, le=1, description="Share of audited rows also in the training "
                                                                   "split (inputs and label): test contamination.")
    representation_tolerance: float = Field(0.2, ge=0, lt=1, description="A group is under-represented when its "
                                            "whole share interval lies below (1 - tolerance) x its target share.")
    severity: Severity = Severity.medium


class GroupMissingness(BaseModel):
    group: str
    rows: int
    missing: int
    share: float


class Representation(BaseModel):
    group: str
    rows: int
    share: float
    ci_low: float
    ci_high: float
    target: float
    under_represented: bool


def _bound_status(ci: tuple[float, float], bound: float) -> Status:
    return Status(interval_status(ci, bound, higher_is_better=False))


def _inconclusive(status: Status, bound: float) -> str:
    """Why a share at or under its bound can still warn: the interval, not the point, has to clear it."""
    if status != Status.warn:
        return ""
    return f" The interval reaches past the {bound:.1%} bound, so these rows cannot show the share is within it."


def _completeness(ctx: AuditContext, cfg: DataGovernanceConfig, tests: list[dict[str, Any]]) -> list[Finding]:
    frame, features = ctx.data.frame, [f.name for f in ctx.model.meta.features if f.name in ctx.data.frame]
    findings, rows = [], []
    for feature in features:
        missing = frame[feature].isna()
        s = share(int(missing.sum()), len(frame), cfg.confidence)
        rows.append({"feature": feature, "missing": s.count, "share": s.value, "ci_low": s.ci[0], "ci_high": s.ci[1]})
        if s.count:
            status = _bound_status(s.ci, cfg.max_missing_share)
            findings.append(Finding.make(
                NAME, f"Missing values in '{feature}'", status=status,
                severity=Severity.info if status == Status.passed else cfg.severity,
                metric=f"data_governance.missing_share.{feature}", group=feature, value=s.value, ci=s.ci,
                threshold=cfg.max_missing_share, references=[R_QUALITY, R_GAPS],
                detail=f"{s.count:,} of {s.n:,} audited rows ({s.value:.1%}; {cfg.confidence:.0%} Wilson CI "
                       f"{s.ci[0]:.1%}–{s.ci[1]:.1%}) have no value for '{feature}'.",
                data={"ci_method": "Wilson score", "rows": s.n, "missing": s.count}))
        for attribute in ctx.data.protected:
            if attribute == feature or not s.count:
                continue
            table, labels = missing_by_group(missing, frame[attribute])
            tests.append({"kind": "missing_by_group", "feature": feature, "attribute": attribute,
                          "p": independence_p(table),
                          "groups": [GroupMissingness(group=g, rows=int(t.sum()), missing=int(t[1]),
                                                      share=float(t[1] / t.sum())).model_dump()
                                     for g, t in zip(labels, table)]})
    findings.append(Finding.make(
        NAME, "Completeness of the model inputs", status=Status.passed, severity=Severity.info,
        metric="data_governance.complete_inputs", value=float(sum(r["missing"] == 0 for r in rows)),
        references=[R_QUALITY, R_GAPS],
        detail=f"{sum(r['missing'] == 0 for r in rows)} of {len(rows)} model inputs have a value in every audited row.",
        data={"features": rows}))
    return findings


def _duplicates(ctx: AuditContext, cfg: DataGovernanceConfig) -> list[Finding]:
    frame = ctx.data.frame
    columns = [f.name for f in ctx.model.meta.features if f.name in frame] + ([ctx.data.label] if ctx.data.label else [])
    keys = row_keys(frame, columns)
    dup = share(int(keys.duplicated().sum()), len(frame), cfg.confidence)
    status = _bound_status(dup.ci, cfg.max_duplicate_share)
    out = [Finding.make(
        NAME, "Duplicate rows in the audited data", status=status,
        severity=Severity.info if status == Status.passed else cfg.severity, metric="data_governance.duplicate_share",
        value=dup.value, ci=dup.ci, threshold=cfg.max_duplicate_share, references=[R_QUALITY, R_VALIDATION],
        detail=f"{dup.count:,} of {dup.n:,} audited rows repeat an earlier row exactly (inputs and label): "
               f"{dup.value:.1%}, {cfg.confidence:.0%} Wilson CI {dup.ci[0]:.1%}–{dup.ci[1]:.1%}."
               + _inconclusive(status, cfg.max_duplicate_share),
        data={"ci_method": "Wilson score", "rows": dup.n, "duplicates": dup.count})]
    train = ctx.data.train
    if train is not None and all(c in train for c in columns):
        seen = set(row_keys(train, columns))
        overlap = share(int(keys.isin(seen).sum()), len(frame), cfg.confidence)
        status = _bound_status(overlap.ci, cfg.max_overlap_share)
        out.append(Finding.make(
            NAME, "Audited rows also in the training data", status=status,
            severity=Severity.info if status == Status.passed else cfg.severity, metric="data_governance.overlap_share",
            value=overlap.value, ci=overlap.ci, threshold=cfg.max_overlap_share, references=[R_VALIDATION, R_QUALITY],
            detail=f"{overlap.count:,} of {overlap.n:,} audited rows equal a training row (inputs and label): the "
                   "performance and fairness measured on them is not measured on unseen data "
                   f"({overlap.value:.1%}, {cfg.confidence:.0%} Wilson CI {overlap.ci[0]:.1%}–{overlap.ci[1]:.1%})."
                   + _inconclusive(status, cfg.max_overlap_share),
            data={"ci_method": "Wilson score", "rows": overlap.n, "overlap": overlap.count, "train_rows": len(train)}))
    return out


def _representation(ctx: AuditContext, cfg: DataGovernanceConfig, tests: list[dict[str, Any]]) -> list[Finding]:
    card = getattr(ctx.card, "card", None)
    targets = getattr(card, "target_population", None) or {}
    declared = {a: t for a, t in targets.items() if a in ctx.data.protected}
    if not declared:
        return [Finding.make(
            NAME, "Target population not declared", status=Status.warn, severity=Severity.low,
            metric="data_governance.target_population", references=[R_SETTING, R_QUALITY],
            detail="The system card gives no shares of the population the system is used on for the audited "
                   "attributes (target_population), so representativeness (Art. 10(3)-(4)) cannot be measured.")]
    frame, out = ctx.data.frame, []
    for attribute, target in declared.items():
        groups = list(target)
        counts = frame[attribute].astype(str).value_counts()
        observed = np.array([int(counts.get(g, 0)) for g in groups])
        n = int(observed.sum())
        rows = []
        for g, x in zip(groups, observed):
            s = share(int(x), n, cfg.confidence, comparisons=len(groups))
            rows.append(Representation(group=g, rows=int(x), share=s.value, ci_low=s.ci[0], ci_high=s.ci[1],
                                       target=target[g],
                                       under_represented=s.ci[1] < (1 - cfg.representation_tolerance) * target[g]))
        unknown = sorted(set(counts.index) - set(groups))
        tests.append({"kind": "representation", "attribute": attribute,
                      "p": goodness_of_fit_p(observed, np.array([target[g] for g in groups])),
                      "rows": [r.model_dump() for r in rows], "undeclared_groups": unknown})
    return out


def _settle(cfg: DataGovernanceConfig, tests: list[dict[str, Any]]) -> list[Finding]:
    """Holm over every test of the check; a test finding warns when its adjusted p is below 1 - confidence."""
    alpha = 1 - cfg.confidence
    adjusted = adjust([t["p"] for t in tests], "holm") if tests else []
    out = []
    for t, p_adj in zip(tests, adjusted):
        significant = bool(p_adj < alpha)
        common = {"p_value": t["p"], "p_adjusted": float(p_adj), "family_size": len(tests), "correction": "holm"}
        if t["kind"] == "missing_by_group":
            worst = max(t["groups"], key=lambda g: g["share"])
            out.append(Finding.make(
                NAME, f"Missingness of '{t['feature']}' depends on {t['attribute']}",
                status=Status.warn if significant else Status.passed,
                severity=cfg.severity if significant else Severity.info,
                metric=f"data_governance.missing_by_group.{t['feature']}.{t['attribute']}", group=t["attribute"],
                references=[R_BIAS, R_QUALITY],
                detail=(f"Missing shares of '{t['feature']}' by {t['attribute']}: "
                        + ", ".join(f"{g['group']} {g['share']:.1%} ({g['missing']}/{g['rows']})" for g in t["groups"])
                        + f"; test of independence p = {t['p']:.3g}, Holm-adjusted {p_adj:.3g} over {len(tests)} tests"
                        + (f": missing not at random with respect to {t['attribute']} (highest for {worst['group']})."
                           if significant else ".")),
                data={**common, "groups": t["groups"], "test": "Fisher exact (2x2) or chi-square independence"}))
        else:
            under = [r for r in t["rows"] if r["under_represented"]]
            status = Status.warn if (significant and under) else Status.passed
            out.append(Finding.make(
                NAME, f"Representativeness by {t['attribute']}", status=status,
                severity=cfg.severity if status != Status.passed else Severity.info,
                metric=f"data_governance.representation.{t['attribute']}", group=t["attribute"],
                references=[R_QUALITY, R_SETTING, R_BIAS],
                detail=("Audited shares against the card's target population: "
                        + ", ".join(f"{r['group']} {r['share']:.1%} (CI {r['ci_low']:.1%}–{r['ci_high']:.1%}; "
                                    f"target {r['target']:.1%})" for r in t["rows"])
                        + f"; goodness-of-fit p = {t['p']:.3g}, Holm-adjusted {p_adj:.3g}"
                        + (f". Under-represented: {', '.join(r['group'] for r in under)}." if status != Status.passed
                           else ".")
                        + (f" Groups in the data the card does not declare: {', '.join(t['undeclared_groups'])}."
                           if t["undeclared_groups"] else "")),
                data={**common, "groups": t["rows"], "ci_method": "Wilson score, simultaneous (Bonferroni over groups)",
                      "test": "chi-square goodness of fit (Monte Carlo when an expected count is below 5)"}))
    return out


def run(ctx: AuditContext, cfg: DataGovernanceConfig) -> CheckResult:
    ctx.progress("data governance: completeness, duplicates, overlap, representativeness")
    tests: list[dict[str, Any]] = []
    result = CheckResult()
    result.findings.extend(_completeness(ctx, cfg, tests))
    result.findings.extend(_duplicates(ctx, cfg))
    result.findings.extend(_representation(ctx, cfg, tests))
    result.findings.extend(_settle(cfg, tests))
    for f in result.findings:
        if f.metric and f.value is not None:
            result.metrics[f.metric] = f.value
            if f.ci:
                result.metrics[f"{f.metric}.ci_low"], result.metrics[f"{f.metric}.ci_high"] = f.ci
    result.details = {"rows": len(ctx.data.frame), "train_rows": None if ctx.data.train is None else len(ctx.data.train),
                      "tests": len(tests), "correction": "holm", "confidence": cfg.confidence}
    return result


CHECK = Check(name=NAME, run=run, config=DataGovernanceConfig, references=tuple(REFERENCES),
              requires=frozenset({"tabular"}))
