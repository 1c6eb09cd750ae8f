"""Privacy evidence: does the model leak who was in its training data? (EU AI Act Art. 15(5); GDPR Art. 32)

A membership-inference attack from the model's confidence in the true label: training rows are members,
audited (held-out) rows non-members. Reports the attack AUC with a stratified bootstrap interval, the TPR at
1% and 0.1% false positives (Clopper-Pearson, given the threshold), the lower bound on epsilon the attack
implies, and the AUC per protected group (do members of a small group leak more?).
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from risk.catalogue import citations

from ..findings import Finding, Severity, Status
from ..metrics.intervals import PERCENTILE, bootstrap_interval, interval_status
from ..metrics.membership import attack_auc, bootstrap_auc, epsilon_lower_bound, tpr_at_fpr, true_label_confidence
from .base import AuditContext, Check, CheckConfig, CheckResult

NAME = "privacy"
R_CONFIDENTIALITY, R_GDPR = (citations(NAME)[k] for k in ("confidentiality", "security"))
REFERENCES = [R_CONFIDENTIALITY, R_GDPR]


class PrivacyConfig(CheckConfig):
    confidence: float = Field(0.95, gt=0.5, lt=1)
    n_boot: int = Field(500, ge=100, le=10_000)
    max_attack_auc: float = Field(0.6, gt=0.5, le=1, description="Attack AUC above which membership leaks (0.5 = "
                                                                 "chance).")
    max_rows: int = Field(20_000, ge=500, description="Members and non-members each subsampled to this many rows.")
    min_group_rows: int = Field(50, ge=10, description="Smallest group (members and non-members each) given an AUC.")
    severity: Severity = Severity.medium


def _scores(ctx: AuditContext, frame, rng, cap: int) -> np.ndarray:
    if len(frame) > cap:
        frame = frame.iloc[np.sort(rng.choice(len(frame), cap, replace=False))]
    y = frame[ctx.data.label].to_numpy()
    if ctx.model.task == "regression":  # the loss attack: a smaller error marks a member
        return -np.abs(ctx.model.predict(frame) - y.astype(float)), frame
    return true_label_confidence(ctx.model.predict_proba(frame), list(ctx.model.classes), y), frame


def run(ctx: AuditContext, cfg: PrivacyConfig) -> CheckResult:
    rng = ctx.rng("privacy")
    ctx.progress("privacy: membership inference (confidence attack)")
    member, members = _scores(ctx, ctx.data.train, rng, cfg.max_rows)
    non_member, non_members = _scores(ctx, ctx.data.frame, rng, cfg.max_rows)
    alpha = 1 - cfg.confidence
    auc = attack_auc(member, non_member)
    ci = bootstrap_interval(auc, bootstrap_auc(member, non_member, rng, cfg.n_boot), cfg.confidence)
    status = Status(interval_status(ci, cfg.max_attack_auc, higher_is_better=False))
    points = {f: tpr_at_fpr(member, non_member, f, alpha) for f in (0.01, 0.001)}
    eps = epsilon_lower_bound(member, non_member, alpha)
    result = CheckResult()
    operating = "; ".join(f"TPR at FPR {f:.1%}: {p.tpr:.1%} (CI {p.tpr_ci[0]:.1%}–{p.tpr_ci[1]:.1%})" if p else
                          f"TPR at FPR {f:.1%}: not estimable with {len(non_member):,} non-members"
                          for f, p in points.items())
    result.findings.append(Finding.make(
        NAME, "Membership inference (confidence attack)", status=status,
        severity=Severity.info if status == Status.passed else cfg.severity, metric="privacy.attack_auc",
        value=auc, ci=ci, threshold=cfg.max_attack_auc, references=REFERENCES,
        detail=(f"An attacker who sees only the model's confidence in the true label tells the {len(member):,} "
                f"training rows from {len(non_member):,} held-out rows with AUC {auc:.3f} ({cfg.confidence:.0%} CI "
                f"{ci[0]:.3f}–{ci[1]:.3f}; 0.5 is chance, the policy allows at most {cfg.max_attack_auc}). {operating}. "
                f"The attack implies differential-privacy epsilon ≥ {eps:.2f} at {cfg.confidence:.0%} confidence "
                "(0 means no evidence of leakage; a stronger attack can only raise it)."),
        data={"ci_method": f"{PERCENTILE}, stratified ({cfg.n_boot} replicates)", "members": len(member),
              "non_members": len(non_member), "epsilon_lower_bound": eps,
              "operating_points": {str(f): (None if p is None else {"tpr": p.tpr, "tpr_ci": list(p.tpr_ci),
                                                                      "fpr": p.fpr, "threshold": p.threshold})
                                   for f, p in points.items()},
              "attack": "loss / confidence threshold (Yeom et al. 2018)"}))
    result.metrics.update({"privacy.attack_auc": auc, "privacy.attack_auc.ci_low": ci[0],
                           "privacy.attack_auc.ci_high": ci[1], "privacy.epsilon_lower_bound": eps})
    for attribute in ctx.data.protected:
        if attribute not in members or attribute not in non_members:
            continue
        parts = []
        for group in sorted(set(members[attribute].astype(str)) & set(non_members[attribute].astype(str))):
            m = member[(members[attribute].astype(str) == group).to_numpy()]
            n = non_member[(non_members[attribute].astype(str) == group).to_numpy()]
            if min(len(m), len(n)) >= cfg.min_group_rows:
                parts.append((group, m, n))
        if not parts:
            continue
        level = 1 - alpha / len(parts)  # simultaneous over the groups: the worst one is picked after looking
        rows = []
        for group, m, n in parts:
            g_auc = attack_auc(m, n)
            g_ci = bootstrap_interval(g_auc, bootstrap_auc(m, n, rng, cfg.n_boot), level)
            rows.append({"group": group, "members": len(m), "non_members": len(n), "auc": g_auc,
                         "ci_low": g_ci[0], "ci_high": g_ci[1]})
        worst = max(rows, key=lambda r: r["auc"])
        g_status = Status(interval_status((worst["ci_low"], worst["ci_high"]), cfg.max_attack_auc, False))
        result.findings.append(Finding.make(
            NAME, f"Membership leakage by {attribute}", status=g_status,
            severity=Severity.info if g_status == Status.passed else cfg.severity,
            metric=f"privacy.attack_auc.{attribute}", group=worst["group"], value=worst["auc"],
            ci=(worst["ci_low"], worst["ci_high"]), threshold=cfg.max_attack_auc, references=REFERENCES,
            detail="Attack AUC by group: " + ", ".join(f"{r['group']} {r['auc']:.3f} (CI {r['ci_low']:.3f}–"
                                                        f"{r['ci_high']:.3f})" for r in rows)
                   + f"; most exposed: {worst['group']}.",
            data={"groups": rows, "ci_method": f"{PERCENTILE}, stratified ({cfg.n_boot} replicates), simultaneous "
                                               f"over {len(rows)} groups (Bonferroni)"}))
    result.details = {"members": len(member), "non_members": len(non_member), "attack_auc": auc,
                      "epsilon_lower_bound": eps}
    return result


CHECK = Check(name=NAME, run=run, config=PrivacyConfig, references=tuple(REFERENCES),
              requires=frozenset({"tabular", "labels", "train"}))
