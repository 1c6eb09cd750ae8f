"""Perturbation robustness and evasion: perturbations stay plausible, flip rates and evasion results
agree with what a model with a known decision boundary implies, and immutable columns never change."""
from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from audit import figures
from audit.metrics.perturbation import (ColumnRule, build_rules, greedy_evasion, robustness_report, shift_values,
                                        swap_values)

from conftest import run_synthetic_audit


def threshold_model(boundary: float = 0.0) -> LogisticRegression:
    """A real logistic regression on one feature whose decision boundary sits at `boundary`."""
    x = np.linspace(-5, 5, 400)
    return LogisticRegression(C=1e6).fit(pd.DataFrame({"x": x + boundary}), (x > 0).astype(int))


def test_numeric_shift_is_plausible():
    rng = np.random.default_rng(0)
    x = rng.integers(1, 5, size=20_000).astype(float)
    rule = ColumnRule("rate", "numeric", ("shift",), step=0.3, spread=2.0, low=1, high=4, integer=True)
    new = shift_values(x, rule, rng)
    assert new.min() >= 1 and new.max() <= 4 and np.all(new == np.round(new))
    assert np.mean(np.abs(new - x)) == pytest.approx(0.3, abs=0.02)   # randomised rounding keeps the mean step
    cont = ColumnRule("amount", "numeric", ("shift",), step=2.5, spread=25.0, low=0, high=100)
    y = rng.uniform(0, 100, size=5000)
    moved = shift_values(y, cont, rng)
    assert np.allclose(np.abs(moved - y), 2.5) and moved.min() >= 0 and moved.max() <= 100
    rel = ColumnRule("gain", "numeric", ("shift",), step=0.1, relative=True, spread=1.0, low=0, high=1e6)
    g = np.where(rng.random(5000) < 0.9, 0.0, rng.uniform(100, 1000, 5000))
    moved = shift_values(g, rel, rng)
    assert np.all(moved[g == 0] == 0) and np.allclose(np.abs(moved - g)[g > 0], 0.1 * g[g > 0])


def test_category_swaps_go_to_a_neighbour_or_a_frequent_value():
    rng = np.random.default_rng(1)
    levels = ("low", "mid", "high", "top")
    ordered = ColumnRule("band", "categorical", ("swap",), categories=levels, weights=(1, 1, 1, 1), ordered=True)
    x = rng.choice(levels, size=4000).astype(object)
    new = swap_values(x, ordered, rng)
    pos = {c: i for i, c in enumerate(levels)}
    assert all(abs(pos[a] - pos[b]) == 1 for a, b in zip(x, new))
    unordered = ColumnRule("city", "categorical", ("swap",), categories=("A", "B", "C"), weights=(70, 25, 5))
    x = np.array(["C"] * 3000 + [None] * 10, dtype=object)
    new = swap_values(x, unordered, rng)
    assert new[-10:].tolist() == [None] * 10                       # missing stays missing
    counts = pd.Series(new[:-10]).value_counts()
    assert "C" not in counts and counts["A"] / 3000 == pytest.approx(70 / 95, abs=0.03)


def test_flip_rate_matches_the_known_decision_boundary():
    """With the boundary at 0 and a shift of +/-s with a random sign, a row flips iff it lies within
    s of the boundary and the sign points towards it: expected flip rate 0.5 * P(|x| < s)."""
    model = threshold_model()
    rng = np.random.default_rng(2)
    X = pd.DataFrame({"x": rng.uniform(-3, 3, size=20_000)})
    rules, skipped = build_rules(X, {"x": "numeric"}, immutable=set(), step_fraction=0.1, missing=False)
    step = rules[0].step
    assert step == pytest.approx(0.1 * (np.percentile(X.x, 75) - np.percentile(X.x, 25)))
    rep = robustness_report(model.predict_proba, X, rules, rng, confidence=0.99)
    expected = 0.5 * np.mean(np.abs(X.x) < step)
    row = rep.features[0]
    assert row["feature"] == "x" and row["kind"] == "shift"
    assert row["ci_low"] <= expected <= row["ci_high"]
    assert rep.joint["ci_low"] <= expected <= rep.joint["ci_high"]
    assert rep.joint["flips_to_positive"] + rep.joint["flips_to_negative"] == rep.joint["flips"]


def test_greedy_evasion_finds_the_boundary_within_budget():
    model = threshold_model(boundary=0.3)
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"x": rng.uniform(-3, 3, size=400)})
    rules, _ = build_rules(X, {"x": "numeric"}, immutable=set(), step_fraction=0.1, missing=False)
    spread = rules[0].spread
    grid = tuple(np.round(np.arange(0.05, 0.55, 0.05), 2))
    ev = greedy_evasion(model.predict_proba, X, rules, max_changes=1, grid=grid)
    dist = np.abs(X.x.to_numpy() - 0.3) / spread
    flipped = np.array([r["flipped"] for r in ev.records])
    clear = np.abs(dist - 0.5) > 0.01                      # away from the budget edge
    np.testing.assert_array_equal(flipped[clear], (dist <= 0.5)[clear])
    costs = np.array([r["cost"] for r in ev.records])[flipped]
    # the cheapest grid step that crosses the boundary is chosen
    expected = np.array([min(g for g in grid if g >= d - 1e-9) for d in dist[flipped]])
    np.testing.assert_allclose(costs, expected, atol=1e-6)
    assert ev.success_rate == pytest.approx(flipped.mean()) and ev.ci[0] <= ev.success_rate <= ev.ci[1]


def _pipeline(estimator, cats, nums) -> Pipeline:
    pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), cats), ("num", StandardScaler(), nums)])
    return Pipeline([("pre", pre), ("model", estimator)])


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({"income": rng.normal(50, 15, n).round(1), "debt": rng.integers(0, 10, n),
                         "region": rng.choice(["n", "s", "e", "w"], n), "sex": rng.choice(["f", "m"], n),
                         "age": rng.integers(18, 80, n)})


def _label(X: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    logit = 0.08 * (X.income - 50) - 0.4 * (X.debt - 4) + (X.region == "n") * 0.8 + 0.02 * (X.age - 45)
    return (logit + rng.logistic(size=len(X)) > 0).astype(int).to_numpy()


def test_immutable_columns_are_never_perturbed():
    rng = np.random.default_rng(4)
    X = _frame(rng, 1500)
    model = _pipeline(RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0), ["region", "sex"],
                      ["income", "debt", "age"])
    model.fit(X, _label(X, rng))
    seen: list[pd.DataFrame] = []

    def recording_predict(frame: pd.DataFrame) -> np.ndarray:
        seen.append(frame.copy())
        return model.predict_proba(frame.drop(columns="rid"))

    kinds = {"income": "numeric", "debt": "numeric", "region": "categorical", "sex": "categorical", "age": "numeric"}
    rules, skipped = build_rules(X, kinds, immutable={"sex", "age"}, step_fraction=0.2)
    assert skipped == {"sex": "immutable", "age": "immutable"}
    S = X.sample(400, random_state=0).assign(rid=np.arange(400)).reset_index(drop=True)
    robustness_report(recording_predict, S, rules, rng, swap_prob=0.5)
    greedy_evasion(recording_predict, S, rules, max_changes=3)
    assert len(seen) >= 4
    original = S.set_index("rid")
    moved = set()
    for frame in seen:
        ref = original.loc[frame["rid"].to_numpy()]
        for col in ("sex", "age"):
            np.testing.assert_array_equal(frame[col].to_numpy(), ref[col].to_numpy())
        for col in ("income", "debt", "region"):
            if (frame[col].astype(str).to_numpy() != ref[col].astype(str).to_numpy()).any():
                moved.add(col)
    assert moved == {"income", "debt", "region"}   # the mutable ones were perturbed


def test_missing_values_rejected_by_the_model_are_reported():
    rng = np.random.default_rng(5)
    X = _frame(rng, 800)
    y = _label(X, rng)
    kinds = {"income": "numeric", "debt": "numeric", "region": "categorical"}
    cols = list(kinds)
    strict = _pipeline(LogisticRegression(max_iter=500), ["region"], ["income", "debt"]).fit(X[cols], y)
    rules, _ = build_rules(X[cols], kinds, immutable=set(), step_fraction=0.1)
    rep = robustness_report(strict.predict_proba, X[cols], rules, rng)
    assert set(rep.errors) == {"income", "debt"} and "NaN" in rep.errors["income"]
    assert {r["feature"] for r in rep.features if r["kind"] == "missing"} == {"region"}
    tolerant = _pipeline(RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0), ["region"],
                         ["income", "debt"]).fit(X[cols], y)     # trees route missing values natively
    rep = robustness_report(tolerant.predict_proba, X[cols], rules, rng)
    assert rep.errors == {} and rep.missing_one is not None
    assert {r["feature"] for r in rep.features if r["kind"] == "missing"} == set(cols)


# -- the check inside a real audit ----------------------------------------------------------------

@pytest.fixture(scope="module")
def robustness_audit(registry, settings, tmp_path_factory):
    rng = np.random.default_rng(8)
    X = _frame(rng, 3000).assign(**{"@score": rng.normal(size=3000)})   # a name a spreadsheet would execute
    y = _label(X, rng)
    features = ["income", "debt", "region", "age", "@score"]   # sex is protected and not a model input
    model = _pipeline(RandomForestClassifier(n_estimators=40, max_depth=6, random_state=0), ["region"],
                      ["income", "debt", "age", "@score"])
    model.fit(X[features][:1500], y[:1500])
    df = X.assign(label=y, split=["train"] * 1500 + ["test"] * 1500, notes="free text the model never reads")
    df.loc[[1600, 1700, 2900], "region"] = "atlantis"          # a category never seen in training
    df.loc[[2000], "region"] = "mars"
    return run_synthetic_audit(settings, registry, tmp_path_factory.mktemp("robustness-audit"), "robustness-synthetic",
                               model, X[features][:1500], df, "robustness", ["sex"],
                               {"immutable": ["debt", "age"], "sample_size": 600,
                                "columns": {"income": {"range": [0, 120]}},
                                "evasion": {"sample_size": 80, "max_success_rate": 0.9}})


def test_robustness_check_in_audit(robustness_audit):
    result, audit_dir = robustness_audit
    assert result.checks["robustness"].status == "completed", result.checks["robustness"].error
    m = result.metrics
    assert 0 <= m["robustness.flip_rate.ci_low"] <= m["robustness.flip_rate"] <= m["robustness.flip_rate.ci_high"] <= 1
    assert {"robustness.flip_rate.income", "robustness.flip_rate.region", "robustness.missing.flip_rate.income",
            "robustness.evasion.success_rate", "robustness.evasion.median_cost"} <= set(m)
    # protected (sex: not even a model input) and policy-immutable (debt, age from the default list) columns
    assert not any(k.endswith((".debt", ".age", ".sex")) for k in m)
    details = json.loads((audit_dir / "audit.json").read_text())["checks"]["robustness"]["details"]
    immutable = {r["column"]: r["reason"] for r in details["immutable"]}
    assert immutable == {"debt": "immutable: policy list", "age": "immutable: policy list"}
    income = next(r for r in details["rules"] if r["column"] == "income")
    assert income["range"] == [0, 120]
    refs = {f.metric: set(f.references) for f in result.findings if f.check == "robustness"}
    assert "EU-AI-Act Art. 15(5)" in refs["robustness.evasion.success_rate"]
    assert "EU-AI-Act Art. 15(4)" in refs["robustness.flip_rate"]
    evasion = next(f for f in result.findings if f.metric == "robustness.evasion.success_rate")
    assert evasion.threshold == 0.9 and evasion.ci[0] <= evasion.value <= evasion.ci[1]
    for f in result.findings:
        for rel in f.evidence:
            assert (audit_dir / rel).is_file() and rel in result.evidence
    with open(audit_dir / "evidence/robustness/perturbation.csv", newline="", encoding="utf-8-sig") as fh:
        names = [r["feature"] for r in csv.DictReader(fh)]
    assert "'@score" in names and "@score" not in names        # formula neutralised
    assert not any(n.startswith(("=", "+", "-", "@")) for n in names)
    with open(audit_dir / "evidence/robustness/evasion.csv", newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 80 and all(r["flipped"] in ("True", "False") for r in rows)
    assert figures.draw((audit_dir / details["evidence"]["plot"]).read_bytes())[:4] == b"\x89PNG"


def test_unseen_categories_and_extra_columns_are_reported(robustness_audit):
    """They used to be scored (as an all-zero one-hot row) and ignored without a word."""
    result, _ = robustness_audit
    unseen = next(f for f in result.findings if f.metric == "robustness.unseen_category_rows")
    assert unseen.status.value == "warn" and unseen.value == 4
    assert [(u["feature"], u["value"], u["rows"]) for u in unseen.data["unseen"]] == [("region", "atlantis", 3),
                                                                                       ("region", "mars", 1)]
    assert result.dataset.extra_columns == ["notes"]


def test_no_unseen_categories_pass(credit_audit):
    unseen = next(f for f in credit_audit.findings if f.metric == "robustness.unseen_category_rows")
    assert unseen.status.value == "pass" and unseen.value == 0


def test_regression_reports_prediction_change_without_flips():
    from sklearn.linear_model import LinearRegression
    rng = np.random.default_rng(6)
    X = pd.DataFrame({"x": rng.uniform(0, 10, 2000), "z": rng.uniform(0, 1, 2000)})
    model = LinearRegression().fit(X, 3 * X.x + X.z)
    rules, _ = build_rules(X, {"x": "numeric", "z": "numeric"}, immutable={"z"}, step_fraction=0.1, missing=False)
    rep = robustness_report(model.predict, X, rules, rng)
    assert "flip_rate" not in rep.joint
    step = rules[0].step
    assert rep.features[0]["mean_change"] == pytest.approx(3 * step, rel=1e-6)   # |Δŷ| = slope x step
    assert greedy_evasion(model.predict, X, rules).attempted == 0


def test_linked_columns_follow_their_source():
    """education_num is a function of education: a perturbed row never pairs them inconsistently,
    and a model that reads only the linked column still sees the perturbation."""
    from audit.metrics.perturbation import find_links, perturb, perturb_jointly
    rng = np.random.default_rng(0)
    levels = {"HS-grad": 9, "Bachelors": 13, "Masters": 14, "Doctorate": 16}
    edu = rng.choice(list(levels), 600)
    X = pd.DataFrame({"education": edu, "education_num": [levels[e] for e in edu],
                      "hours": rng.normal(40, 8, 600).round(1), "noise": rng.choice(["a", "b"], 600)})
    X.loc[::7, "noise"] = np.where(X.loc[::7, "education"] == "HS-grad", "b", "a")  # related, not a function
    kinds = {"education": "categorical", "education_num": "numeric", "hours": "numeric", "noise": "categorical"}
    rules, _ = build_rules(X, kinds, immutable=set(), step_fraction=0.5)
    links = find_links(X, rules)
    assert sorted(k.describe() for k in links) == ["education follows education_num", "education_num follows education"]
    swap = perturb(X, next(r for r in rules if r.name == "education"), "swap", rng, links)
    assert (swap["education"] != X["education"]).all()
    assert (swap["education_num"] == swap["education"].map(levels)).all()
    shift = perturb(X, next(r for r in rules if r.name == "education_num"), "shift", rng, links)
    inverse = {v: k for k, v in levels.items()}
    moved = shift["education_num"] != X["education_num"]
    assert moved.any() and (shift.loc[moved, "education"] == shift.loc[moved, "education_num"].map(
        lambda v: inverse[min(levels.values(), key=lambda k: abs(k - v))])).all()
    joint = perturb_jointly(X, rules, rng, swap_prob=0.5, links=links)
    assert (joint["education_num"] == joint["education"].map(levels)).all()
    # without links the same swap leaves education_num alone: a model reading it sees nothing
    assert (perturb(X, rules[0], "swap", rng)["education_num"] == X["education_num"]).all()


def test_adult_audit_links_the_education_columns(adult_audit):
    settings = adult_audit.checks["robustness"].details["settings"]
    assert {"education_num follows education", "education follows education_num"} <= set(settings["linked_columns"])
