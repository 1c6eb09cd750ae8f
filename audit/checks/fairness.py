"""Group fairness, bias amplification and proxy screening, with intervals and family-wise tests.

EU AI Act Art. 10(2)(f)-(g) (examine, detect and mitigate bias), 13(3)(b)(v) (performance for
specific persons or groups), 10(5) where a protected attribute is a special category of personal
data, 15(4) (feedback loops) only for systems declared to keep learning. All confusion-based numbers
come from one (group x y x y_hat) count table; intervals are score-based (Wilson per group; Newcombe
and MOVER for between-groups disparities) and the verdicts are tested as one family
(`_fairness_inference`).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from risk.catalogue import citations

from ..findings import Finding, Severity, Status
from ..metrics import amplification as amp
from ..metrics import fairness as fm
from ..metrics.inference import Correction
from ..metrics.proxies import proxy_strengths
from ..metrics import fairness_inference as fi
from . import _fairness_evidence as evidence
from . import _fairness_inference as fi_check
from .base import AuditContext, Check, CheckConfig, CheckResult

NAME = "fairness"
R = citations(NAME)
R_BIAS, R_MEASURES, R_GROUPS, R_SPECIAL, R_FEEDBACK = (R[k] for k in ("bias", "measures", "groups", "special", "feedback"))
REFERENCES = (R_BIAS, R_MEASURES, R_GROUPS, R_SPECIAL, R_FEEDBACK)
Criterion = Literal["demographic_parity", "equalized_odds", "equal_opportunity", "predictive_parity"]
Scale = Literal["difference", "ratio"]
CRITERIA_TEXT = {
    "demographic_parity": ("Demographic parity", "selection rate"),
    "equalized_odds": ("Equalized odds", "true/false positive rate (worse of the two)"),
    "equal_opportunity": ("Equal opportunity", "true positive rate"),
    "predictive_parity": ("Predictive parity", "precision"),
}
MAX_TABLE_CELLS = 2_000_000
MAX_SMALL_GROUP_FINDINGS = 20
FOUR_FIFTHS_NOTE = ("The four-fifths rule is a US employment screening heuristic (29 CFR 1607.4(D)), not an EU AI Act "
                    "requirement; under the Act thresholds are provider-declared (Art. 9(8)).")


class AmplificationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    biasamp_threshold: float = Field(0.01, ge=0, description="BiasAmp-> (additive, probability points) above which "
                                                             "amplification is flagged.")
    df_threshold: float = Field(0.1, ge=0, description="DF amplification (log-ratio) above which it is flagged.")
    concentration: float = Field(1.0, ge=0, description="Dirichlet smoothing for differential fairness (AIF360).")
    severity: Severity | None = Field(None, description="Severity of a confirmed amplification; default: the "
                                      "fairness severity (so a domain that raises fairness raises this too).")


class ProxyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    auc_threshold: float = Field(0.8, gt=0.5, le=1, description="Single-feature AUC at or above which a feature "
                                                                "is a strong proxy for a protected attribute.")
    n_bins: int = Field(10, ge=2, le=100)
    max_rows: int = Field(50_000, ge=100)
    severity: Severity | None = Field(None, description="Severity of a proxy warning; default: the fairness severity.")


class FairnessConfig(CheckConfig):
    min_group_size: int = Field(30, ge=1, description="Groups with fewer rows get 'insufficient data', not a metric.")
    n_boot: int | None = Field(None, ge=50, le=100_000, description="Deprecated and ignored: fairness intervals are "
                               "score-based (Wilson, Newcombe, MOVER), not bootstrapped. Accepted so older packs load.")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Coverage of every interval; 1 - confidence is the "
                              "family-wise error rate of the fairness verdicts.")
    correction: Correction = Field("holm", description="Multiplicity correction over the family of fairness verdicts "
                                   "(every disparity and amplification finding of the audit): holm or bonferroni "
                                   "control the family-wise error at 1 - confidence; none tests each alone.")
    special_categories: list[str] = Field(
        default_factory=list, description="Protected attributes that are special categories of personal data (GDPR Art. 9(1)); their "
                    "processing for bias detection is subject to EU AI Act Art. 10(5). Matched case-insensitively.")
    ratio_threshold: float = Field(0.8, gt=0, lt=1, description="Four-fifths screening rule: ratio below this is "
                                   "flagged; group-vs-reference ratios use the symmetric band [r, 1/r].")
    difference_threshold: float = Field(0.1, gt=0, lt=1, description="Absolute difference above this is flagged.")
    regression_difference_threshold: float | None = Field(None, gt=0, description="Regression: largest allowed gap in "
                                                          "mean prediction (units of the target); none = report only.")
    criteria: dict[Criterion, list[Scale]] = Field(
        default_factory=lambda: {"demographic_parity": ["difference", "ratio"], "equalized_odds": ["difference"],
                                 "equal_opportunity": ["difference"], "predictive_parity": ["difference"]},
        description="Which parity criteria and scales produce findings (all are reported as metrics).")
    reference_groups: dict[str, str] = Field(default_factory=dict, description="attribute -> reference group; "
                                             "default is the largest group.")
    intersections: Literal["pairs", "none"] | list[list[str]] = Field(
        "pairs", description="'pairs' = every pair of protected attributes; or explicit lists, e.g. [[sex, race]].")
    min_rate_denominator: int = Field(10, ge=1, description="A failing disparity whose extreme group rate rests on "
                                      "fewer rows than this (e.g. positives for TPR) is reported as a flag (warn).")
    max_numeric_levels: int = Field(10, ge=2, description="Numeric attributes with more distinct values are binned "
                                    "into quartiles.")
    severity: Severity = Field(Severity.medium, description="Severity of a disparity warn/fail; raise to high to gate.")
    amplification: AmplificationConfig = Field(default_factory=AmplificationConfig)
    proxies: ProxyConfig = Field(default_factory=ProxyConfig)

    @model_validator(mode="after")
    def _intersections_are_pairs_or_more(self) -> "FairnessConfig":
        if isinstance(self.intersections, list) and any(len(set(i)) < 2 for i in self.intersections):
            raise ValueError("each intersection needs at least two distinct attributes")
        return self

    @property
    def amplification_severity(self) -> Severity:
        return self.amplification.severity or self.severity

    @property
    def proxy_severity(self) -> Severity:
        return self.proxies.severity or self.severity

    def is_special_category(self, attribute: str) -> bool:
        return attribute.lower() in {c.lower() for c in self.special_categories}


@dataclass
class Analysis:
    """One attribute or intersection: its groups in the count table and how they are compared."""

    name: str
    attrs: tuple[str, ...]
    table: fm.CountTable
    groups: list[str]
    keep: np.ndarray
    n: np.ndarray
    eligible: np.ndarray
    ref: int
    ref_rule: str
    direction: np.ndarray | None = None
    direction_source: str | None = None


# --- inputs -----------------------------------------------------------------------------------

def _attribute_labels(ctx: AuditContext, cfg: FairnessConfig, res: CheckResult) -> tuple[dict[str, pd.Series], dict]:
    """String group labels per usable protected attribute; constant ones become findings."""
    frame = ctx.data.frame
    labels, info = {}, {}
    streamed_bins = ctx.population.numeric_bins if ctx.population is not None else None
    for col in ctx.data.protected:
        bins = streamed_bins.get(col) if streamed_bins is not None else fm.numeric_bins(frame[col], cfg.max_numeric_levels)
        lab = fm.group_labels(frame[col], bins)
        n_missing = int(frame[col].isna().sum())
        info[col] = {"binned_at": bins, "missing": n_missing, "dtype": str(frame[col].dtype)}
        if bins:
            res.findings.append(Finding.make(
                NAME, f"Protected attribute '{col}' binned into quartiles", status=Status.passed, severity=Severity.info,
                metric=f"fairness.{col}.binning", references=[R_BIAS],
                detail=f"'{col}' is numeric with more than {cfg.max_numeric_levels} distinct values; groups are its "
                       f"quartile bins (edges {', '.join(f'{b:g}' for b in bins)}).", data={"edges": bins}))
        if lab.nunique() < 2:
            only = lab.iloc[0]
            why = "is entirely missing" if only == fm.UNKNOWN and n_missing == len(lab) else f"has one value ({only!r})"
            res.findings.append(Finding.make(
                NAME, f"Protected attribute '{col}' is constant", status=Status.warn, severity=Severity.medium,
                metric=f"fairness.{col}.groups", value=1.0, references=[R_BIAS, R_GROUPS],
                detail=f"'{col}' {why} in the {len(lab)} audited rows, so no group comparison is possible. Check the "
                       "dataset extract: bias for this attribute cannot be examined from these data.",
                data={"rows": len(lab)}))
            continue
        labels[col] = lab
    return labels, info


def _analyses_wanted(ctx: AuditContext, cfg: FairnessConfig, usable: list[str], res: CheckResult) -> list[tuple[str, ...]]:
    singles = [(a,) for a in usable]
    if cfg.intersections == "none":
        return singles
    if cfg.intersections == "pairs":
        return singles + list(itertools.combinations(usable, 2))
    out = list(singles)
    for combo in cfg.intersections:
        unknown = [a for a in combo if a not in ctx.data.protected]
        unusable = [a for a in combo if a in ctx.data.protected and a not in usable]
        name = fm.JOIN.join(combo)
        if unknown or unusable:
            why = (f"{unknown} are not declared protected attributes ({ctx.data.protected})" if unknown
                   else f"{unusable} are constant")
            res.findings.append(Finding.make(
                NAME, f"Intersection '{name}' not analysed", status=Status.warn, severity=Severity.low,
                metric=f"fairness.{name}.groups", references=[R_BIAS], detail=f"Policy asks for '{name}' but {why}."))
            continue
        out.append(tuple(dict.fromkeys(combo)))
    return list(dict.fromkeys(out))


def _class_indices(ctx: AuditContext) -> tuple[list[str], np.ndarray | None, np.ndarray, list[int]]:
    """Classes (binary: [other, positive]), y and y_hat as class indices, and the classes to evaluate."""
    preds = ctx.predictions
    y = ctx.data.y
    if ctx.model.task == "binary":
        pos = ctx.positive_label
        other = next((c for c in preds.classes if str(c) != str(pos)), f"not {pos}")
        yt = ctx.y_true_bin()
        return [str(other), str(pos)], yt, preds.y_pred_bin, [1]
    classes = [str(c) for c in preds.classes]
    lookup = {c: i for i, c in enumerate(classes)}
    yhat = pd.Series(preds.y_pred).astype(str).map(lookup).to_numpy().astype(int)
    yt = None
    if y is not None:
        mapped = y.astype(str).map(lookup)
        if mapped.isna().any():
            unknown = sorted(set(y.astype(str)) - set(lookup))[:3]
            raise ValueError(f"label values {unknown} are not model classes {classes}")
        yt = mapped.to_numpy().astype(int)
    return classes, yt, yhat, list(range(len(classes)))


def _reference(name: str, groups: list[str], n: np.ndarray, eligible: np.ndarray, cfg: FairnessConfig,
               res: CheckResult) -> tuple[int, str]:
    wanted = cfg.reference_groups.get(name)
    largest = int(np.argmax(np.where(eligible, n, -1))) if eligible.any() else int(np.argmax(n))
    if wanted is None:
        return largest, "largest group"
    if wanted in groups and eligible[groups.index(wanted)]:
        return groups.index(wanted), "policy"
    why = "is below the minimum group size" if wanted in groups else "does not occur in the data"
    res.findings.append(Finding.make(
        NAME, f"Reference group for '{name}' not usable", status=Status.warn, severity=Severity.low,
        metric=f"fairness.{name}.reference_group", group=wanted, references=[R_BIAS],
        detail=f"The policy names '{wanted}' as the reference group for '{name}', but it {why}; the largest group "
               f"'{groups[largest]}' is used instead.", data={"groups": groups}))
    return largest, "largest group (policy reference unusable)"


def _joined(labels: pd.DataFrame) -> pd.Series:
    """Intersection labels 'a*b' (vectorised; row-wise joins are slow on large frames)."""
    out = labels.iloc[:, 0].astype(str)
    for c in labels.columns[1:]:
        out = out.str.cat(labels[c].astype(str), sep=fm.JOIN)
    return out


def _train_table(ctx: AuditContext, attrs: tuple[str, ...], bins: dict, classes: list[str]) -> pd.DataFrame:
    """Training rows counted by group (rows) and label class (columns)."""
    train = ctx.data.train
    key = _joined(pd.DataFrame({a: fm.group_labels(train[a], bins.get(a)) for a in attrs}))
    y = train[ctx.data.label].astype(str)
    if ctx.model.task == "binary":
        y = pd.Series(np.where(y == str(ctx.positive_label), classes[1], classes[0]), index=y.index)
    (kc, kn), (yc, yn) = pd.factorize(key, sort=True), pd.factorize(y, sort=True)  # pd.crosstab, ten times faster
    counts = np.bincount(kc * len(yn) + yc, minlength=len(kn) * len(yn)).reshape(len(kn), len(yn))
    return pd.DataFrame(counts, index=kn, columns=yn)


def _training_direction(ctx: AuditContext, an: Analysis, bins: dict[str, list[float] | None],
                        classes: list[str]) -> tuple[np.ndarray, str]:
    """y_at from training labels when the training split has the attribute and label, else audited labels."""
    train, label = ctx.data.train, ctx.data.label
    if train is not None and label in train.columns and all(a in train.columns for a in an.attrs):
        tab = _train_table(ctx, an.attrs, bins, classes).reindex(index=an.groups, columns=classes)
        return amp.training_direction(tab.fillna(0).to_numpy()), "training labels"
    C = an.table.marginal(an.table.counts, an.attrs)[an.keep]
    return amp.training_direction(C.sum(axis=-1)), "audited labels (no training split with this attribute)"


# --- point estimates -----------------------------------------------------------------------------

def _evaluate(an: Analysis, C: np.ndarray, classes: list[str], positions: list[int], labelled: bool,
              cfg: FairnessConfig) -> dict[tuple[str, str], np.ndarray]:
    out: dict[tuple[str, str], np.ndarray] = {}
    per_class = []
    for pos in positions:
        st = fm.classification_stats(C, pos, an.eligible, an.ref, labelled)
        out.update({(classes[pos], k): v for k, v in st.items()})
        per_class.append(st)
    for k in per_class[0]:
        if k.endswith("_difference"):
            out[("*", k)] = np.fmax.reduce(np.stack([s[k] for s in per_class]), axis=0)
        elif k.endswith("_ratio"):
            out[("*", k)] = np.fmin.reduce(np.stack([s[k] for s in per_class]), axis=0)
    if labelled and cfg.amplification.enabled:
        if an.direction is not None:
            out[("*", "biasamp")] = amp.biasamp_attribute_to_task(C, an.direction, an.eligible)
        out.update({("*", k): v for k, v in amp.df_amplification(C, an.eligible, cfg.amplification.concentration).items()})
    return out


# --- findings -----------------------------------------------------------------------------------

def _f(x: Any, digits: int = 3) -> str:
    return "undefined" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _num(x: Any) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def _verdict_text(status: str, significant: bool | None, interval: tuple[float, float] | None, scale: str,
                  threshold: float) -> str:
    side = f"below {threshold:g}" if scale == "ratio" else f"above {threshold:g}"
    if status == "fail":
        return f"a disparity is established and the whole interval is {side}"
    if status == "warn":
        return (f"flag: a disparity is established, but the interval straddles {threshold:g}, so these data cannot "
                "settle whether it crosses the threshold")
    if significant:
        return f"a disparity is established, but the whole interval is within {threshold:g}"
    reaches = interval is not None and (interval[0] < threshold if scale == "ratio" else interval[1] > threshold)
    return ("no disparity is established" + (f"; the interval still reaches {side}, so these data cannot rule out a "
                                              "disparity of that size" if reaches else ""))


def _driving_rate(obs: dict, cls: str, crit: str, eligible: np.ndarray) -> str:
    """The per-group rate behind a criterion (equalized odds: whichever of TPR/FPR differs more)."""
    names = fm.PARITY[crit]
    if len(names) == 1:
        return names[0]
    spreads = [float(fm.between_groups(obs[(cls, f"group.{r}")], eligible)[0]) for r in names]
    return names[int(np.nanargmax(spreads))] if np.isfinite(spreads).any() else names[0]


def _references(an: Analysis, cfg: FairnessConfig, *base: str) -> list[str]:
    special = any(cfg.is_special_category(a) for a in an.attrs)
    return [*base, *([R_SPECIAL] if special else [])]


def _disparity_finding(an: Analysis, crit: str, scale: str, value: float, tested: fi_check.Tested,
                       family: fi_check.Family, obs: dict, cls: str, multiclass: bool, cfg: FairnessConfig,
                       chart: str | None, extra: dict | None = None) -> Finding:
    title, what = CRITERIA_TEXT[crit]
    key = f"fairness.{an.name}.{crit}_{scale}"
    threshold = cfg.ratio_threshold if scale == "ratio" else cfg.difference_threshold
    hib = scale == "ratio"
    suffix = f" (class {cls})" if multiclass else ""
    refs = _references(an, cfg, R_BIAS, R_MEASURES, R_GROUPS)
    if not np.isfinite(value):
        return Finding.make(NAME, f"{title} {scale} ({an.name})", status=Status.warn, severity=Severity.low,
                            metric=key, threshold=threshold, references=refs,
                            detail=f"{title} cannot be computed for '{an.name}': the {what} is undefined for the "
                                   "compared groups (e.g. no positive labels or no positive predictions).")
    ci = tested.interval if all(np.isfinite(tested.interval)) else None
    status = fi_check.verdict(ci, threshold, hib, tested.significant)
    rate_name = _driving_rate(obs, cls, crit, an.eligible)
    rate = obs[(cls, f"group.{rate_name}")]
    den_name = fm.DENOMINATOR[rate_name]
    den = obs[(cls, f"group.{den_name}")]
    el = np.flatnonzero(an.eligible & np.isfinite(rate))
    lo_g, hi_g = (el[np.argmin(rate[el])], el[np.argmax(rate[el])]) if el.size else (an.ref, an.ref)
    thin = [an.groups[i] for i in (lo_g, hi_g) if den[i] < cfg.min_rate_denominator]
    ci_txt = f", interval {_f(ci[0])}–{_f(ci[1])}" if ci else ""
    detail = (f"{title} {scale} for '{an.name}'{suffix}: {_f(value)}{ci_txt} ({'min/max' if hib else 'max − min'} of "
              f"{what} across {el.size} groups, Fairlearn between_groups); "
              f"{_verdict_text(status, tested.significant, ci, scale, threshold)}. "
              f"Lowest {rate_name}: {an.groups[lo_g]} {_f(rate[lo_g])} ({den_name}={int(den[lo_g]):,}); highest: "
              f"{an.groups[hi_g]} {_f(rate[hi_g])} ({den_name}={int(den[hi_g]):,}). "
              f"{fi_check.describe(tested, family)} Interval method: {tested.method}.")
    if thin:
        detail += (f" The extreme rate(s) of {', '.join(thin)} rest on fewer than {cfg.min_rate_denominator} "
                   f"{den_name}, so the estimate is fragile" + ("; reported as a flag, not a failure." if
                                                                status == "fail" else "."))
        status = "warn" if status == "fail" else status
    if crit == "demographic_parity" and scale == "ratio":
        outside = [r for r in (extra or {}).get("versus_reference", []) if r["ratio_status"] != "pass" and r["significant"]]
        if outside:
            detail += (f" Against the reference group {an.groups[an.ref]} ({an.ref_rule}), "
                       f"{len(outside)} group(s) differ significantly and are outside or straddle the band "
                       f"[{cfg.ratio_threshold:g}, {1 / cfg.ratio_threshold:g}]: " + ", ".join(
                           f"{r['group']} {_f(r['ratio'])} (CI {_f(r['ratio_ci_low'])}–{_f(r['ratio_ci_high'])})"
                           for r in outside[:5]) + ".")
        detail += " " + FOUR_FIFTHS_NOTE
    return Finding.make(
        NAME, f"{title} {scale} ({an.name}){suffix}", status=status,
        severity=Severity.info if status == "pass" else cfg.severity, metric=key, value=value, threshold=threshold,
        ci=ci, references=refs, evidence=[chart] if chart else [], detail=detail,
        data={"scale": scale, "method": "between_groups", "signed": False, "higher_is_better": hib,
              "rate": rate_name, "reference_group": an.groups[an.ref], "lowest_group": an.groups[lo_g],
              "highest_group": an.groups[hi_g], "groups_compared": int(el.size), "thin_denominators": thin,
              "confidence": cfg.confidence, **tested.data(family), **({"class": cls} if multiclass else {}),
              **(extra or {})})


def _amplification_findings(an: Analysis, obs: dict, tested: dict, family: fi_check.Family, cfg: FairnessConfig,
                            train_eps: float | None, learns: bool) -> list[Finding]:
    ba, dfa = obs.get(("*", "biasamp")), obs.get(("*", "df_amplification"))
    if ba is None and dfa is None:
        return []
    eps_l, eps_p = obs[("*", "df_epsilon_labels")], obs[("*", "df_epsilon_predictions")]
    parent = tested.get(("*", "demographic_parity_difference"))
    disparity = bool(parent and parent.significant)
    both = (f"Both scales: BiasAmp→ {_f(ba, 4)} (additive, probability points; Wang & Russakovsky 2021, direction from "
            f"{an.direction_source}) and DF amplification {_f(dfa)} (log-ratio; Foulds et al., ε labels {_f(eps_l)} → "
            f"ε predictions {_f(eps_p)}).")
    if ba is not None and dfa is not None and np.isfinite(ba) and np.isfinite(dfa) and np.sign(ba) != np.sign(dfa):
        both += (" They disagree in sign: the absolute gaps between groups moved one way while the ratios between "
                 "group rates moved the other (typical when overall positive rates change); read both before "
                 "concluding.")
    if train_eps is not None:
        both += f" For context, ε of the training labels is {_f(train_eps)}."
    if not disparity:
        both += (" The predictions show no established selection-rate disparity for this attribute, so no "
                 "amplification is claimed whatever the measures say (BiasAmp→ also moves when only the overall "
                 "positive rate changes).")
    refs = _references(an, cfg, R_BIAS, R_MEASURES) + ([R_FEEDBACK] if learns else [])
    out = []
    for metric, value, thr, scale, title in (
            ("biasamp", ba, cfg.amplification.biasamp_threshold, "additive", "BiasAmp→ (attribute→task)"),
            ("df_amplification", dfa, cfg.amplification.df_threshold, "log_ratio", "DF bias amplification")):
        if value is None or ("*", metric) not in tested:
            continue
        t = tested[("*", metric)]
        ci_t = None if np.isnan(t.interval).any() else t.interval
        amplifies = bool(t.significant and ci_t and ci_t[0] > 0)
        status = (fi_check.verdict(ci_t, thr, False, amplifies and disparity) if np.isfinite(value) else "warn")
        bounded = ci_t is not None and all(np.isfinite(ci_t))
        out.append(Finding.make(
            NAME, f"{title} ({an.name})", status=status,
            severity=Severity.info if status == "pass" else cfg.amplification_severity,
            metric=f"bias_amplification.{an.name}.{metric}", value=_num(value), threshold=thr,
            ci=ci_t if bounded else None, references=refs,
            detail=f"{title} from labels to predictions for '{an.name}': {_f(value, 4)}"
                   + ((f" (interval {_f(ci_t[0], 4)}–{_f(ci_t[1], 4)})" if bounded else
                       f" (interval from {_f(ci_t[0], 4)}, unbounded above: a group has no predictions of an "
                       "outcome, so its true rate may be arbitrarily small)") if ci_t else "")
                   + f"; positive means the model widens the bias in the labels; flagged above {thr} "
                     f"({_verdict_text(status, amplifies and disparity, ci_t, 'difference', thr)}). "
                   + f"{fi_check.describe(t, family)} Interval method: {t.method}. " + both,
            data={"scale": scale, "direction": "attribute->task" if metric == "biasamp" else "labels->predictions",
                  "baseline": an.direction_source if metric == "biasamp" else "audited labels (AIF360 definition)",
                  "groups": int(an.eligible.sum()), "prediction_disparity_established": disparity,
                  "interval": [_num(v) for v in ci_t] if ci_t else None,
                  **t.data(family)}))
    return out


def _small_group_findings(an: Analysis, cfg: FairnessConfig) -> list[Finding]:
    small = [i for i in range(len(an.groups)) if not an.eligible[i]]
    out = [Finding.make(
        NAME, f"Insufficient data: {an.name} = {an.groups[i]}", status=Status.warn, severity=Severity.low,
        metric=f"fairness.{an.name}.group_size", group=an.groups[i], threshold=float(cfg.min_group_size),
        references=[R_BIAS, R_GROUPS],
        detail=f"Group '{an.groups[i]}' of '{an.name}' has fewer than {cfg.min_group_size} audited rows, so no "
               "metric is reported for it and it is left out of every disparity; collect more data to assess it.",
        data={"insufficient_data": True}) for i in small[:MAX_SMALL_GROUP_FINDINGS]]
    if len(small) > MAX_SMALL_GROUP_FINDINGS:
        out.append(Finding.make(
            NAME, f"Insufficient data: {len(small) - MAX_SMALL_GROUP_FINDINGS} more groups of {an.name}",
            status=Status.warn, severity=Severity.low, metric=f"fairness.{an.name}.group_size", group="(more)",
            references=[R_BIAS, R_GROUPS], detail=f"{len(small)} groups of '{an.name}' are below {cfg.min_group_size} rows.",
            data={"insufficient_data": True, "groups": [an.groups[i] for i in small]}))
    if an.eligible.sum() < 2:
        out.append(Finding.make(
            NAME, f"Too few comparable groups for '{an.name}'", status=Status.warn, severity=Severity.medium,
            metric=f"fairness.{an.name}.groups", value=float(an.eligible.sum()), threshold=2.0,
            references=[R_BIAS, R_GROUPS],
            detail=f"Only {int(an.eligible.sum())} group(s) of '{an.name}' reach {cfg.min_group_size} rows; no disparity "
                   "can be measured."))
    return out


# --- classification --------------------------------------------------------------------------

@dataclass
class Measured:
    """Point estimates, intervals and the family of verdicts for every analysis of a classification model."""

    classes: list[str]
    positions: list[int]
    labelled: bool
    family: fi_check.Family
    results: list[tuple[Analysis, dict, dict, dict]]  # (analysis, observed, intervals, tested statistics)


def _verdict_keys(an: Analysis, cfg: FairnessConfig, labelled: bool, stats: dict) -> list[tuple[str, str]]:
    """The statistics of one analysis that can raise a warn or fail (its members of the family)."""
    if an.eligible.sum() < 2:
        return []
    keys = [("*", f"{crit}_{scale}") for crit in fm.PARITY if crit == "demographic_parity" or labelled
            for scale in cfg.criteria.get(crit, [])]
    if labelled and cfg.amplification.enabled:
        keys += [("*", "demographic_parity_difference"), ("*", "biasamp"), ("*", "df_amplification")]
    return [k for k in dict.fromkeys(keys) if k in stats]


def measure_classification(ctx: AuditContext, cfg: FairnessConfig, labels: dict[str, pd.Series], wanted, bins,
                           res: CheckResult) -> Measured:
    """Count table(s) and every statistic with its interval and family-wise test (no evidence written)."""
    classes, y, yhat, positions = _class_indices(ctx)
    labelled = y is not None
    lab = pd.DataFrame(labels)
    cells = int(np.prod([lab[c].nunique() for c in lab.columns])) * len(classes) ** 2
    attr_sets = [tuple(lab.columns)] if cells <= MAX_TABLE_CELLS else sorted(set(wanted), key=wanted.index)
    y_idx = y if labelled else np.zeros(len(yhat), dtype=int)
    measured = []
    for attrs in attr_sets:
        if ctx.population is not None:  # streamed: counts over every row, not the sample
            table = ctx.population.partial.groups.restrict(attrs, classes)
        else:
            table = fm.count_table(lab[list(attrs)], y_idx, yhat, classes)
        for combo in wanted:
            if not set(combo) <= set(attrs) or (len(attr_sets) > 1 and combo != attrs):
                continue
            name = fm.JOIN.join(combo)
            groups, keep = table.groups(combo)
            C = table.marginal(table.counts, combo)[keep]
            n = C.sum(axis=(-2, -1))
            eligible = n >= cfg.min_group_size
            ref, rule = _reference(name, groups, n, eligible, cfg, res)
            an = Analysis(name, combo, table, groups, keep, n, eligible, ref, rule)
            if labelled and cfg.amplification.enabled:
                an.direction, an.direction_source = _training_direction(ctx, an, bins, classes)
            obs = _evaluate(an, C, classes, positions, labelled, cfg)
            ci, stats = fi_check.analysis_intervals(an, C, classes, positions, labelled, cfg, obs)
            measured.append((an, obs, ci, stats))
    ctx.progress(f"fairness: intervals and family-wise tests over {len(measured)} attribute set(s)")
    family, tested = fi_check.settle(
        {(an.name, k): s for an, _, _, stats in measured for k, s in stats.items()},
        [(an.name, k) for an, _, _, stats in measured for k in _verdict_keys(an, cfg, labelled, stats)],
        cfg.confidence, cfg.correction, [an.name for an, *_ in measured])
    results = []
    for an, obs, ci, stats in measured:
        mine = {k: tested[(an.name, k)] for k in stats}
        ci.update({k: t.interval for k, t in mine.items()})
        results.append((an, obs, ci, mine))
    return Measured(classes, positions, labelled, family, results)


def _classification(ctx: AuditContext, cfg: FairnessConfig, labels: dict[str, pd.Series], wanted, bins,
                    res: CheckResult) -> tuple[list[dict], fi_check.Family]:
    m = measure_classification(ctx, cfg, labels, wanted, bins, res)
    card = getattr(ctx.card, "card", None)
    learns = bool(card is not None and card.continues_learning)
    return [_report_classification(ctx, an, obs, ci, tested, m, cfg, res, bins, learns)
            for an, obs, ci, tested in m.results], m.family


def _report_classification(ctx, an: Analysis, obs, ci, tested, m: Measured, cfg, res, bins, learns: bool) -> dict:
    classes, positions, labelled = m.classes, m.positions, m.labelled
    multiclass = len(positions) > 1
    nan = (float("nan"), float("nan"))
    chart = evidence.chart_classification(ctx, an, obs, ci, classes, positions, labelled, cfg)
    res.findings.extend(_small_group_findings(an, cfg))
    comparable = an.eligible.sum() >= 2
    rows = evidence.group_rows(an, obs, ci, classes, positions, cfg)
    ref_rows = evidence.reference_rows(an, obs, ci, classes, positions, cfg)
    for pos in positions:
        cls = classes[pos]
        prefix = f"fairness.{an.name}" + (f".class.{cls}" if multiclass else "")
        for i, g in enumerate(an.groups):
            if an.eligible[i]:
                _put(res, f"{prefix}.selection_rate.{g}", obs[(cls, "group.selection_rate")][i],
                     ci[(cls, "group.selection_rate")], i)
        if multiclass and comparable:
            for crit in fm.PARITY:
                for scale in ("difference", "ratio"):
                    k = f"{crit}_{scale}"
                    _put(res, f"{prefix}.{k}", obs[(cls, k)], ci.get((cls, k), nan))
    disparities = []
    if comparable:
        for crit in fm.PARITY:
            if crit != "demographic_parity" and not labelled:
                continue
            for scale in ("difference", "ratio"):
                k = f"{crit}_{scale}"
                t = tested[("*", k)]
                _put(res, f"fairness.{an.name}.{k}", obs[("*", k)], t.interval)
                value = float(obs[("*", k)])
                worst_cls = None
                if multiclass:
                    per = [float(obs[(classes[p], k)]) for p in positions]
                    pick = np.nanargmax if scale == "difference" else np.nanargmin
                    worst_cls = classes[positions[int(pick(per))]] if np.isfinite(per).any() else None
                if scale in cfg.criteria.get(crit, []):
                    cls = worst_cls or classes[positions[0]]
                    band = [{k: r[k] for k in ("group", "ratio", "ratio_ci_low", "ratio_ci_high", "ratio_status",
                                               "significant")}
                            for r in ref_rows if r["rate"] == "selection_rate" and r.get("class", cls) == cls]
                    extra = {"versus_reference": band} if crit == "demographic_parity" and scale == "ratio" else None
                    res.findings.append(_disparity_finding(an, crit, scale, value, t, m.family, obs, cls, multiclass,
                                                           cfg, chart, extra))
                disparities.append({"metric": k, "value": _num(value), "ci_low": _num(t.interval[0]),
                                    "ci_high": _num(t.interval[1]), "scale": scale, "method": "between_groups",
                                    "signed": False, "ci_method": t.method, "ci_coverage": t.coverage,
                                    "ci_simultaneous_over_family": t.simultaneous, "p_value": t.p_value,
                                    "p_adjusted": t.p_adjusted, "significant": t.significant,
                                    "threshold": cfg.ratio_threshold if scale == "ratio" else cfg.difference_threshold,
                                    **({"class": worst_cls} if multiclass else {})})
    train_eps = _train_epsilon(ctx, an, bins, classes, cfg) if labelled and comparable else None
    if comparable and cfg.amplification.enabled and labelled:
        for k in ("biasamp", "df_amplification", "df_epsilon_labels", "df_epsilon_predictions"):
            if ("*", k) in obs:
                _put(res, f"bias_amplification.{an.name}.{k}", obs[("*", k)], ci.get(("*", k), nan))
        if train_eps is not None:
            res.metrics[f"bias_amplification.{an.name}.df_epsilon_train_labels"] = train_eps
        res.findings.extend(_amplification_findings(an, obs, tested, m.family, cfg, train_eps, learns))
    return {"attribute": an.name, "attributes": list(an.attrs), "kind": "intersection" if len(an.attrs) > 1 else "single",
            "reference_group": an.groups[an.ref], "reference_rule": an.ref_rule, "groups": rows,
            "versus_reference": ref_rows,
            "disparities": disparities, "chart": chart,
            "amplification": {k: _num(obs[("*", k)]) for k in ("biasamp", "df_amplification", "df_epsilon_labels",
                                                               "df_epsilon_predictions") if ("*", k) in obs}
            | ({"df_epsilon_train_labels": train_eps, "biasamp_direction_from": an.direction_source}
               if comparable and labelled else {}),
            "special_category": [a for a in an.attrs if cfg.is_special_category(a)],
            "small_groups": [g for g, e in zip(an.groups, an.eligible) if not e]}


def _train_epsilon(ctx, an: Analysis, bins, classes, cfg) -> float | None:
    train, label = ctx.data.train, ctx.data.label
    if train is None or label not in train.columns or not all(a in train.columns for a in an.attrs):
        return None
    tab = _train_table(ctx, an.attrs, bins, classes).reindex(columns=classes).fillna(0)
    tab = tab[tab.sum(axis=1) >= cfg.min_group_size]
    if len(tab) < 2:
        return None
    return _num(amp.df_epsilon(tab.to_numpy(), np.ones(len(tab), bool), cfg.amplification.concentration))


def _put(res: CheckResult, key: str, value: Any, ci: Any = None, i: int | None = None) -> None:
    res.metrics[key] = _num(value)
    if ci is not None:
        lo, hi = (ci[0][i], ci[1][i]) if i is not None else ci
        res.metrics[f"{key}.ci_low"], res.metrics[f"{key}.ci_high"] = _num(lo), _num(hi)


# --- regression --------------------------------------------------------------------------------

def _regression(ctx: AuditContext, cfg: FairnessConfig, labels: dict[str, pd.Series], wanted,
                res: CheckResult) -> tuple[list[dict], fi_check.Family]:
    pred = np.asarray(ctx.predictions.y_pred, dtype=float)
    y = ctx.data.y.to_numpy(dtype=float) if ctx.data.y is not None else None
    lab = pd.DataFrame(labels)
    thr = cfg.regression_difference_threshold
    items, stats, verdicts = [], {}, []
    for combo in wanted:
        key = _joined(lab[list(combo)])
        cat = pd.Categorical(key)
        groups, codes = [str(c) for c in cat.categories], cat.codes.astype(np.int64)
        S = fm.regression_sums(codes, len(groups), pred, y)
        n = S[:, 0]
        eligible = n >= cfg.min_group_size
        name = fm.JOIN.join(combo)
        ref, rule = _reference(name, groups, n, eligible, cfg, res)
        an = Analysis(name, combo, None, groups, np.arange(len(groups)), n, eligible, ref, rule)
        items.append((an, S))
        for column, metric in ((1, "mean_prediction"), (2, "mae")):
            if column == 2 and y is None:
                continue
            for scale, st in fi.mean_statistics(S, eligible, column).items():
                stats[(name, f"{metric}_{scale}")] = st
        if thr is not None and eligible.sum() >= 2:
            verdicts.append((name, "mean_prediction_difference"))
    family, tested = fi_check.settle(stats, verdicts, cfg.confidence, cfg.correction, [an.name for an, _ in items])
    nan = (float("nan"), float("nan"))
    reports = []
    for an, S in items:
        obs = fm.regression_stats(S, an.eligible, an.ref)
        ci = {f"group.{m}": fi.mean_intervals(S, c, cfg.confidence) for c, m in ((1, "mean_prediction"), (2, "mae"))}
        mine = {k: t for (a, k), t in tested.items() if a == an.name}
        ci.update({k: t.interval for k, t in mine.items()})
        res.findings.extend(_small_group_findings(an, cfg))
        chart = evidence.chart_regression(ctx, an, obs, ci, cfg)
        for i, g in enumerate(an.groups):
            if an.eligible[i]:
                _put(res, f"fairness.{an.name}.mean_prediction.{g}", obs["group.mean_prediction"][i],
                     ci["group.mean_prediction"], i)
                if y is not None:
                    _put(res, f"fairness.{an.name}.mae.{g}", obs["group.mae"][i], ci["group.mae"], i)
        disparities = []
        if an.eligible.sum() >= 2:
            for k in ("mean_prediction_difference", "mean_prediction_ratio", "mae_difference", "mae_ratio"):
                if k.startswith("mae") and y is None:
                    continue
                t = mine.get(k)
                lo_hi = t.interval if t else nan
                _put(res, f"fairness.{an.name}.{k}", obs[k], lo_hi)
                disparities.append({"metric": k, "value": _num(obs[k]), "ci_low": _num(lo_hi[0]),
                                    "ci_high": _num(lo_hi[1]), "method": "between_groups",
                                    "scale": k.rsplit("_", 1)[1], "ci_method": t.method if t else None,
                                    "p_value": t.p_value if t else None, "p_adjusted": t.p_adjusted if t else None})
            res.findings.append(_regression_finding(an, obs, mine["mean_prediction_difference"], family, cfg, chart))
        rows = evidence.regression_rows(an, obs, ci, cfg)
        reports.append({"attribute": an.name, "attributes": list(an.attrs),
                        "kind": "intersection" if len(an.attrs) > 1 else "single",
                        "reference_group": an.groups[an.ref], "reference_rule": an.ref_rule, "groups": rows,
                        "disparities": disparities, "chart": chart,
                        "small_groups": [g for g, e in zip(an.groups, an.eligible) if not e]})
    return reports, family


def _regression_finding(an: Analysis, obs, t: fi_check.Tested, family: fi_check.Family, cfg: FairnessConfig,
                        chart: str | None) -> Finding:
    k = "mean_prediction_difference"
    value = float(obs[k])
    interval = t.interval if all(np.isfinite(t.interval)) else None
    thr = cfg.regression_difference_threshold
    status = "pass" if thr is None else fi_check.verdict(interval, thr, False, t.significant)
    mae = f" MAE ratio (min/max) {_f(float(obs['mae_ratio']))}." if np.isfinite(obs["mae_ratio"]) else ""
    return Finding.make(
        NAME, f"Mean prediction difference ({an.name})", status=status,
        severity=Severity.info if status == "pass" else cfg.severity, metric=f"fairness.{an.name}.{k}", value=value,
        threshold=thr, ci=interval, references=_references(an, cfg, R_BIAS, R_MEASURES, R_GROUPS),
        evidence=[chart] if chart else [],
        detail=f"Mean prediction differs by {_f(value)} (max − min across groups of '{an.name}'"
               + (f", interval {_f(interval[0])}–{_f(interval[1])}" if interval else "") + ")."
               + mae + (" No threshold is declared for regression outputs (units of the target), so no verdict is "
                        f"made; p = {t.p_value:.3g} for equal means." if thr is None
                        else f" {_verdict_text(status, t.significant, interval, 'difference', thr).capitalize()}. "
                             + fi_check.describe(t, family))
               + f" Interval method: {t.method}.",
        data={"scale": "difference", "method": "between_groups", "units": "target", **t.data(family)})


# --- proxies --------------------------------------------------------------------------------

def _proxies(ctx: AuditContext, cfg: FairnessConfig, labels: dict[str, pd.Series], res: CheckResult) -> list[dict]:
    features = [f for f in ctx.model.feature_names if f not in ctx.data.protected and f != ctx.data.label]
    frame = ctx.data.frame
    idx = np.arange(len(frame))
    if len(idx) > cfg.proxies.max_rows:
        idx = np.sort(ctx.rng("fairness.proxies.sample").choice(idx, cfg.proxies.max_rows, replace=False))
    rows, strong = [], []
    ctx.progress(f"fairness: proxy screening of {len(features)} features against {len(labels)} attribute(s)")
    for attr, lab in labels.items():
        groups = lab.to_numpy()[idx]
        sizes = lab.value_counts()
        eligible = [g for g, n in sizes.items() if n >= cfg.min_group_size]
        found = proxy_strengths(frame[features].iloc[idx], groups, eligible, seed=ctx.seed, n_bins=cfg.proxies.n_bins)
        for feat in features:
            s = found[feat]
            row = {"feature": feat, "attribute": attr, "auc": _num(s["auc"]), "group": s["group"],
                   "nmi": _num(s["nmi"]), "strong": bool(np.isfinite(s["auc"]) and s["auc"] >= cfg.proxies.auc_threshold)}
            rows.append(row)
            if row["strong"]:
                strong.append({"feature": feat, "attribute": attr, "score": row["auc"], "method": "single_feature_auc",
                               "group": s["group"], "nmi": row["nmi"]})
    for p in strong:
        res.findings.append(Finding.make(
            NAME, f"'{p['feature']}' is a proxy for '{p['attribute']}'", status=Status.warn,
            severity=cfg.proxy_severity, metric=f"fairness.proxy.{p['attribute']}.{p['feature']}",
            group=p["group"], value=p["score"], threshold=cfg.proxies.auc_threshold, references=[R_BIAS, R_MEASURES],
            detail=f"On its own, '{p['feature']}' identifies membership of '{p['group']}' in '{p['attribute']}' with "
                   f"ROC AUC {_f(p['score'])} (cross-fitted target encoding; normalised mutual information "
                   f"{_f(p['nmi'])}). Removing the protected attribute from the inputs does not remove this "
                   "information; review the feature's role (the explanations check receives this list).",
            data={"method": "single_feature_auc", "nmi": p["nmi"], "rows": int(len(idx))}))
    for attr in labels:
        if not any(p["attribute"] == attr for p in strong):
            best = max((r for r in rows if r["attribute"] == attr and r["auc"] is not None), key=lambda r: r["auc"],
                       default=None)
            res.findings.append(Finding.make(
                NAME, f"No strong proxy for '{attr}'", status=Status.passed, severity=Severity.info,
                metric=f"fairness.proxy.{attr}", value=best["auc"] if best else None,
                threshold=cfg.proxies.auc_threshold, references=[R_BIAS],
                detail=f"No single model input reaches AUC {cfg.proxies.auc_threshold} for '{attr}'"
                       + (f"; the strongest is '{best['feature']}' ({_f(best['auc'])})." if best else ".")))
    ctx.shared["proxies"] = [{k: p[k] for k in ("feature", "attribute", "score", "method")} for p in strong]
    return rows


# --- entry point ----------------------------------------------------------------------------

def prepare_inputs(ctx: AuditContext, cfg: FairnessConfig, res: CheckResult):
    """Group labels per usable attribute, their metadata and bins, and the analyses to run."""
    labels, info = _attribute_labels(ctx, cfg, res)
    bins = {a: i["binned_at"] for a, i in info.items()}
    return labels, info, bins, _analyses_wanted(ctx, cfg, list(labels), res)


def _special_category_findings(cfg: FairnessConfig, labels: dict[str, pd.Series]) -> list[Finding]:
    return [Finding.make(
        NAME, f"Special-category data processed for bias detection: {a}", status=Status.passed, severity=Severity.info,
        metric=f"fairness.{a}.special_category", references=[R_SPECIAL],
        detail=f"'{a}' is a special category of personal data (GDPR Art. 9(1)); the audit processes it only to detect "
               "bias. Art. 10(5) allows this strictly for bias detection and correction, under the safeguards of its "
               "points (a)-(f), which a person must record (they are manual obligations in the obligations matrix).",
        data={"attribute": a, "policy_list": "fairness.special_categories"})
        for a in labels if cfg.is_special_category(a)]


def run(ctx: AuditContext, cfg: FairnessConfig) -> CheckResult:
    res = CheckResult()
    labels, info, bins, wanted = prepare_inputs(ctx, cfg, res)
    res.findings.extend(_special_category_findings(cfg, labels))
    reports: list[dict] = []
    family = None
    if wanted:
        if ctx.model.task == "regression":
            reports, family = _regression(ctx, cfg, labels, wanted, res)
        else:
            reports, family = _classification(ctx, cfg, labels, wanted, bins, res)
    if ctx.data.label is None:
        res.findings.append(Finding.make(
            NAME, "No labels: only selection-rate parity measured", status=Status.warn, severity=Severity.low,
            metric="fairness.labels", references=[R_BIAS],
            detail="The dataset has no label column, so error-rate parity (equalized odds, equal opportunity, "
                   "predictive parity) and bias amplification cannot be measured."))
    ctx.shared["proxies"] = []
    proxy_rows = _proxies(ctx, cfg, labels, res) if cfg.proxies.enabled and labels else []
    tables = evidence.write_tables(ctx, reports, cfg) if reports else {}
    res.details = {
        "task": ctx.model.task, "rows": ctx.population.rows if ctx.population is not None else len(ctx.data.frame),
        "labelled": ctx.data.label is not None, "positive_label": ctx.positive_label, "attributes_info": info,
        "settings": {"confidence": cfg.confidence, "min_group_size": cfg.min_group_size,
                     "ratio_threshold": cfg.ratio_threshold, "ratio_band": [cfg.ratio_threshold, 1 / cfg.ratio_threshold],
                     "difference_threshold": cfg.difference_threshold, "method": "between_groups (Fairlearn)",
                     "intervals": dict(fi.CI_METHODS), "correction": cfg.correction,
                     **(family.describe() if family else {}), "domain": ctx.domain},
        "analyses": reports, "proxies": proxy_rows, "tables": tables,
    }
    return res


CHECK = Check(name=NAME, run=run, config=FairnessConfig,
              references=REFERENCES, requires=frozenset({"tabular", "protected"}))
