"""Intervals and tests for group disparities: pinned against statsmodels, checked by simulation, and
built to fail where the old percentile bootstrap of a max/min failed (near-zero truths, small groups)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.checks import _fairness_inference as fic
from audit.metrics import amplification as amp
from audit.metrics import fairness as fm
from audit.metrics import fairness_inference as fi
from audit.metrics import inference as inf


def test_wilson_and_newcombe_equal_statsmodels():
    from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint
    x1, n1 = np.array([0, 3, 17, 40, 12]), np.array([30, 31, 45, 40, 400])
    x2, n2 = np.array([5, 0, 20, 39, 1]), np.array([50, 33, 45, 41, 35])
    for alpha in (0.05, 0.001):
        z = inf.z_for(alpha)
        lo, hi = inf.wilson(x1, n1, z)
        slo, shi = proportion_confint(x1, n1, alpha=alpha, method="wilson")
        np.testing.assert_allclose(lo, slo, atol=1e-12)
        np.testing.assert_allclose(hi, shi, atol=1e-12)
        dlo, dhi = inf.RateDifferences(x1, n1, x2, n2).interval(z)
        for k in range(len(x1)):
            want = confint_proportions_2indep(x1[k], n1[k], x2[k], n2[k], method="newcomb", compare="diff", alpha=alpha)
            assert (dlo[k], dhi[k]) == pytest.approx(want, abs=1e-12)


def test_holm_and_bonferroni_equal_statsmodels():
    from statsmodels.stats.multitest import multipletests
    p = np.array([0.01, 0.04, 0.03, 0.2, 0.0001, 0.5])
    for ours, theirs in (("holm", "holm"), ("bonferroni", "bonferroni")):
        np.testing.assert_allclose(inf.adjust(p, ours), multipletests(p, method=theirs)[1], atol=1e-15)


def _draw_rates(rng, n, p, sims):
    return rng.binomial(n[None, :], p[None, :], size=(sims, len(n)))


@pytest.mark.parametrize("p,n", [
    ([0.30, 0.30, 0.30, 0.30, 0.30], [2000, 800, 300, 60, 35]),     # fair: truth 0 (the old method covered 0 %)
    ([0.30, 0.33, 0.25, 0.40, 0.30], [2000, 800, 300, 60, 35]),     # unfair, a 35-row group decides the max
    ([0.02, 0.03, 0.02], [500, 200, 40]),                          # rates near 0: ratio and difference
])
def test_between_groups_intervals_cover_the_truth(p, n):
    rng = np.random.default_rng(7)
    p, n = np.array(p), np.array(n)
    truth_d = p.max() - p.min()
    truth_r = p.min() / p.max()
    x = _draw_rates(rng, n, p, 400)
    cover_d = cover_r = 0
    for row in x:
        d, q = fi.pair_comparisons(row.astype(float), n.astype(float), np.ones(len(n), bool))
        dlo, dhi = inf.max_abs_statistic([d], "").interval(0.05)
        rlo, rhi = inf.ratio_statistic([q], "").interval(0.05)
        est = fm.between_groups(row / n, np.ones(len(n), bool))
        assert dlo - 1e-12 <= est[0] <= dhi + 1e-12 and rlo - 1e-12 <= est[1] <= rhi + 1e-12
        cover_d += dlo <= truth_d <= dhi
        cover_r += rlo <= truth_r <= rhi
    assert cover_d / len(x) >= 0.95 and cover_r / len(x) >= 0.95, (cover_d, cover_r)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(1, 60)), min_size=2, max_size=6),
       st.floats(1e-6, 0.5))
def test_p_value_is_dual_to_the_interval(cells, level):
    x = np.array([min(a, b) for a, b in cells], dtype=float)
    n = np.array([b for _, b in cells], dtype=float)
    d, q = fi.pair_comparisons(x, n, np.ones(len(x), bool))
    for stat in (inf.max_abs_statistic([d], ""), inf.ratio_statistic([q], "")):
        lo, hi = stat.interval(level)
        excludes = lo > stat.null or hi < stat.null
        p = stat.p_value
        if abs(p - level) > 1e-6 * level:  # away from the boundary, "p <= level" and "excludes" agree
            assert (p <= level) == excludes, (p, level, lo, hi)


def test_biasamp_standard_error_matches_the_row_bootstrap():
    rng = np.random.default_rng(3)
    n = 4000
    g = rng.choice(3, n, p=[0.6, 0.3, 0.1])
    y = (rng.random(n) < 0.3 + 0.1 * (g == 0)).astype(int)
    yhat = np.where(rng.random(n) < 0.8, y, (rng.random(n) < 0.45).astype(int))
    C = np.zeros((3, 2, 2))
    np.add.at(C, (g, y, yhat), 1)
    direction = amp.training_direction(C.sum(axis=-1))
    el = np.ones(3, bool)
    est = float(amp.biasamp_attribute_to_task(C, direction, el))
    stat = fi.biasamp_statistic(C, direction, el, est)
    lo, hi = stat.interval(0.05)
    se = (hi - lo) / (2 * inf.z_for(0.05))
    boot = []
    for _ in range(600):
        i = rng.integers(0, n, n)
        B = np.zeros((3, 2, 2))
        np.add.at(B, (g[i], y[i], yhat[i]), 1)
        boot.append(float(amp.biasamp_attribute_to_task(B, direction, el)))
    assert se == pytest.approx(np.std(boot), rel=0.1)
    assert lo < est < hi


def _fair_family(rng):
    """One audit's family on fair data: 3 attributes' selection-rate differences and ratios."""
    stats = {}
    for a, sizes in enumerate(([900, 600], [1000, 300, 150, 50], [400, 400, 300, 200, 100, 40, 35])):
        n = np.array(sizes, dtype=float)
        x = rng.binomial(n.astype(int), 0.3).astype(float)
        d, q = fi.pair_comparisons(x, n, np.ones(len(n), bool))
        stats[(a, "d")], stats[(a, "r")] = inf.max_abs_statistic([d], ""), inf.ratio_statistic([q], "")
    return stats


def test_family_wise_false_alarms_are_controlled_on_fair_data():
    rng = np.random.default_rng(11)
    alarms = {"holm": [], "none": []}
    for _ in range(400):
        stats = _fair_family(rng)
        for c in alarms:
            _, tested = fic.settle(stats, list(stats), 0.95, c, ["a", "b", "c"])
            alarms[c].append(any(t.significant for t in tested.values()))
    rate = {c: np.mean(v) for c, v in alarms.items()}
    assert rate["holm"] <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 400), rate
    assert rate["none"] > rate["holm"]  # the test can tell: without the correction more alarms are raised


def test_verdict_needs_an_established_disparity():
    assert fic.verdict((0.0, 0.3), 0.1, False, significant=False) == "pass"
    assert fic.verdict((0.02, 0.3), 0.1, False, significant=True) == "warn"
    assert fic.verdict((0.12, 0.3), 0.1, False, significant=True) == "fail"
    assert fic.verdict((0.02, 0.08), 0.1, False, significant=True) == "pass"
    assert fic.verdict((0.3, 0.7), 0.8, True, significant=True) == "fail"
    assert fic.verdict((0.7, 0.95), 0.8, True, significant=True) == "warn"
