"""Inference for the fairness check: intervals per analysis, the family of verdicts and the verdict rule.

The family is every fairness statistic that can raise a warn or fail in one audit (all protected
attributes and their intersections). Its p-values are adjusted together (Holm by default), and the
interval shown with each verdict is simultaneous over the family (Bonferroni), so a verdict and its
interval never disagree: a disparity is "established" exactly when the adjusted p-value is at most
alpha, and then only the interval's position against the declared threshold decides warn or fail.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Hashable, Sequence

import numpy as np

from ..metrics import fairness_inference as fi
from ..metrics import inference as inf
from ..metrics.fairness import RATES

if TYPE_CHECKING:  # pragma: no cover
    from .fairness import Analysis, FairnessConfig

REFERENCE_RATES = ("selection_rate", "tpr", "fpr", "precision")


@dataclass(frozen=True)
class Tested:
    """A statistic's interval and, for a verdict statistic, its place in the family."""

    interval: tuple[float, float]
    coverage: float
    simultaneous: bool
    method: str
    p_value: float
    p_adjusted: float | None = None
    significant: bool | None = None

    def data(self, family: "Family") -> dict:
        return {"ci_method": self.method, "ci_coverage": round(self.coverage, 6),
                "ci_simultaneous_over_family": self.simultaneous, "p_value": self.p_value,
                "p_adjusted": self.p_adjusted, "significant": self.significant, **family.describe()}


@dataclass(frozen=True)
class Family:
    size: int
    correction: inf.Correction
    alpha: float
    attribute_sets: tuple[str, ...]

    def describe(self) -> dict:
        return {"family": f"{self.size} fairness statistics with verdicts over {', '.join(self.attribute_sets)}",
                "family_size": self.size, "correction": self.correction, "alpha": self.alpha}


def analysis_intervals(an: "Analysis", C: np.ndarray, classes: list[str], positions: list[int], labelled: bool,
                       cfg: "FairnessConfig", obs: dict) -> tuple[dict, dict[tuple[str, str], inf.Statistic]]:
    """Per-group Wilson intervals and group-vs-reference intervals (both at `cfg.confidence`), and a
    `Statistic` for every between-groups disparity and amplification measure of one analysis."""
    ci: dict[tuple[str, str], tuple] = {}
    ref_rates = REFERENCE_RATES if labelled else ("selection_rate",)
    undefined = np.full(len(an.groups), np.nan)
    for pos in positions:
        cls = classes[pos]
        ci.update({(cls, f"group.{r}"): v if labelled or r == "selection_rate" else (undefined, undefined)
                   for r, v in fi.rate_intervals(C, pos, cfg.confidence, RATES).items()})
        ci.update({(cls, k): v for k, v in
                   fi.reference_intervals(C, pos, an.eligible, an.ref, cfg.confidence, ref_rates).items()})
    stats = {(classes[p] if p is not None else "*", k): s
             for (p, k), s in fi.parity_statistics(C, positions, an.eligible, labelled).items()}
    if labelled and cfg.amplification.enabled:
        if an.direction is not None and np.isfinite(obs[("*", "biasamp")]):
            stats[("*", "biasamp")] = fi.biasamp_statistic(C, an.direction, an.eligible, float(obs[("*", "biasamp")]))
        stats.update({("*", k): s for k, s in fi.df_statistics(C, an.eligible, cfg.amplification.concentration).items()})
    return ci, stats


def settle(stats: dict[Hashable, inf.Statistic], verdicts: Sequence[Hashable], confidence: float,
           correction: inf.Correction, attribute_sets: Sequence[str]) -> tuple[Family, dict[Hashable, Tested]]:
    """Adjust the verdict statistics' p-values as one family and give every statistic its interval:
    simultaneous over the family for verdict statistics, at `confidence` for the rest."""
    alpha = 1 - confidence
    verdicts = [k for k in dict.fromkeys(verdicts) if k in stats]
    family = Family(len(verdicts), correction, alpha, tuple(attribute_sets))
    adjusted = dict(zip(verdicts, inf.adjust([stats[k].p_value for k in verdicts], correction)))
    level = alpha / len(verdicts) if correction != "none" and verdicts else alpha
    out = {}
    for key, st in stats.items():
        if key in adjusted:
            out[key] = Tested(st.interval(level), 1 - level, correction != "none", st.method, st.p_value,
                              float(adjusted[key]), bool(adjusted[key] <= alpha))
        else:
            out[key] = Tested(st.interval(alpha), confidence, False, st.method, st.p_value)
    return family, out


def verdict(interval: tuple[float, float] | None, threshold: float, higher_is_better: bool,
            significant: bool | None) -> str:
    """pass unless the disparity is established (significant); then fail when the whole interval is
    beyond the threshold, pass when it is wholly within, warn when it straddles."""
    if not significant or interval is None or np.isnan(interval).any():
        return "pass"
    lo, hi = interval
    if higher_is_better:
        return "fail" if hi < threshold else "pass" if lo >= threshold else "warn"
    return "fail" if lo > threshold else "pass" if hi <= threshold else "warn"


def describe(t: Tested, family: Family) -> str:
    """One sentence on the test behind a verdict."""
    if t.p_adjusted is None:
        return f"p = {_p(t.p_value)} (not part of a verdict family)."
    how = {"holm": "Holm", "bonferroni": "Bonferroni", "none": "no"}[family.correction]
    established = "a disparity is established" if t.significant else "no disparity is established"
    return (f"Test of equal rates: p = {_p(t.p_value)}, {how}-adjusted over the family of {family.size} fairness "
            f"statistics p = {_p(t.p_adjusted)}; at alpha {family.alpha:g} {established}. The interval is "
            + (f"simultaneous over that family (each at least {t.coverage:.2%})." if t.simultaneous
               else f"at {t.coverage:.0%}."))


def _p(p: float) -> str:
    return "<1e-12" if p < 1e-12 else f"{p:.3g}"
