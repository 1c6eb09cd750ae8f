"""Weak-slice discovery: statistics cross-checked with scipy, a planted weak slice is found by a real
model audit, and a model whose errors are independent of the features yields no more discoveries
than the false-discovery rate allows."""
from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from audit import figures
from audit.metrics.slices import RowOutcomes, discretise, find_weak_slices, slice_masks, wilson_interval

from conftest import run_synthetic_audit

NUMERIC = ["x1", "x2", "x3"]
CATEGORICAL = ["c1", "c2"]


def make_data(rng: np.random.Generator, n: int, plant: bool = True) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Labels follow 1.5*x1 + x2, except inside the planted slice c1 == 'e' & x3 > 0.5 where the
    relation is reversed: a linear model cannot represent it and fails there."""
    X = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "x3": rng.normal(size=n),
                      "c1": rng.choice(list("abcde"), size=n, p=[0.3, 0.25, 0.2, 0.1, 0.15]),
                      "c2": rng.choice(["u", "v", "w"], size=n)})
    logit = 1.5 * X.x1.to_numpy() + X.x2.to_numpy()
    planted = ((X.c1 == "e") & (X.x3 > 0.5)).to_numpy() if plant else np.zeros(n, bool)
    logit = np.where(planted, -logit, logit)
    y = (logit + rng.logistic(size=n) * 0.5 > 0).astype(int)
    return X, y, planted


def linear_model() -> Pipeline:
    pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL), ("num", StandardScaler(), NUMERIC)])
    return Pipeline([("pre", pre), ("lr", LogisticRegression(max_iter=1000))])


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(7)
    X, y, _ = make_data(rng, 4000)
    return linear_model().fit(X, y)


def outcomes_for(model, X: pd.DataFrame, y: np.ndarray) -> RowOutcomes:
    score = model.predict_proba(X)[:, 1]
    return RowOutcomes.binary(y, (score >= 0.5).astype(int), score)


# -- statistics --------------------------------------------------------------------------------

@pytest.mark.parametrize("k,n,conf", [(0, 10, 0.95), (3, 40, 0.95), (37, 40, 0.9), (500, 1000, 0.99), (1, 1, 0.95)])
def test_wilson_interval_matches_scipy(k, n, conf):
    lo, hi = wilson_interval(k, n, conf)
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=conf, method="wilson")
    assert float(lo) == pytest.approx(ref.low, abs=1e-12)
    assert float(hi) == pytest.approx(ref.high, abs=1e-12)


def test_slice_tests_match_scipy_and_direct_computation(trained):
    rng = np.random.default_rng(11)
    X, y, _ = make_data(rng, 3000)
    out = outcomes_for(trained, X, y)
    res = find_weak_slices(X, out, metrics=["error_rate", "false_negative_rate", "calibration_gap"],
                           max_features=1, min_size=30, min_difference=0, min_effect=0)
    assert res.n_tests == len(res.tests) > 20
    masks = slice_masks(res.discretised, res.tests)
    err, pos, fn = out.error.astype(int), out.positive.astype(int), out.false_negative.astype(int)
    score = out.positive - out.residual
    checked = set()
    for i, t in enumerate(res.tests.itertuples()):
        s = masks[i]
        if t.metric == "error_rate":
            table = [[err[s].sum(), (1 - err[s]).sum()], [err[~s].sum(), (1 - err[~s]).sum()]]
            assert t.p == pytest.approx(stats.fisher_exact(table, alternative="greater").pvalue, rel=1e-9, abs=1e-12)
            assert t.value == pytest.approx(err[s].mean())
        elif t.metric == "false_negative_rate":
            sp, cp = s & (pos == 1), ~s & (pos == 1)
            table = [[fn[sp].sum(), sp.sum() - fn[sp].sum()], [fn[cp].sum(), cp.sum() - fn[cp].sum()]]
            assert t.p == pytest.approx(stats.fisher_exact(table, alternative="greater").pvalue, rel=1e-9, abs=1e-12)
        else:
            r = out.residual
            v = score * (1 - score)
            z = (r[s].mean() - r[~s].mean()) / np.sqrt(v[s].sum() / s.sum() ** 2 + v[~s].sum() / (~s).sum() ** 2)
            assert t.p == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9, abs=1e-12)
            assert t.value == pytest.approx(y[s].mean() - score[s].mean())
        checked.add(t.metric)
    assert checked == {"error_rate", "false_negative_rate", "calibration_gap"}
    np.testing.assert_allclose(res.tests.q, stats.false_discovery_control(res.tests.p.to_numpy(), method="bh"))


def test_discretise_bins_quantiles_point_masses_rare_categories_and_missing():
    rng = np.random.default_rng(3)
    gains = np.where(rng.random(2000) < 0.9, 0.0, rng.exponential(5000, 2000))
    d = discretise(pd.Series(gains, name="gain"), n_bins=4)
    assert d.conditions[0]["label"] == "gain = 0" and (d.codes[gains == 0] == 0).all()
    for code, cond in enumerate(d.conditions[1:], start=1):   # every row satisfies its bin's condition
        vals = gains[d.codes == code]
        assert vals.size and (vals >= cond["low"]).all() and (vals <= cond["high"]).all()
    cats = pd.Series(rng.choice([f"k{i}" for i in range(30)], size=2000).astype(object), name="cat")
    cats[:50] = None
    d = discretise(cats, max_categories=10)
    labels = [c["label"] for c in d.conditions]
    assert "cat = (other)" in labels and "cat (missing)" in labels and len(labels) == 11
    assert (d.codes[:50] == labels.index("cat (missing)")).all() and (d.codes >= 0).all()


# -- discovery ------------------------------------------------------------------------------------

def test_planted_weak_slice_is_found_with_honest_interval(trained):
    rng = np.random.default_rng(21)
    X, y, planted = make_data(rng, 4000)
    out = outcomes_for(trained, X, y)
    res = find_weak_slices(X, out, metrics=["error_rate", "false_negative_rate", "calibration_gap"])
    assert res.groups, "the planted slice was not found"
    top = res.groups[0]
    assert set(top["features"]) == {"c1", "x3"} and "c1 = e" in top["slice"]
    mask = slice_masks(res.discretised, res.weak[res.weak.slice == top["slice"]].head(1))[0]
    assert planted[mask].mean() > 0.8            # the reported rows are (mostly) the planted ones
    err = top["metrics"][0]
    assert err["metric"] == "error_rate" and err["q_value"] < 0.05
    lo, hi = err["ci"]
    assert lo <= out.error[mask].mean() <= hi and lo > res.population["error_rate"] + 0.05
    assert err["ci"][0] <= err["ci_marginal"][0] and err["ci"][1] >= err["ci_marginal"][1]  # FCR-adjusted is wider
    # merged: the parent 'c1 = e' and the neighbouring bins are listed under the planted slice
    related = {r["slice"] for r in top["related"]}
    assert "c1 = e" in related and not any(g["slice"] == "c1 = e" for g in res.groups)
    assert len(res.groups) < res.weak.drop_duplicates("slice").shape[0] / 2


def test_clean_model_false_discoveries_stay_within_the_fdr(trained):
    """Errors drawn independently of the features (error rate) and labels drawn from the model's own
    probabilities (calibration): every null is true, so P(any discovery) <= alpha under BH."""
    any_error = any_calibration = 0
    for rep in range(20):
        rng = np.random.default_rng(1000 + rep)
        X, _, _ = make_data(rng, 2000, plant=False)
        score = trained.predict_proba(X)[:, 1]
        pred = (score >= 0.5).astype(int)
        y_err = pred ^ (rng.random(len(X)) < 0.15)
        res = find_weak_slices(X, RowOutcomes.binary(y_err, pred, score), metrics=["error_rate"],
                               min_difference=0, min_effect=0)
        any_error += res.n_significant > 0
        y_cal = (rng.random(len(X)) < score).astype(int)
        res = find_weak_slices(X, RowOutcomes.binary(y_cal, pred, score), metrics=["calibration_gap"],
                               min_calibration_difference=0, min_effect=0)
        any_calibration += res.n_significant > 0
    # expected <= 1 of 20 at alpha 0.05; P(X >= 4 | Binomial(20, 0.05)) = 0.016
    assert any_error <= 3 and any_calibration <= 3


def test_duplicate_columns_collapse_into_one_problem(trained):
    rng = np.random.default_rng(5)
    X, y, planted = make_data(rng, 3000)
    X["segment"] = np.where(planted, "flagged", "other")
    X["segment_copy"] = X["segment"].map({"flagged": "F", "other": "O"})
    res = find_weak_slices(X, outcomes_for(trained, X.drop(columns=["segment", "segment_copy"]), y),
                           metrics=["error_rate"])
    top = res.groups[0]
    assert top["slice"] in ("segment = flagged", "segment_copy = F")
    related = {r["slice"] for r in top["related"]}
    assert {"segment = flagged", "segment_copy = F"} - {top["slice"]} <= related
    assert any("c1 = e" in s and "x3 in" in s for s in related)   # the pair describing the same rows
    assert not any(g["slice"] in ("segment = flagged", "segment_copy = F") for g in res.groups[1:])


# -- the check inside a real audit ----------------------------------------------------------------

@pytest.fixture(scope="module")
def synthetic_audit(registry, settings, tmp_path_factory):
    rng = np.random.default_rng(99)
    X, y, planted = make_data(rng, 6000)
    model = linear_model().fit(X[:3000], y[:3000])
    df = X.assign(**{"@segment": np.where(planted, "planted", "rest"), "label": y,
                     "split": ["train"] * 3000 + ["test"] * 3000})
    return run_synthetic_audit(settings, registry, tmp_path_factory.mktemp("slices-audit"), "slices-synthetic",
                               model, X[:3000], df, "slices", ["c2"])


def test_slices_check_reports_planted_slice_in_audit(synthetic_audit):
    result, audit_dir = synthetic_audit
    assert result.checks["slices"].status == "completed", result.checks["slices"].error
    m = result.metrics
    assert m["slices.count"] >= 1 and m["slices.tested"] > m["slices.significant"] > 0
    assert m["slices.1.size"] > 100 and m["slices.1.effect"] > 0.5
    assert m["slices.1.error_rate.ci_low"] < m["slices.1.error_rate"] < m["slices.1.error_rate.ci_high"]
    assert m["slices.1.error_rate.ci_low"] > m["slices.1.error_rate.population"] + 0.05
    weak = [f for f in result.findings if f.check == "slices" and f.metric == "slices.1.error_rate"]
    assert len(weak) == 1
    f = weak[0]
    assert f.status.value == "fail" and f.severity.value == "medium"   # gates only at the policy's fail_on
    assert f.group == "@segment = planted" and f.ci[0] > f.threshold
    assert set(f.references) == {"EU-AI-Act Art. 15(1)", "EU-AI-Act Art. 15(3)"}
    for rel in f.evidence:
        assert (audit_dir / rel).is_file() and rel in result.evidence
    fig = next(rel for rel in f.evidence if figures.is_figure(rel))
    assert figures.draw((audit_dir / fig).read_bytes())[:8] == b"\x89PNG\r\n\x1a\n"
    with open(audit_dir / "evidence/slices/weak_slices.csv", newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert any(r["slice"] == "'@segment = planted" for r in rows)       # formula neutralised
    assert not any(r["slice"].startswith(("=", "+", "-", "@")) for r in rows)
    details = json.loads((audit_dir / "audit.json").read_text())["checks"]["slices"]["details"]
    assert details["table"][0]["slice"] == "@segment = planted"
    assert {"ci_low", "ci_high", "value", "size", "effect", "q_value"} <= set(details["table"][0])


def test_regression_slices_use_absolute_error():
    from sklearn.linear_model import LinearRegression
    rng = np.random.default_rng(9)
    X = pd.DataFrame({"x": rng.normal(size=3000), "zone": rng.choice(["n", "s", "e", "w"], size=3000)})
    y = 2 * X.x.to_numpy() + rng.normal(scale=0.5, size=3000)
    y[X.zone == "e"] += rng.normal(scale=3.0, size=int((X.zone == "e").sum()))    # noisy, unpredictable zone
    pred = LinearRegression().fit(X[["x"]], y).predict(X[["x"]])
    res = find_weak_slices(X, RowOutcomes.continuous(y, pred), metrics=["error_rate", "absolute_error"],
                           min_difference=0.5)
    assert res.groups and res.groups[0]["slice"] == "zone = e"
    m = res.groups[0]["metrics"][0]
    err = np.abs(y - pred)[X.zone == "e"]
    assert m["metric"] == "absolute_error" and m["value"] == pytest.approx(err.mean())
    assert m["ci"][0] < err.mean() < m["ci"][1] and m["p_value"] < 1e-6
    rest = np.abs(y - pred)[X.zone != "e"]
    assert m["p_value"] == pytest.approx(stats.ttest_ind(err, rest, equal_var=False, alternative="greater").pvalue,
                                         rel=1e-6)
