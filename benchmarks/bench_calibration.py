"""Calibration of aiaudit's own intervals: coverage of the truth on synthetic data with known population values.

    python -m benchmarks.bench_calibration               # 200 redraws per scenario -> benchmarks/results/calibration.json
    python -m benchmarks.bench_calibration --quick       # 50 redraws per scenario -> calibration-quick.json
    python -m benchmarks.bench_calibration --redraws 400 --workers 1

Each redraw draws a fresh audited sample (5,000 rows unless a scenario says otherwise) and a fresh
training sample (for BiasAmp's direction) from a population whose every group rate, disparity and
performance metric is known analytically, and runs the real checks on it: the fairness check
(`audit.checks.fairness.run`, whose `measure_classification` result is captured as it runs) and the
performance check (`audit.checks.performance.run`), through an `AuditContext` built the way
`benchmarks/bench_fairness.py` builds one, with a model whose predicted probability is a column of
the data.

The population. Group membership (sex, race, optionally an age band) is drawn from independent
marginals. Given its cell c, a row's label is y ~ Bernoulli(p_c) and the model's logit is
L | y, c ~ Normal(m_yc, 1.5^2) with m_1c - m_0c = 1.5^2 and (m_1c + m_0c) / 2 = logit p_c + d_c:
with d_c = 0 the score sigmoid(L) is exactly calibrated; d_c shifts the model's scores for a cell
("model bias"). The prediction is 1 when sigmoid(L) > 0.5, so TPR_c = Phi(m_1c / 1.5) and
FPR_c = Phi(m_0c / 1.5). Every per-group rate is a weighted sum over cells; ROC AUC is a sum of
normal CDFs over pairs of cells; log loss, Brier score and ECE are one-dimensional integrals
(scipy quad). A check of these formulas against 2,000,000 simulated rows is in the results.

Truth of a disparity. The fairness check compares the groups that have at least `min_group_size`
rows (and a defined rate); the truth of a between-groups statistic is the same functional of the
population rates of those groups (in a redraw where a small group falls below the minimum, the
statistic is about the remaining groups, and so is its truth). BiasAmp-> is defined with a
direction y_at estimated from the training labels and held fixed; its truth is the population
value for the direction of that redraw. The truth of DF amplification is the unsmoothed
population value.

What is counted, per scenario and per interval:
- coverage: the fraction of redraws in which the interval contains the truth, with a 95% Wilson
  interval for that fraction. Verdict statistics are reported twice: the interval the audit files
  (simultaneous over the whole family of verdicts: Bonferroni level alpha / family size) and the
  same statistic's own 95% interval (what the audit would file with `correction: none`);
- point outside: how often the point estimate lies outside its own interval (must be 0), for
  every interval and for every finding's (value, ci);
- false alarms (fair scenarios): the fraction of redraws in which any verdict statistic is
  significant after the family-wise correction, and in which any disparity or amplification
  finding is warn or fail (overall and per attribute set).
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import os
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "calibration.json"
SIGMA = 1.5
BASE_RATE = 0.3
ROWS = 5000
TRUTH_CHECK_ROWS = 2_000_000
COVERAGE_TARGET = 0.93
FALSE_ALARM_TARGET = 0.05
TOL = 1e-9
PERFORMANCE_METRICS = ("accuracy", "balanced_accuracy", "roc_auc", "log_loss", "brier", "ece")
SEX = {"F": 0.45, "M": 0.55}
RACE = {"White": 0.70, "Black": 0.15, "Asian": 0.10, "Other": 0.05}

Effect = tuple[tuple[str, str], ...]  # ((attribute, level), ...): main effect (one pair) or interaction


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    attributes: dict[str, dict[str, float]]
    base_effects: dict[Effect, float] = field(default_factory=dict)   # on logit P(y = 1 | cell)
    model_effects: dict[Effect, float] = field(default_factory=dict)  # shift of the model's logit (miscalibration)
    intersections: Any = "pairs"
    rows: int = ROWS
    tracked: tuple[tuple[str, str], ...] = ()  # (analysis, group) whose intervals are listed in the summary
    performance: bool = True  # run the performance check too (the fair variants share `fair`'s score distribution)

    @property
    def fair(self) -> bool:
        return not self.base_effects and not self.model_effects


def scenarios() -> list[Scenario]:
    three = {"sex": {"F": 0.5, "M": 0.5}, "race": {"White": 0.6, "Black": 0.2, "Asian": 0.1, "Other": 0.1},
             "age": {"<30": 0.2, "30-49": 0.3, "50+": 0.5}}
    small = {"sex": SEX, "race": {"White": 0.746, "Black": 0.13, "Asian": 0.1, "Other": 0.012, "Pacific": 0.012}}
    cell = (("sex", "F"), ("race", "Black"), ("age", "50+"))  # 0.5 x 0.2 x 0.5 = 5% of the rows
    return [
        Scenario("fair", "sex x race; label and model independent of the groups (every disparity 0, ratio 1)",
                 {"sex": SEX, "race": RACE}),
        Scenario("unfair", "sex x race; moderate label bias and model bias by sex and race",
                 {"sex": SEX, "race": RACE},
                 base_effects={(("sex", "M"),): 0.35, (("race", "Black"),): -0.35, (("race", "Asian"),): 0.15,
                               (("race", "Other"),): -0.2},
                 model_effects={(("sex", "M"),): 0.3, (("race", "Black"),): -0.25}),
        Scenario("small_groups", "sex x race with two races of 1.2% (about 60 rows; their sex x race cells "
                 "about 27-33 rows, at the 30-row minimum); the small groups differ",
                 small, base_effects={(("race", "Other"),): 0.5, (("race", "Pacific"),): -0.3},
                 model_effects={(("race", "Pacific"),): -0.4},
                 tracked=(("race", "Other"), ("race", "Pacific"))),
        Scenario("fair_small_groups", "as small_groups, but fair", small,
                 tracked=(("race", "Other"), ("race", "Pacific")), performance=False),
        Scenario("intersection3", "sex x race x age band, the three pairs and the 3-way intersection; only the "
                 "5% cell F*Black*50+ differs (label and model)", three,
                 base_effects={cell: -0.45}, model_effects={cell: -0.35},
                 intersections=[["sex", "race"], ["sex", "age"], ["race", "age"], ["sex", "race", "age"]],
                 tracked=(("sex*race*age", "F*Black*50+"),)),
        Scenario("fair_intersection3", "as intersection3, but fair (49 verdict statistics in the family)", three,
                 intersections=[["sex", "race"], ["sex", "age"], ["race", "age"], ["sex", "race", "age"]],
                 tracked=(("sex*race*age", "F*Black*50+"),), performance=False),
    ]


# --- the population ------------------------------------------------------------------------------

def _logit(p: float) -> float:
    return math.log(p / (1 - p))


@dataclass
class Population:
    """Cells (one per combination of attribute levels) with weight, P(y=1), and the model's logit means."""

    scenario: Scenario
    attrs: list[str]
    cells: list[tuple[str, ...]]
    w: np.ndarray
    p: np.ndarray
    m1: np.ndarray
    m0: np.ndarray

    @classmethod
    def of(cls, sc: Scenario) -> "Population":
        attrs = list(sc.attributes)
        cells = list(itertools.product(*[list(sc.attributes[a]) for a in attrs]))
        w, p, m1, m0 = [], [], [], []
        for c in cells:
            levels = set(zip(attrs, c))
            w.append(math.prod(sc.attributes[a][lv] for a, lv in zip(attrs, c)))
            base = _logit(BASE_RATE) + sum(v for k, v in sc.base_effects.items() if set(k) <= levels)
            shift = sum(v for k, v in sc.model_effects.items() if set(k) <= levels)
            p.append(1 / (1 + math.exp(-base)))
            m1.append(base + shift + SIGMA ** 2 / 2)
            m0.append(base + shift - SIGMA ** 2 / 2)
        w = np.array(w)
        return cls(sc, attrs, cells, w / w.sum(), np.array(p), np.array(m1), np.array(m0))

    @property
    def tpr(self) -> np.ndarray:
        from scipy.stats import norm
        return norm.cdf(self.m1 / SIGMA)

    @property
    def fpr(self) -> np.ndarray:
        from scipy.stats import norm
        return norm.cdf(self.m0 / SIGMA)

    def groups(self, attrs: tuple[str, ...]) -> dict[str, dict[str, float]]:
        """Population rates of every group of `attrs` (labels joined with '*', as the check joins them)."""
        idx = [self.attrs.index(a) for a in attrs]
        tpr, fpr = self.tpr, self.fpr
        out: dict[str, dict[str, float]] = {}
        acc: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(5))
        for c, w, p, t, f in zip(self.cells, self.w, self.p, tpr, fpr):
            key = "*".join(c[i] for i in idx)
            acc[key] += w * np.array([1.0, p, p * t, (1 - p) * f, 1 - p])  # share, pos, tp, fp, neg
        for key, (share, pos, tp, fp, neg) in acc.items():
            sel = (tp + fp) / share
            out[key] = {"share": share, "selection_rate": sel, "tpr": tp / pos, "fpr": fp / neg,
                        "fnr": 1 - tp / pos, "precision": tp / (tp + fp), "accuracy": (tp + neg - fp) / share,
                        "base_rate": pos / share}
        return out

    def performance(self) -> dict[str, float]:
        """Population values of the performance check's metrics (analytic / one-dimensional integrals)."""
        from scipy import integrate
        from scipy.special import expit
        from scipy.stats import norm
        w, p, m1, m0, tpr, fpr = self.w, self.p, self.m1, self.m0, self.tpr, self.fpr
        P1 = float((w * p).sum())
        P0 = 1 - P1
        a, b = w * p / P1, w * (1 - p) / P0
        auc = float((a[:, None] * b[None, :] * norm.cdf((m1[:, None] - m0[None, :]) / (SIGMA * math.sqrt(2)))).sum())
        tpr_all, fpr_all = float((a * tpr).sum()), float((b * fpr).sum())

        def expect(fn, m: float, lo: float = -np.inf, hi: float = np.inf) -> float:
            return integrate.quad(lambda L: fn(L) * norm.pdf(L, m, SIGMA), lo, hi, epsabs=1e-13, epsrel=1e-11,
                                  limit=200)[0]

        ll = brier = 0.0
        for wc, pc, a1, a0 in zip(w, p, m1, m0):
            ll += wc * (pc * expect(lambda L: np.logaddexp(0, -L), a1) + (1 - pc) * expect(lambda L: np.logaddexp(0, L), a0))
            brier += wc * (pc * expect(lambda L: (1 - expit(L)) ** 2, a1) + (1 - pc) * expect(lambda L: expit(L) ** 2, a0))
        edges = [-np.inf] + [_logit(k / 10) for k in range(1, 10)] + [np.inf]
        ece = 0.0
        for lo, hi in zip(edges[:-1], edges[1:]):
            gap = sum(wc * (pc * expect(lambda L: 1 - expit(L), a1, lo, hi) - (1 - pc) * expect(expit, a0, lo, hi))
                      for wc, pc, a1, a0 in zip(w, p, m1, m0))
            ece += abs(gap)
        return {"accuracy": float((w * (p * tpr + (1 - p) * (1 - fpr))).sum()),
                "balanced_accuracy": 0.5 * (tpr_all + 1 - fpr_all), "roc_auc": auc, "log_loss": ll,
                "brier": brier, "ece": ece}

    def draw(self, rng: np.random.Generator, rows: int) -> "Any":
        return self.draw_cells(rng, rows)[0]

    def draw_cells(self, rng: np.random.Generator, rows: int) -> "tuple[Any, np.ndarray]":
        import pandas as pd
        c = rng.choice(len(self.cells), size=rows, p=self.w)
        y = (rng.random(rows) < self.p[c]).astype(int)
        logit = np.where(y == 1, self.m1[c], self.m0[c]) + SIGMA * rng.standard_normal(rows)
        cells = np.array(self.cells, dtype=object)
        frame = {a: cells[c, i].astype(str) for i, a in enumerate(self.attrs)}
        return pd.DataFrame({**frame, "logit": logit, "label": y}), c


class ScoreColumn:
    """A 'model' whose positive-class probability is sigmoid of the data's `logit` column."""

    def predict_proba(self, X):
        from scipy.special import expit
        s = expit(X["logit"].to_numpy(dtype=float))
        return np.column_stack([1 - s, s])


_LOADED: dict[tuple[str, ...], Any] = {}


def _context(pop: Population, frame, train, tmp: Path, seed: int):
    """An AuditContext for the synthetic data, as benchmarks/bench_fairness.py builds one for Adult: a spec
    (label `label`, positive label 1, the scenario's protected attributes), the default policy pack
    without domain overrides, and the ScoreColumn model."""
    from audit.checks.base import AuditContext, AuditData
    from audit.model_io import FeatureSpec, LoadedModel, ModelMeta
    from audit.policy import load_policy
    from audit.spec import load_spec
    key = tuple(pop.attrs)
    if key not in _LOADED:
        d = tmp / "_".join(key)
        d.mkdir(parents=True, exist_ok=True)
        (d / "data.csv").write_text("label\n0\n")
        (d / "audit.yaml").write_text(json.dumps({
            "name": "calibration", "model": "models:/calibration@candidate",
            "dataset": {"path": "data.csv", "label": "label", "positive_label": 1, "protected": pop.attrs},
            "policy": "eu-ai-act-default", "seed": 0}))
        _LOADED[key] = (load_spec(d / "audit.yaml"), load_policy("eu-ai-act-default"))
    spec, policy = _LOADED[key]
    meta = ModelMeta(format="skops", file="model.skops", sha256="0" * 64, task="binary", classes=[0, 1],
                     features=[FeatureSpec(name="logit", kind="numeric")])
    data = AuditData(frame=frame, label="label", protected=list(pop.attrs), train=train)
    return AuditContext(spec=spec, policy=policy, model=LoadedModel(ScoreColumn(), meta), data=data,
                        evidence_dir=tmp / "evidence", seed=seed, domain=None)


# --- truths of the statistics ----------------------------------------------------------------------

def _spread(values: np.ndarray) -> tuple[float, float]:
    return float(values.max() - values.min()), float(values.min() / values.max())


def statistic_truths(truth: dict[str, dict[str, float]], groups: list[str], usable: dict[str, np.ndarray],
                     eligible: np.ndarray, direction: np.ndarray | None) -> dict[str, float]:
    """Population value of every between-groups statistic over the groups the check compares."""
    from audit.metrics.fairness import PARITY
    out: dict[str, float] = {}
    for crit, names in PARITY.items():
        diffs, ratios = [], []
        for r in names:
            g = [groups[i] for i in np.flatnonzero(usable[r])]
            if len(g) >= 2:
                d, q = _spread(np.array([truth[x][r] for x in g]))
                diffs.append(d)
                ratios.append(q)
        if diffs:
            out[f"{crit}_difference"], out[f"{crit}_ratio"] = max(diffs), min(ratios)
    el = [groups[i] for i in np.flatnonzero(eligible)]
    if len(el) >= 2:
        def eps(rate: str) -> float:
            q = np.array([truth[g][rate] for g in el])
            return float(max(np.log(q).max() - np.log(q).min(), np.log(1 - q).max() - np.log(1 - q).min()))
        out["df_epsilon_predictions"], out["df_epsilon_labels"] = eps("selection_rate"), eps("base_rate")
        out["df_amplification"] = out["df_epsilon_predictions"] - out["df_epsilon_labels"]
        if direction is not None:
            d = np.nan_to_num(np.asarray(direction, dtype=float)[np.flatnonzero(eligible)])
            delta = np.array([[-(truth[g]["selection_rate"] - truth[g]["base_rate"]),
                               truth[g]["selection_rate"] - truth[g]["base_rate"]] for g in el])
            out["biasamp"] = float((d * delta).mean())
    return out


# --- one redraw -------------------------------------------------------------------------------------

class Tally:
    """Coverage, point-outside and interval-width counts per interval id."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def add(self, key: str, kind: str, lo: float, hi: float, point: float, truth: float, nominal: float) -> None:
        if not (np.isfinite(lo) and np.isfinite(hi) and np.isfinite(truth)):
            r = self.rows.setdefault(key, _row(kind, nominal))
            r["undefined"] += 1
            return
        r = self.rows.setdefault(key, _row(kind, nominal))
        r["n"] += 1
        r["covered"] += int(lo - TOL <= truth <= hi + TOL)
        r["above"] += int(truth > hi + TOL)  # truth above the interval (the interval is too low)
        r["below"] += int(truth < lo - TOL)
        if np.isfinite(point):
            scale = TOL * max(1.0, abs(point))
            r["point_outside"] += int(point < lo - scale or point > hi + scale)
        r["width"] += hi - lo
        r["truth"] += truth
        r["nominal"] = min(r["nominal"], nominal)

    def merge(self, other: "Tally") -> None:
        for k, o in other.rows.items():
            r = self.rows.setdefault(k, _row(o["kind"], o["nominal"]))
            for f in ("n", "covered", "above", "below", "point_outside", "undefined", "width", "truth"):
                r[f] += o[f]
            r["nominal"] = min(r["nominal"], o["nominal"])


def _row(kind: str, nominal: float) -> dict[str, Any]:
    return {"kind": kind, "n": 0, "covered": 0, "above": 0, "below": 0, "point_outside": 0, "undefined": 0,
            "width": 0.0, "truth": 0.0, "nominal": nominal}


def _redraw(pop: Population, group_truth: dict, perf_truth: dict, seed: int, tmp: Path) -> dict[str, Any]:
    import audit.checks.fairness as fair
    from audit.checks import _fairness_inference as fic
    from audit.checks import performance as perf
    from audit.metrics.fairness import RATES
    sc = pop.scenario
    rng = np.random.default_rng([20240517, seed])
    frame, train = pop.draw(rng, sc.rows), pop.draw(rng, sc.rows)
    ctx = _context(pop, frame, train, tmp, seed)
    fcfg = fair.CHECK.config.model_validate({**ctx.policy.check_settings("fairness", None),
                                             "intersections": sc.intersections, "proxies": {"enabled": False}})
    pcfg = perf.CHECK.config.model_validate(ctx.policy.check_settings("performance", None))
    captured: dict[str, Any] = {}
    original = fair.measure_classification

    def spy(*args, **kwargs):
        captured["m"] = m = original(*args, **kwargs)
        return m

    fair.measure_classification = spy  # the real check runs; its Measured result is kept for the tally
    try:
        t0 = time.perf_counter()
        fres = fair.CHECK.run(ctx, fcfg)
        fair_s = time.perf_counter() - t0
    finally:
        fair.measure_classification = original
    t0 = time.perf_counter()
    pres = perf.CHECK.run(ctx, pcfg) if sc.performance else perf.CheckResult()
    perf_s = time.perf_counter() - t0

    m = captured["m"]
    cls = m.classes[m.positions[0]]
    tally = Tally()
    verdict_metrics: dict[str, tuple[str, str]] = {}  # finding metric -> (attribute set, statistic)
    null: dict[tuple[str, str], bool] = {}            # verdict statistic -> its population value is "no disparity"
    events: Counter = Counter()
    eligible_info: dict[str, int] = {}
    for an, obs, ci, tested in m.results:
        truth = group_truth[an.attrs]
        C = an.table.marginal(an.table.counts, an.attrs)[an.keep]
        _, stats = fic.analysis_intervals(an, C, m.classes, m.positions, m.labelled, fcfg, obs)
        eligible_info[an.name] = int(an.eligible.sum())
        # per-group Wilson intervals
        usable = {}
        for r in RATES:
            lo, hi = ci[(cls, f"group.{r}")]
            point = obs[(cls, f"group.{r}")]
            usable[r] = an.eligible & np.isfinite(point)
            for i in np.flatnonzero(an.eligible):
                tally.add(f"{an.name}|group.{r}|{an.groups[i]}", f"group.{r}", lo[i], hi[i], point[i],
                          truth[an.groups[i]][r], fcfg.confidence)
        # group-vs-reference intervals (simultaneous over the groups compared)
        ref = an.groups[an.ref]
        for r in fic.REFERENCE_RATES:
            for scale in ("difference", "ratio"):
                lo, hi = ci[(cls, f"ref_{scale}.{r}")]
                point = obs[(cls, f"ref_{scale}.{r}")]
                for i in np.flatnonzero(an.eligible):
                    if i == an.ref:
                        continue
                    g = an.groups[i]
                    t = truth[g][r] - truth[ref][r] if scale == "difference" else truth[g][r] / truth[ref][r]
                    tally.add(f"{an.name}|ref_{scale}.{r}|{g}", f"ref_{scale}.{r}", lo[i], hi[i], point[i], t,
                              fcfg.confidence)
        # between-groups disparities and amplification
        truths = statistic_truths(truth, an.groups, usable, an.eligible, an.direction)
        verdicts = set(fair._verdict_keys(an, fcfg, m.labelled, stats))
        for (c, k), t in tested.items():
            if c != "*" or k not in truths:
                continue
            point = float(obs[("*", k)])
            tally.add(f"{an.name}|{k}|reported", k, *t.interval, point, truths[k], t.coverage)
            if ("*", k) in verdicts:  # filed simultaneous over the family; its own 95% interval too
                lo95, hi95 = stats[("*", k)].interval(1 - fcfg.confidence)
                tally.add(f"{an.name}|{k}|95%", k, lo95, hi95, point, truths[k], fcfg.confidence)
                prefix = "bias_amplification" if k in ("biasamp", "df_amplification") else "fairness"
                verdict_metrics[f"{prefix}.{an.name}.{k}"] = (an.name, k)
                is_null = abs(truths[k] - stats[("*", k)].null) < 1e-12
                null[(an.name, k)] = is_null
                events[f"null:{an.name}|{k}"] += int(is_null)
                events["verdict_evaluations"] += 1
                lo_r, hi_r = t.interval
                excludes = bool(lo_r > stats[("*", k)].null or hi_r < stats[("*", k)].null)
                if bool(t.significant) != excludes:  # the verdict's test and the filed interval disagree
                    events[f"disagree:{an.name}|{k}"] += 1
                    events["verdicts_test_interval_disagree"] += 1
                    events[f"disagree_{'significant_interval_has_null' if t.significant else 'excluded_not_significant'}"] += 1
                if t.significant:
                    events[f"significant:{an.name}|{k}"] += 1
                    events[f"set_significant:{an.name}"] = 1
                    events["any_significant"] = 1
                    if is_null:
                        events[f"set_null_rejected:{an.name}"] = 1
                        events["any_null_rejected"] = 1
    # performance (percentile bootstrap of the performance check)
    for k in PERFORMANCE_METRICS:
        point = pres.metrics.get(f"performance.{k}")
        lo, hi = pres.metrics.get(f"performance.{k}.ci_low"), pres.metrics.get(f"performance.{k}.ci_high")
        if point is None or lo is None or hi is None:
            continue
        tally.add(f"performance|{k}|reported", f"performance.{k}", lo, hi, point, perf_truth[k], pcfg.confidence)
    # findings: verdicts, and every (value, ci) pair filed by either check
    outside = []
    for f in fres.findings + pres.findings:
        if f.ci is not None and f.value is not None and np.isfinite(f.value):
            lo, hi = f.ci
            scale = TOL * max(1.0, abs(f.value))
            if f.value < lo - scale or f.value > hi + scale:
                outside.append({"check": f.check, "metric": f.metric, "value": f.value, "ci": list(f.ci)})
        events[f"findings_with_ci:{f.check}"] += int(f.ci is not None and f.value is not None)
        events[f"findings_outside_ci:{f.check}"] += int(bool(outside and outside[-1]["metric"] == f.metric))
        if f.metric in verdict_metrics and f.status.value in ("warn", "fail"):
            name, k = verdict_metrics[f.metric]
            events[f"{f.status.value}:{name}|{k}"] += 1
            for tag in ("alarm", f.status.value) + (("null_alarm",) if null[(name, k)] else ()):
                events[f"any_{tag}"] = 1
                events[f"set_{tag}:{name}"] = 1
    return {"tally": tally, "events": events, "finding_point_outside": outside, "family_size": m.family.size,
            "eligible": eligible_info, "fairness_seconds": fair_s, "performance_seconds": perf_s}


def _run_chunk(args: tuple[int, list[int], dict[str, float]]) -> dict[str, Any]:
    index, seeds, perf_truth = args
    logging.getLogger().setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    sc = scenarios()[index]
    pop = Population.of(sc)
    group_truth = {attrs: pop.groups(attrs) for attrs in _analysis_attrs(sc)}
    out = _empty()
    with tempfile.TemporaryDirectory(prefix="bench-calibration-") as d:
        for seed in seeds:
            r = _redraw(pop, group_truth, perf_truth, index * 1_000_003 + seed, Path(d))
            out["tally"].merge(r["tally"])
            out["redraws"] += 1
            out["events"].update(r["events"])
            out["finding_point_outside"] += r["finding_point_outside"][:5]
            out["family_size"].add(r["family_size"])
            out["eligible_counts"][json.dumps(r["eligible"], sort_keys=True)] += 1
            out["fairness_seconds"] += r["fairness_seconds"]
            out["performance_seconds"] += r["performance_seconds"]
    return {"index": index, **out}


def _empty() -> dict[str, Any]:
    return {"tally": Tally(), "redraws": 0, "events": Counter(), "finding_point_outside": [], "family_size": set(),
            "eligible_counts": Counter(), "fairness_seconds": 0.0, "performance_seconds": 0.0}


def _analysis_attrs(sc: Scenario) -> list[tuple[str, ...]]:
    attrs = list(sc.attributes)
    singles = [(a,) for a in attrs]
    if sc.intersections == "pairs":
        return singles + list(itertools.combinations(attrs, 2))
    if sc.intersections == "none":
        return singles
    return singles + [tuple(c) for c in sc.intersections]


def _truth_check(pop: Population, exact: dict[str, float], rows: int, seed: int = 1) -> dict[str, Any]:
    """Largest |simulated - analytic| over the performance metrics and the per-group rates, on `rows` rows."""
    from audit.metrics.performance import binary_metrics
    from scipy.special import expit
    frame, cell = pop.draw_cells(np.random.default_rng(seed), rows)
    s = expit(frame["logit"].to_numpy())
    y, yhat = frame["label"].to_numpy(), (s > 0.5).astype(int)
    sim = binary_metrics(y, s, yhat)
    perf_err = {k: abs(sim[k] - exact[k]) for k in PERFORMANCE_METRICS}
    truth = pop.groups(tuple(pop.attrs))
    rate_err = 0.0
    for g, t in truth.items():
        m = cell == pop.cells.index(tuple(g.split("*")))
        sel = yhat[m].mean()
        tpr = yhat[m & (y == 1)].mean()
        rate_err = max(rate_err, abs(sel - t["selection_rate"]) / math.sqrt(t["selection_rate"] * (1 - t["selection_rate"]) / m.sum()),
                       abs(tpr - t["tpr"]) / math.sqrt(t["tpr"] * (1 - t["tpr"]) / (m & (y == 1)).sum()))
    return {"rows": rows, "max_abs_error_performance": max(perf_err.values()),
            "abs_error_performance": perf_err, "max_z_group_rates_finest_cells": round(rate_err, 2)}


# --- the whole study --------------------------------------------------------------------------------

def _wilson(k: int, n: int) -> tuple[float, float]:
    from audit.metrics.inference import wilson, z_for
    lo, hi = wilson(np.array([k]), np.array([n]), z_for(0.05))
    return float(lo[0]), float(hi[0])


def run(redraws: int = 200, workers: int | None = None, truth_rows: int = TRUTH_CHECK_ROWS,
        only: list[str] | None = None) -> dict[str, Any]:
    t_start = time.perf_counter()
    logging.getLogger().setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    all_sc = scenarios()
    chosen = [i for i, sc in enumerate(all_sc) if not only or sc.name in only]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = workers or max(1, min(2, cores))
    pops = {i: Population.of(all_sc[i]) for i in chosen}
    t0 = time.perf_counter()
    perf_truth = {i: pops[i].performance() for i in chosen}
    truth_seconds = time.perf_counter() - t0
    # a few chunks per worker and scenario keep every core busy to the end
    n_chunks = max(1, 2 * workers)
    jobs = [(i, list(range(redraws))[c::n_chunks], perf_truth[i]) for i in chosen for c in range(n_chunks)]
    jobs = [j for j in jobs if j[1]]
    t0 = time.perf_counter()
    if workers > 1:
        import multiprocessing as mp
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            parts = list(pool.map(_run_chunk, jobs))
    else:
        parts = [_run_chunk(j) for j in jobs]
    study_seconds = time.perf_counter() - t0
    merged: dict[int, dict[str, Any]] = {}
    for p in parts:
        m = merged.setdefault(p["index"], _empty())
        m["tally"].merge(p["tally"])
        for k in ("redraws", "fairness_seconds", "performance_seconds"):
            m[k] += p[k]
        m["events"].update(p["events"])
        m["eligible_counts"].update(p["eligible_counts"])
        m["finding_point_outside"] += p["finding_point_outside"]
        m["family_size"] |= p["family_size"]
    out_scenarios = [_scenario_report(all_sc[i], merged[i], perf_truth[i]) for i in chosen]
    t0 = time.perf_counter()
    truth_check = {all_sc[i].name: _truth_check(pops[i], perf_truth[i], truth_rows) for i in chosen} if truth_rows else {}
    truth_check_seconds = time.perf_counter() - t0
    return {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "redraws": redraws,
        "workers": workers, "cpu_count": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2),
        "seconds": round(time.perf_counter() - t_start, 1), "study_seconds": round(study_seconds, 1),
        "truth_seconds": round(truth_seconds, 1), "truth_check_seconds": round(truth_check_seconds, 1),
        "targets": {"coverage_every_fairness_interval": COVERAGE_TARGET, "family_wise_false_alarm": FALSE_ALARM_TARGET,
                    "point_outside_interval": 0},
        "chance_below_target": _chance_below(redraws),
        "summary": _summary(out_scenarios), "truth_check": truth_check, "scenarios": out_scenarios}


def _chance_below(n: int, nominal: float = 0.95) -> float:
    """P(observed coverage < COVERAGE_TARGET) for an interval whose true coverage is exactly `nominal`:
    the share of intervals expected below the target by chance alone at this many redraws."""
    from scipy.stats import binom
    return round(float(binom.cdf(math.ceil(COVERAGE_TARGET * n) - 1, n, nominal)), 4)


def _scenario_report(sc: Scenario, m: dict[str, Any], perf_truth: dict[str, float]) -> dict[str, Any]:
    n, ev = m["redraws"], m["events"]
    intervals = []
    for key, r in m["tally"].rows.items():
        analysis, stat, which = key.split("|")
        lo, hi = _wilson(r["covered"], r["n"]) if r["n"] else (None, None)
        intervals.append({
            "analysis": analysis, "statistic": stat, "interval": which, "kind": r["kind"],
            "n": r["n"], "undefined": r["undefined"], "nominal": round(r["nominal"], 6),
            "coverage": round(r["covered"] / r["n"], 4) if r["n"] else None,
            "coverage_ci": [round(lo, 4), round(hi, 4)] if r["n"] else None,
            "truth_above_interval": r["above"], "truth_below_interval": r["below"],
            "point_outside": r["point_outside"],
            "mean_width": round(r["width"] / r["n"], 5) if r["n"] else None,
            "mean_truth": round(r["truth"] / r["n"], 5) if r["n"] else None})
    intervals.sort(key=lambda x: (x["coverage"] if x["coverage"] is not None else 2, x["analysis"], x["statistic"]))
    fairness_iv = [x for x in intervals if x["analysis"] != "performance" and x["n"]]
    # pooled coverage per kind of interval (over groups and attribute sets): a tighter estimate than per interval
    pooled: dict[str, list[Any]] = defaultdict(lambda: [0, 0, 0, None])
    for key, r in m["tally"].rows.items():
        analysis, stat, which = key.split("|")
        kind = _kind(r["kind"], analysis, which)
        pooled[kind][0] += r["covered"]
        pooled[kind][1] += r["n"]
        pooled[kind][2] += 1
        if r["n"]:
            cov = r["covered"] / r["n"]
            pooled[kind][3] = cov if pooled[kind][3] is None else min(pooled[kind][3], cov)
    by_kind = {k: {"intervals": c, "coverage": round(cov / tot, 4) if tot else None,
                   "coverage_ci": [round(v, 4) for v in _wilson(cov, tot)] if tot else None,
                   "min_single": None if low is None else round(low, 4)}
               for k, (cov, tot, c, low) in sorted(pooled.items(), key=lambda kv: _kind_order(kv[0]))}
    sets = sorted({k.split(":", 1)[1] for k in ev if k.startswith(("set_", "null:"))} - {""})
    sets = sorted({s.split("|")[0] for s in sets})
    verdict_stats = sorted({k.split(":", 1)[1] for k in ev if k.startswith("null:")})
    tracked = [x for x in intervals if any(x["analysis"] == a and x["interval"] == g for a, g in sc.tracked)]
    return {
        "name": sc.name, "description": sc.description, "fair": sc.fair, "rows": sc.rows, "redraws": n,
        "attributes": sc.attributes,
        "base_effects": {"&".join(f"{a}={v}" for a, v in k): e for k, e in sc.base_effects.items()},
        "model_effects": {"&".join(f"{a}={v}" for a, v in k): e for k, e in sc.model_effects.items()},
        "analyses": ["*".join(a) for a in _analysis_attrs(sc)], "family_size": sorted(m["family_size"]),
        "eligible_groups_per_analysis": dict(m["eligible_counts"].most_common()),
        "performance_truth": perf_truth,
        "false_alarm": {
            # the verdict family: any statistic significant after the correction / any warn or fail finding
            "any_significant": _rate(ev["any_significant"], n),
            "any_true_null_significant": _rate(ev["any_null_rejected"], n),
            "any_warn_or_fail": _rate(ev["any_alarm"], n),
            "any_true_null_warn_or_fail": _rate(ev["any_null_alarm"], n),
            "any_fail": _rate(ev["any_fail"], n),
            "per_attribute_set": {a: {"any_significant": _rate(ev[f"set_significant:{a}"], n),
                                      "any_true_null_significant": _rate(ev[f"set_null_rejected:{a}"], n),
                                      "any_warn_or_fail": _rate(ev[f"set_alarm:{a}"], n),
                                      "any_fail": _rate(ev[f"set_fail:{a}"], n)} for a in sets}},
        "verdict_test_interval_agreement": {
            "verdict_statistics_evaluated": ev["verdict_evaluations"],
            "disagree": ev["verdicts_test_interval_disagree"],
            "significant_but_filed_interval_contains_null": ev["disagree_significant_interval_has_null"],
            "filed_interval_excludes_null_but_not_significant": ev["disagree_excluded_not_significant"]},
        "verdict_statistics": {k: {"truth_is_null": round(ev[f"null:{k}"] / n, 4),
                                   "significant": round(ev[f"significant:{k}"] / n, 4),
                                   "test_and_filed_interval_disagree": round(ev[f"disagree:{k}"] / n, 4),
                                   "warn": round(ev[f"warn:{k}"] / n, 4), "fail": round(ev[f"fail:{k}"] / n, 4)}
                               for k in verdict_stats},
        "coverage_by_kind": by_kind,
        "tracked_groups": tracked,
        "fairness_min_coverage": min((x["coverage"] for x in fairness_iv), default=None),
        "fairness_intervals_below_target": sum(x["coverage"] < COVERAGE_TARGET for x in fairness_iv),
        "fairness_intervals_below_target_significantly": sum(x["coverage_ci"][1] < COVERAGE_TARGET for x in fairness_iv),
        "fairness_intervals": len(fairness_iv),
        "point_outside_interval": sum(x["point_outside"] for x in intervals),
        "point_outside_interval_fairness": sum(x["point_outside"] for x in fairness_iv),
        "findings_with_ci": {c: ev[f"findings_with_ci:{c}"] for c in ("fairness", "performance")},
        "findings_outside_ci": {c: ev[f"findings_outside_ci:{c}"] for c in ("fairness", "performance")},
        "finding_point_outside_ci_examples": m["finding_point_outside"][:10],
        "seconds_fairness_check": round(m["fairness_seconds"], 1),
        "seconds_performance_check": round(m["performance_seconds"], 1),
        "intervals": intervals}


def _kind(kind: str, analysis: str, which: str) -> str:
    return kind + ("" if analysis == "performance" or which not in ("reported", "95%") else f" [{which}]")


def _kind_order(kind: str) -> tuple:
    head = kind.split(" ")[0]
    rank = (0 if head.startswith("group.") else 1 if head.startswith("ref_") else
            3 if head in ("biasamp", "df_amplification", "df_epsilon_labels", "df_epsilon_predictions") else
            4 if head.startswith("performance.") else 2)
    return rank, kind


def _rate(k: int, n: int) -> dict[str, Any]:
    lo, hi = _wilson(k, n) if n else (None, None)
    return {"count": k, "rate": round(k / n, 4) if n else None, "ci": [round(lo, 4), round(hi, 4)] if n else None}


def _summary(scs: list[dict]) -> dict[str, Any]:
    fair_iv = [(s["name"], x) for s in scs for x in s["intervals"] if x["analysis"] != "performance" and x["n"]]
    worst = sorted(fair_iv, key=lambda t: t[1]["coverage"])
    fa = {s["name"]: s["false_alarm"]["any_warn_or_fail"]["rate"] for s in scs if s["fair"]}
    fs = {s["name"]: s["false_alarm"]["any_true_null_significant"]["rate"] for s in scs}
    kinds = sorted(((sc["name"], k, v) for sc in scs for k, v in sc["coverage_by_kind"].items()
                    if not k.startswith("performance.") and v["coverage"] is not None), key=lambda t: t[2]["coverage"])
    return {
        "fairness_min_pooled_coverage": kinds[0][2]["coverage"] if kinds else None,
        "fairness_min_pooled_coverage_at": f"{kinds[0][0]}: {kinds[0][1]}" if kinds else None,
        "fairness_intervals": len(fair_iv),
        "fairness_min_coverage": worst[0][1]["coverage"] if worst else None,
        "fairness_min_coverage_at": f"{worst[0][0]}: {worst[0][1]['analysis']} {worst[0][1]['statistic']} "
                                    f"[{worst[0][1]['interval']}]" if worst else None,
        "fairness_intervals_below_target": sum(x["coverage"] < COVERAGE_TARGET for _, x in fair_iv),
        "fairness_intervals_below_target_significantly": sum(x["coverage_ci"][1] < COVERAGE_TARGET for _, x in fair_iv),
        "worst_fairness_intervals": [{"scenario": n, **{k: x[k] for k in ("analysis", "statistic", "interval", "nominal",
                                                                           "coverage", "coverage_ci", "mean_truth")}}
                                     for n, x in worst[:30]],
        "false_alarm_any_warn_or_fail_fair_scenarios": fa,
        "family_wise_error_true_nulls": fs,
        "false_alarm_meets_target": all(v <= FALSE_ALARM_TARGET for v in fa.values()),
        "point_outside_interval_fairness": sum(s["point_outside_interval_fairness"] for s in scs),
        "point_outside_interval_all": sum(s["point_outside_interval"] for s in scs),
        "findings_outside_ci": {c: sum(s["findings_outside_ci"][c] for s in scs) for c in ("fairness", "performance")},
        "findings_with_ci": {c: sum(s["findings_with_ci"][c] for s in scs) for c in ("fairness", "performance")},
        "performance_coverage": {s["name"]: {x["statistic"]: x["coverage"] for x in s["intervals"]
                                             if x["analysis"] == "performance"} for s in scs},
        "coverage_by_kind_min": _min_by_kind(scs),
    }


def _min_by_kind(scs: list[dict]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in scs:
        for k, v in s["coverage_by_kind"].items():
            if v["coverage"] is not None and (k not in out or v["coverage"] < out[k]["coverage"]):
                out[k] = {"scenario": s["name"], **v}
    return out


# --- output -----------------------------------------------------------------------------------------

def _pct(v: float | None) -> str:
    return "   n/a" if v is None else f"{100 * v:5.1f}%"


def _ci(ci: list[float] | None) -> str:
    return "" if not ci else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def table(out: dict[str, Any], worst: int = 25) -> str:
    s, scs = out["summary"], out["scenarios"]
    lines = [(f"calibration: {out['redraws']} redraws per scenario, {out['seconds']:.0f} s on {out['workers']} "
              f"worker(s) (redraws {out['study_seconds']:.0f} s, load {out['load_average_1min']})"),
             (f"fairness intervals, pooled by kind: lowest coverage {_pct(s['fairness_min_pooled_coverage']).strip()} "
              f"({s['fairness_min_pooled_coverage_at']})"),
             (f"fairness intervals: {s['fairness_intervals']}; lowest coverage {_pct(s['fairness_min_coverage']).strip()} "
              f"({s['fairness_min_coverage_at']}); below {COVERAGE_TARGET:.0%}: {s['fairness_intervals_below_target']} "
              f"(whole binomial CI below: {s['fairness_intervals_below_target_significantly']}; an exact 95% interval "
              f"shows < {COVERAGE_TARGET:.0%} by chance with probability {out['chance_below_target']:.3f})"),
             (f"point estimate outside its own interval: fairness {s['point_outside_interval_fairness']}, all "
              f"{s['point_outside_interval_all']}; findings whose value is outside their ci: "
              + ", ".join(f"{c} {s['findings_outside_ci'][c]} of {s['findings_with_ci'][c]}" for c in s["findings_with_ci"])),
             "", "False alarms (share of redraws; 95% CI)",
             (f"  {'scenario':<20} {'family':>6} {'any warn/fail':>22} {'true null signif.':>22} "
              f"{'true null w/f':>13} {'any signif.':>11}  worst attribute set (warn/fail)")]
    for sc in scs:
        fa = sc["false_alarm"]
        ws = max(fa["per_attribute_set"].items(), key=lambda kv: kv[1]["any_warn_or_fail"]["rate"] or 0,
                 default=(None, None))
        lines.append(f"  {sc['name']:<20} {'/'.join(map(str, sc['family_size'])):>6} "
                     f"{_pct(fa['any_warn_or_fail']['rate']) + ' ' + _ci(fa['any_warn_or_fail']['ci']):>22} "
                     f"{_pct(fa['any_true_null_significant']['rate']) + ' ' + _ci(fa['any_true_null_significant']['ci']):>22} "
                     f"{_pct(fa['any_true_null_warn_or_fail']['rate']):>13} {_pct(fa['any_significant']['rate']):>11}  "
                     + (f"{ws[0]} {_pct(ws[1]['any_warn_or_fail']['rate']).strip()}" if ws[0] else ""))
    lines.append("  verdicts whose test and filed interval disagree (significant, but the interval contains the "
                 "null / the reverse), of all verdict statistics evaluated: " + ", ".join(
                     f"{sc['name']} {sc['verdict_test_interval_agreement']['significant_but_filed_interval_contains_null']}"
                     f"/{sc['verdict_test_interval_agreement']['filed_interval_excludes_null_but_not_significant']} of "
                     f"{sc['verdict_test_interval_agreement']['verdict_statistics_evaluated']}" for sc in scs))
    kinds: list[str] = []
    for sc in scs:
        kinds += [k for k in sc["coverage_by_kind"] if k not in kinds]
    kinds.sort(key=_kind_order)
    lines += ["", "Coverage by kind of interval: pooled over groups and attribute sets (lowest single interval)",
              f"  {'kind':<42}" + "".join(f"{sc['name'][:15]:>16}" for sc in scs)]
    for k in kinds:
        cells = []
        for sc in scs:
            v = sc["coverage_by_kind"].get(k)
            cells.append(f"{_pct(v['coverage']).strip()} ({_pct(v['min_single']).strip()})" if v and v["coverage"] is not None
                         else "-")
        lines.append(f"  {k:<42}" + "".join(f"{c:>16}" for c in cells))
    lines += ["", f"Worst {worst} single fairness intervals",
              f"  {'scenario':<19} {'interval':<52} {'nominal':>7} {'cover':>6} {'95% CI':>13} {'lo/hi':>7} {'truth':>8}"]
    rows = sorted(((sc["name"], x) for sc in scs for x in sc["intervals"] if x["n"] and x["analysis"] != "performance"),
                  key=lambda t: t[1]["coverage"])
    for name, x in rows[:worst]:
        what = f"{x['analysis']} {x['statistic']} {x['interval']}"
        lines.append(f"  {name:<19} {what[:52]:<52} {x['nominal']:>7.4f} {_pct(x['coverage']):>6} "
                     f"{_ci(x['coverage_ci']):>13} {str(x['truth_below_interval']) + '/' + str(x['truth_above_interval']):>7} "
                     f"{x['mean_truth']:>8.4f}")
    for sc in scs:
        if sc["tracked_groups"]:
            t = sc["tracked_groups"]
            lo = min(t, key=lambda x: x["coverage"])
            lines.append(f"  tracked in {sc['name']}: {len(t)} intervals of {', '.join(sorted({x['interval'] for x in t}))}; "
                         f"lowest {_pct(lo['coverage']).strip()} ({lo['analysis']} {lo['statistic']} {lo['interval']})")
    return "\n".join(lines)


def compact(out: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of a study (for benchmarks/run.py's latest.json); the full tables stay in the file."""
    keep = ("name", "fair", "rows", "redraws", "family_size", "fairness_min_coverage", "fairness_intervals",
            "fairness_intervals_below_target", "fairness_intervals_below_target_significantly",
            "point_outside_interval_fairness", "findings_outside_ci", "verdict_test_interval_agreement")
    return {**{k: out[k] for k in ("generated_at", "redraws", "workers", "seconds", "chance_below_target")},
            "summary": {k: v for k, v in out["summary"].items() if k != "worst_fairness_intervals"},
            "worst_fairness_intervals": out["summary"]["worst_fairness_intervals"][:10],
            "scenarios": [{**{k: sc[k] for k in keep},
                           "false_alarm": {k: v["rate"] for k, v in sc["false_alarm"].items() if k != "per_attribute_set"},
                           "performance_coverage": {x["statistic"]: x["coverage"] for x in sc["intervals"]
                                                    if x["analysis"] == "performance"}}
                          for sc in out["scenarios"]]}


def write(out: dict[str, Any], path: Path | None = None, quick: bool = False) -> Path:
    path = path or (RESULTS.with_name("calibration-quick.json") if quick else RESULTS)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=_json_default) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--redraws", type=int, default=None, help="redraws per scenario (default 200, --quick 50)")
    ap.add_argument("--quick", action="store_true", help="50 redraws per scenario, 200,000-row truth check")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: up to 2)")
    ap.add_argument("--only", nargs="*", help="scenario names")
    ap.add_argument("--out", type=Path, default=None, help="result file (default benchmarks/results/calibration.json; "
                    "--quick: calibration-quick.json)")
    ap.add_argument("--worst", type=int, default=25, help="rows per scenario in the printed table")
    opts = ap.parse_args(argv)
    redraws = opts.redraws or (50 if opts.quick else 200)
    out = run(redraws, opts.workers, 200_000 if opts.quick else TRUTH_CHECK_ROWS, opts.only)
    path = write(out, opts.out, opts.quick)
    print(table(out, opts.worst))
    print(f"\nwritten: {path}")
    return 0


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)


if __name__ == "__main__":
    raise SystemExit(main())
