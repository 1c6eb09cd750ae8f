"""Post-market monitoring: a window of production data against the signed-off baseline audit.

Run by `aiaudit monitor`, never by a plain audit (it needs a baseline: `AuditContext.baseline`). Measures data
drift per model input and jointly (a domain classifier), prediction drift, label drift and realised
performance when the window has labels, performance estimated from the scores when it has none (CBPE),
group selection rates (fairness drift) and the protected groups' shares (population shift). Every test of
the window is one Holm family, so a window drawn from the baseline's distribution raises any alarm at most
with probability `alpha`; a finding fails only when its test rejects after adjustment *and* its effect is at
least the policy's tolerance (significant but smaller changes warn). Estimated performance, which has no
test, fails when its whole prediction interval is below the tolerated level and warns when its estimate is.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from risk.catalogue import citations

from ..findings import Finding, Severity, Status
from ..metrics.data_quality import share
from ..metrics.drift import (CATEGORICAL_TEST, NUMERIC_TEST, BinnedCounts, homogeneity_p, js_distance, psi,
                             psi_interval, two_rate_p)
from ..metrics.estimation import expected_accuracy, expected_auc, realised_draws
from ..metrics.inference import RateDifferences, adjust, z_for
from ..metrics.intervals import PERCENTILE, bootstrap_interval
from ..metrics.membership import attack_auc, bootstrap_auc
from ..metrics.score_histogram import binned_auc, binned_auc_draws
from ..scale.window import WindowSummary, plan_for, summarise
from .base import AuditContext, Check, CheckConfig, CheckResult

NAME = "monitoring"
R = citations(NAME)
R_PMM, R_RISK, R_DEPLOYER = R["pmm"], R["risk"], R["deployer"]
REFERENCES = [R_PMM, R_RISK, R_DEPLOYER]
NEWCOMBE = "Newcombe hybrid score interval; Fisher's exact test"


class MonitoringConfig(CheckConfig):
    alpha: float = Field(0.05, gt=0, lt=0.5, description="Family-wise error rate over every test of one window (Holm).")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Coverage of every interval reported for a window.")
    bins: int = Field(10, ge=2, le=50, description="Baseline quantile bins of a numeric input for PSI.")
    n_boot: int = Field(500, ge=100, le=10_000, description="Bootstrap replicates of the PSI and AUC-change intervals.")
    n_sim: int = Field(1000, ge=200, le=20_000, description="Label sets drawn from the scores for estimated performance.")
    max_psi: float = Field(0.2, gt=0, description="PSI from which a significant shift of one input is a breach.")
    max_domain_auc: float = Field(0.6, gt=0.5, le=1, description="Baseline-vs-window classifier AUC from which the "
                                                                  "joint shift is a breach (0.5: indistinguishable).")
    max_rate_change: float = Field(0.1, gt=0, le=1, description="Change of a rate (positive predictions, labels, a "
                                                                "group's selection rate or TPR) that is a breach.")
    max_share_change: float = Field(0.1, gt=0, le=1, description="Change of a protected group's share that is a breach.")
    max_auc_drop: float = Field(0.05, gt=0, le=1, description="Drop of the AUC (realised or estimated) below the "
                                                               "baseline's that is a breach.")
    max_accuracy_drop: float = Field(0.05, gt=0, le=1, description="Drop of the accuracy below the baseline's that is "
                                                                    "a breach.")
    max_rows: int = Field(50_000, ge=1_000, description="Rows per side given to the domain classifier and simulation.")
    min_group_rows: int = Field(30, ge=5, description="Smallest group (in both samples) whose rates are compared.")
    severity: Severity = Field(Severity.high, description="Severity of a breach (gates at or above the pack's fail_on).")


@dataclass
class _Test:
    """One member of the window's test family, turned into a finding once the family is adjusted."""
    title: str
    metric: str
    p: float
    breach: bool  # the effect is at least the tolerance
    value: float | None
    ci: tuple[float, float] | None
    threshold: float | None
    detail: str
    group: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    references: list[str] = field(default_factory=lambda: [R_PMM, R_RISK])


def _capped(frame: pd.DataFrame, rng: np.random.Generator, cap: int) -> pd.DataFrame:
    return frame if len(frame) <= cap else frame.iloc[np.sort(rng.choice(len(frame), cap, replace=False))]


def _drift(counts: BinnedCounts, p: float, rng: np.random.Generator, cfg: MonitoringConfig) -> tuple[float, tuple]:
    return float(psi(counts.baseline, counts.window)[0]), psi_interval(counts, rng, cfg.n_boot, cfg.confidence, p)


def _feature_tests(ctx: AuditContext, cfg: MonitoringConfig, base: pd.DataFrame, window: WindowSummary,
                   rng: np.random.Generator) -> tuple[list[_Test], list[dict[str, Any]]]:
    tests, rows = [], []
    for f in ctx.model.meta.features:
        counts = window.binned(f.name)
        if f.kind == "numeric":
            _, p = window.ks(f.name)
            missing_p = two_rate_p(int(base[f.name].isna().sum()), len(base), window.missing(f.name), window.rows)
            p, test = min(1.0, 2 * min(p, missing_p)), NUMERIC_TEST
        else:
            p, test = homogeneity_p(counts.baseline, counts.window), CATEGORICAL_TEST
        value, ci = _drift(counts, p, rng, cfg)
        js = js_distance(counts.baseline, counts.window)
        rows.append({"feature": f.name, "psi": value, "psi_ci_low": ci[0], "psi_ci_high": ci[1], "js_distance": js,
                     "p_value": p, "test": test})
        tests.append(_Test(
            f"Drift of {f.name}", "monitoring.feature_psi", p, value >= cfg.max_psi, value, ci, cfg.max_psi,
            f"PSI {value:.3f} ({cfg.confidence:.0%} CI {ci[0]:.3f}–{ci[1]:.3f}; {cfg.max_psi} is the tolerance), "
            f"Jensen–Shannon distance {js:.3f}, {test} p = {p:.3g}.", group=f.name,
            data={"ci_method": "multinomial bootstrap of both samples' bin counts, bias-corrected lower limit",
                  "test": test, "js_distance": js, "bins": [{"bin": b, "baseline": int(x), "window": int(y)} for b, x, y
                                                             in zip(counts.labels, counts.baseline, counts.window)]}))
    return tests, rows


def _domain_test(ctx: AuditContext, cfg: MonitoringConfig, base: pd.DataFrame, win: pd.DataFrame,
                 rng: np.random.Generator) -> _Test | None:
    """Can a classifier tell window rows from baseline rows? Trained on one half, judged on the other, so the
    Mann-Whitney test of its held-out AUC is exact under no shift."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    names = [f.name for f in ctx.model.meta.features]
    b, w = _capped(base[names], rng, cfg.max_rows), _capped(win[names], rng, cfg.max_rows)
    if min(len(b), len(w)) < 20:
        return None
    X = pd.concat([b, w], ignore_index=True)
    for f in ctx.model.meta.features:
        if f.kind != "numeric":
            text = X[f.name].astype(str)
            X[f.name] = text.astype("category") if text.nunique() <= 250 else text.astype("category").cat.codes
    y = np.r_[np.zeros(len(b)), np.ones(len(w))]
    fit = np.zeros(len(y), bool)
    for label in (0, 1):
        idx = np.flatnonzero(y == label)
        fit[rng.permutation(idx)[: len(idx) // 2]] = True
    clf = HistGradientBoostingClassifier(max_iter=100, categorical_features="from_dtype", random_state=0)
    clf.fit(X[fit], y[fit])
    s = clf.predict_proba(X[~fit])[:, 1]
    held = y[~fit]
    member, non_member = s[held == 1], s[held == 0]
    from scipy.stats import mannwhitneyu
    auc = attack_auc(member, non_member)
    p = float(mannwhitneyu(member, non_member, alternative="greater").pvalue)
    ci = bootstrap_interval(auc, bootstrap_auc(member, non_member, rng, cfg.n_boot), cfg.confidence)
    return _Test("Joint drift of the model inputs (domain classifier)", "monitoring.domain_auc", p,
                 auc >= cfg.max_domain_auc, auc, ci, cfg.max_domain_auc,
                 f"A gradient-boosted classifier trained on half the rows tells window rows from baseline rows on the "
                 f"other half with AUC {auc:.3f} ({cfg.confidence:.0%} CI {ci[0]:.3f}–{ci[1]:.3f}; 0.5: no shift); "
                 f"one-sided Mann–Whitney p = {p:.3g}.",
                 data={"ci_method": f"{PERCENTILE}, stratified", "test": "one-sided Mann-Whitney on held-out rows",
                       "held_out": {"baseline": len(non_member), "window": len(member)}})


def _rate_test(title: str, metric: str, x1: int, n1: int, x0: int, n0: int, cfg: MonitoringConfig,
               group: str | None = None, what: str = "rate", references: list[str] | None = None) -> _Test:
    z = z_for(1 - cfg.confidence)
    lo, hi = RateDifferences(np.array([x1]), np.array([n1]), np.array([x0]), np.array([n0])).interval(z)
    d = x1 / n1 - x0 / n0
    p = two_rate_p(x1, n1, x0, n0)
    return _Test(title, metric, p, abs(d) >= cfg.max_rate_change, d, (float(lo[0]), float(hi[0])), cfg.max_rate_change,
                 f"{what.capitalize()} {x1 / n1:.1%} in the window ({x1:,} of {n1:,}) against {x0 / n0:.1%} at baseline "
                 f"({x0:,} of {n0:,}): change {d:+.1%} ({cfg.confidence:.0%} CI {lo[0]:+.1%} to {hi[0]:+.1%}), "
                 f"Fisher p = {p:.3g}.", group=group,
                 data={"ci_method": NEWCOMBE, "window": {"x": x1, "n": n1}, "baseline": {"x": x0, "n": n0}},
                 references=references or [R_PMM, R_RISK])


def _group_tests(ctx: AuditContext, cfg: MonitoringConfig, base: pd.DataFrame, window: WindowSummary,
                 pred_b: np.ndarray, yb: np.ndarray | None) -> list[_Test]:
    tests = []
    labelled = window.partial.labelled is not None
    for attribute in [a for a in ctx.data.protected if a in base and a in window.partial.groups]:
        gb = base[attribute].astype(str).to_numpy()
        wg = window.partial.groups[attribute]
        groups = sorted(set(gb) | set(wg.index))
        wg = wg.reindex(groups, fill_value=0)
        cb = np.array([(gb == g).sum() for g in groups])
        cw = wg["n"].to_numpy()
        p = homogeneity_p(cb, cw)
        k, n_w = len(groups), int(cw.sum())
        shares = [{"group": g, "baseline": int(x), "window": int(y), "baseline_share": x / len(gb),
                   "window_share": y / n_w, "window_share_ci": list(share(int(y), n_w, cfg.confidence, k).ci)}
                  for g, x, y in zip(groups, cb, cw)]
        change = max(shares, key=lambda r: abs(r["window_share"] - r["baseline_share"]))
        d = change["window_share"] - change["baseline_share"]
        tests.append(_Test(
            f"Population shift by {attribute}", f"monitoring.population_shift.{attribute}", p,
            abs(d) >= cfg.max_share_change, d, None, cfg.max_share_change,
            f"Group shares by {attribute}, window against baseline: " + ", ".join(
                f"{r['group']} {r['window_share']:.1%} (was {r['baseline_share']:.1%})" for r in shares)
            + f"; largest change {change['group']} {d:+.1%}; chi-square test of homogeneity p = {p:.3g}.",
            group=change["group"], references=[R_PMM, R_DEPLOYER, R["representativeness"]],
            data={"groups": shares, "test": "chi-square test of homogeneity",
                  "ci_method": f"Wilson, simultaneous over {k} groups"}))
        refs = [R_PMM, R_RISK, R["bias"]]
        for g in groups:
            mb, w = gb == g, wg.loc[g]
            if min(mb.sum(), w["n"]) < cfg.min_group_rows:
                continue
            tests.append(_rate_test(f"Selection rate of {attribute}={g}", "monitoring.selection_rate_change",
                                    int(w["predicted"]), int(w["n"]), int(pred_b[mb].sum()), int(mb.sum()), cfg,
                                    group=f"{attribute}={g}", what="selection rate", references=refs))
            if labelled and yb is not None:
                pb = mb & (yb == 1)
                if min(w["positives"], pb.sum()) >= cfg.min_group_rows:
                    tests.append(_rate_test(f"True positive rate of {attribute}={g}", "monitoring.tpr_change",
                                            int(w["true_positives"]), int(w["positives"]), int(pred_b[pb].sum()),
                                            int(pb.sum()), cfg, group=f"{attribute}={g}", what="true positive rate",
                                            references=refs))
    return tests


def _auc_change(window_auc: float, window_draws: np.ndarray, sb: np.ndarray, yb: np.ndarray, cfg: MonitoringConfig,
                rng: np.random.Generator, note: str = "") -> _Test:
    from scipy.stats import norm
    aw, ab = window_auc, attack_auc(sb[yb == 1], sb[yb == 0])
    rb = bootstrap_auc(sb[yb == 1], sb[yb == 0], rng, cfg.n_boot)
    diff = window_draws - rb
    d = aw - ab
    ci = bootstrap_interval(d, diff, cfg.confidence)
    se = float(diff.std(ddof=1))
    p = float(2 * norm.sf(abs(d) / se)) if se > 0 else (1.0 if d == 0 else 0.0)
    return _Test("Realised AUC against the baseline", "monitoring.realised_auc_change", p, -d >= cfg.max_auc_drop,
                 d, ci, -cfg.max_auc_drop,
                 f"AUC {aw:.3f} on the window's labelled rows against {ab:.3f} at baseline: change {d:+.3f} "
                 f"({cfg.confidence:.0%} CI {ci[0]:+.3f} to {ci[1]:+.3f}); bootstrap normal test p = {p:.3g}." + note,
                 data={"ci_method": f"{PERCENTILE} of the difference, each sample resampled within its classes",
                       "window_auc": aw, "baseline_auc": ab}, references=[R_PMM, R_RISK, R_DEPLOYER])


def _window_auc(ctx: AuditContext, cfg: MonitoringConfig, window: WindowSummary,
                rng: np.random.Generator) -> tuple[float, np.ndarray, str]:
    """The window's realised AUC with bootstrap replicates: from its rows in memory, or from the streamed score
    histogram by label (pairs in one bin count one half; the bound on that error is stated)."""
    if window.streamed:
        pos, neg = window.partial.histogram
        auc, bound = (float(x) for x in binned_auc(pos, neg))
        return auc, binned_auc_draws(pos, neg, rng, cfg.n_boot), (
            f" Streamed window: AUC from a {window.partial.histogram.shape[1]:,}-bin score histogram, within "
            f"{bound:.1e} of the exact value.")
    sw, yw = ctx.predictions.score, ctx.y_true_bin()
    return attack_auc(sw[yw == 1], sw[yw == 0]), bootstrap_auc(sw[yw == 1], sw[yw == 0], rng, cfg.n_boot), ""


def _estimated(ctx: AuditContext, cfg: MonitoringConfig, sw: np.ndarray, sb: np.ndarray, yb: np.ndarray | None,
               rng: np.random.Generator) -> list[Finding]:
    """CBPE on the window, with its validity checked on the labelled baseline."""
    findings, z_alpha = [], (1 - cfg.confidence) / 2
    sw, sb = _capped(pd.DataFrame({"s": sw}), rng, cfg.max_rows)["s"].to_numpy(), sb
    auc_sim, acc_sim = realised_draws(sw, rng, cfg.n_sim)
    valid_note, valid = "", True
    base_real = None
    if yb is not None and len(np.unique(yb)) == 2:
        base_real = {"auc": attack_auc(sb[yb == 1], sb[yb == 0]), "accuracy": float(((sb >= 0.5) == yb).mean())}
        b_auc, b_acc = realised_draws(sb, rng, cfg.n_sim)
        base_est = {"auc": (expected_auc(sb), b_auc), "accuracy": (expected_accuracy(sb), b_acc)}
        misses = [k for k, (_, sims) in base_est.items()
                  if not np.nanquantile(sims, z_alpha) <= base_real[k] <= np.nanquantile(sims, 1 - z_alpha)]
        if misses:
            valid = False
            valid_note = (f" Not valid for this model: on the labelled baseline the estimated {', '.join(misses)} "
                          "misses the realised value, so the scores are not calibrated enough to estimate from.")
        else:
            valid_note = " On the labelled baseline the estimate agrees with the realised value."
    for metric, estimate, sims, drop in [("auc", expected_auc(sw), auc_sim, cfg.max_auc_drop),
                                         ("accuracy", expected_accuracy(sw), acc_sim, cfg.max_accuracy_drop)]:
        sims = sims[np.isfinite(sims)]
        if not np.isfinite(estimate) or len(sims) == 0:
            continue
        lo, hi = float(np.quantile(sims, z_alpha)), float(np.quantile(sims, 1 - z_alpha))
        reference = base_real[metric] if base_real else None
        floor = None if reference is None else reference - drop
        if not valid or floor is None:
            status = Status.warn
        else:
            status = Status.fail if hi < floor else (Status.warn if estimate < floor else Status.passed)
        findings.append(Finding.make(
            NAME, f"Estimated {metric.upper() if metric == 'auc' else metric} without labels", status=status,
            severity=Severity.info if status == Status.passed else cfg.severity, metric=f"monitoring.estimated_{metric}",
            value=estimate, ci=(lo, hi), threshold=floor, references=[R_PMM, R_DEPLOYER],
            detail=(f"Estimated from the model's scores on {len(sw):,} window rows (CBPE): {estimate:.3f}, "
                    f"{cfg.confidence:.0%} prediction interval for the realised value {lo:.3f}–{hi:.3f}"
                    + (f", against {reference:.3f} at baseline (tolerated down to {floor:.3f})." if floor is not None
                       else "; the baseline has no labels to compare with.")
                    + " Assumes the scores stay calibrated on the window (no concept shift)." + valid_note),
            data={"ci_method": f"prediction interval: labels drawn from the scores ({cfg.n_sim} draws)",
                  "method": "confidence-based performance estimation (CBPE)", "valid": valid,
                  "baseline_realised": None if reference is None else reference}))
    return findings


def _status(t: _Test, p_adj: float, alpha: float) -> Status:
    if p_adj >= alpha:
        return Status.passed
    return Status.fail if t.breach else Status.warn


def window_plan(ctx: AuditContext, cfg: MonitoringConfig, base_scores: np.ndarray | None, label: str | None,
                timestamp: str | None, sample_rows: int):
    """What a window is counted against: the baseline's bins and KS grids (shared by `aiaudit monitor` streaming)."""
    return plan_for(ctx.model, ctx.baseline.data.frame, base_scores, cfg.bins, ctx.positive_label, label,
                    ctx.data.protected, timestamp, sample_rows, ctx.seed)


def baseline_scores(ctx: AuditContext) -> np.ndarray | None:
    if ctx.model.task != "binary":
        return None
    return ctx.model.predict_proba(ctx.baseline.data.frame)[:, list(ctx.model.classes).index(ctx.positive_label)]


def run(ctx: AuditContext, cfg: MonitoringConfig) -> CheckResult:
    baseline = ctx.baseline
    rng = ctx.rng("monitoring")
    ctx.progress("monitoring: drift, estimated performance, group rates")
    base, win = baseline.data.frame, ctx.data.frame  # win: the window's rows, or its sample when streamed
    sb = baseline_scores(ctx)
    window = ctx.population if ctx.population is not None else summarise(
        win, window_plan(ctx, cfg, sb, ctx.data.label, None, 0), base, sb)
    features, drift_rows = _feature_tests(ctx, cfg, base, window, rng)
    tests = list(features)
    if (domain := _domain_test(ctx, cfg, base, win, rng)) is not None:
        tests.append(domain)
    findings: list[Finding] = []
    yb = None
    if sb is not None:
        pred_b = (sb >= 0.5).astype(int)
        counts = window.score_binned()
        _, p = window.score_ks()
        value, ci = _drift(counts, p, rng, cfg)
        tests.append(_Test("Drift of the model's scores", "monitoring.prediction_psi", p, value >= cfg.max_psi, value, ci,
                           cfg.max_psi, f"Score PSI {value:.3f} ({cfg.confidence:.0%} CI {ci[0]:.3f}–{ci[1]:.3f}), "
                                        f"two-sample Kolmogorov–Smirnov p = {p:.3g}.",
                           data={"ci_method": "multinomial bootstrap, bias-corrected lower limit",
                                 "test": "two-sample Kolmogorov-Smirnov"}))
        n_w = window.rows
        tests.append(_rate_test("Share of positive predictions", "monitoring.positive_rate_change",
                                window.partial.predicted, n_w, int(pred_b.sum()), len(pred_b), cfg,
                                what="positive-prediction rate"))
        if baseline.data.label is not None:
            yb = (base[baseline.data.label].astype(str) == str(ctx.positive_label)).to_numpy().astype(int)
        if window.partial.labelled is not None:
            positives, correct = (int(x) for x in window.partial.labelled)
            if yb is not None:
                tests.append(_rate_test("Share of positive labels", "monitoring.label_rate_change", positives, n_w,
                                        int(yb.sum()), len(yb), cfg, what="positive-label rate"))
                if 0 < positives < n_w and len(np.unique(yb)) == 2:
                    aw, draws, note = _window_auc(ctx, cfg, window, rng)
                    tests.append(_auc_change(aw, draws, sb, yb, cfg, rng, note))
                    t = _rate_test("Realised accuracy against the baseline", "monitoring.realised_accuracy_change",
                                   correct, n_w, int((pred_b == yb).sum()), len(yb), cfg, what="accuracy",
                                   references=[R_PMM, R_RISK, R_DEPLOYER])
                    t.breach, t.threshold = -t.value >= cfg.max_accuracy_drop, -cfg.max_accuracy_drop
                    tests.append(t)
        else:
            sw = window.sample_scores() if window.streamed else ctx.predictions.score
            findings.extend(_estimated(ctx, cfg, sw, sb, yb, rng))
        tests.extend(_group_tests(ctx, cfg, base, window, pred_b, yb))
    adjusted = adjust([t.p for t in tests], "holm")
    for t, p_adj in zip(tests, adjusted):
        status = _status(t, float(p_adj), cfg.alpha)
        findings.append(Finding.make(
            NAME, t.title, status=status, severity=Severity.info if status == Status.passed else cfg.severity,
            metric=t.metric, group=t.group, value=t.value, ci=t.ci, threshold=t.threshold, references=t.references,
            detail=t.detail + (f" Holm-adjusted p = {p_adj:.3g} over the window's {len(tests)} tests "
                               f"(family-wise α = {cfg.alpha})."),
            data={**t.data, "p_value": t.p, "p_adjusted": float(p_adj), "family_size": len(tests),
                  "correction": "holm", "effect_at_tolerance": bool(t.breach)}))
    breaches = sum(f.status == Status.fail for f in findings)
    drifted = [r["feature"] for r, f in zip(drift_rows, findings[-len(tests):]) if f.status != Status.passed]
    metrics: dict[str, float | None] = {f"monitoring.psi.{r['feature']}": r["psi"] for r in drift_rows}
    metrics.update({"monitoring.breaches": float(breaches), "monitoring.drifted_inputs": float(len(drifted)),
                    "monitoring.window_rows": float(window.rows)})
    for f in findings:
        if f.metric in ("monitoring.domain_auc", "monitoring.prediction_psi", "monitoring.estimated_auc",
                        "monitoring.estimated_accuracy", "monitoring.realised_auc_change",
                        "monitoring.positive_rate_change") and f.value is not None:
            metrics[f.metric] = f.value
    return CheckResult(findings=findings, metrics=metrics, details={
        "baseline_audit": baseline.audit_id, "baseline_signed_off": baseline.signed_off, "baseline_rows": len(base),
        "window_rows": window.rows, "summary": window.method, "family_size": len(tests), "breaches": breaches, "drifted_inputs": drifted,
        "drift": drift_rows, "settings": cfg.model_dump(mode="json")})


CHECK = Check(name=NAME, run=run, config=MonitoringConfig, references=tuple(REFERENCES),
              requires=frozenset({"tabular", "baseline"}))
