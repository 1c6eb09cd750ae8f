"""Explanations: SHAP routes, pipeline mapping, background provenance, LIME seeding, quality, audits."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import shap
from scipy.stats import kendalltau

from conftest import ROOT
from audit import figures
from interpret import quality as q
from interpret.encoding import TabularEncoder
from interpret.importance import rank_features
from interpret.lime_explain import explain_rows
from interpret.models import ModelAdapter
from interpret.reason_codes import reason_codes
from interpret.sampling import stratified_sample
from interpret.shap_explain import ShapExplainer


# -- small real models on the bundled data ------------------------------------------------------

@pytest.fixture(scope="module")
def credit():
    df = pd.read_csv(ROOT / "data" / "german_credit.csv.gz")
    X = df.drop(columns=["good_credit", "split", "sex", "age_group"])
    y = df["good_credit"]
    return X, y


def _pipeline(X: pd.DataFrame, final):
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    cats = [c for c in X.columns if X[c].dtype == object]
    nums = [c for c in X.columns if c not in cats]
    pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), cats), ("num", StandardScaler(), nums)])
    return Pipeline([("preprocess", pre), ("model", final)])


def _adapter(est, X: pd.DataFrame, prepare=None) -> ModelAdapter:
    features = list(X.columns)
    prep = prepare or (lambda d: d[features])
    return ModelAdapter(est, features, "binary", 1, prepare=prep, predict_proba=lambda d: est.predict_proba(prep(d)))


@pytest.fixture(scope="module")
def scorecard(credit):
    from sklearn.linear_model import LogisticRegression
    X, y = credit
    return _pipeline(X, LogisticRegression(max_iter=2000, C=0.5)).fit(X, y)


# -- SHAP ---------------------------------------------------------------------------------------

def test_pipeline_is_explained_on_raw_columns_with_one_hot_summed(credit, scorecard):
    X, _ = credit
    bg, rows = X.iloc[:250], X.iloc[600:640]
    ex = ShapExplainer(_adapter(scorecard, X), bg)
    res = ex.explain(rows)
    assert ex.route.explainer_name == "shap.LinearExplainer" and ex.route.space == "transformed"
    assert res.feature_names == list(X.columns) and res.values.shape == (40, X.shape[1])
    # reference: shap's LinearExplainer on the transformed matrix, one-hot columns summed by their names
    pre, lr = scorecard[:-1], scorecard[-1]
    Z_bg, Z = pre.transform(bg), pre.transform(rows)
    ref = shap.LinearExplainer(lr, shap.maskers.Independent(Z_bg, max_samples=len(Z_bg)))(Z).values
    names = pre.get_feature_names_out()
    for j, col in enumerate(X.columns):
        cols = [k for k, n in enumerate(names) if n == f"num__{col}" or n.startswith(f"cat__{col}_")]
        assert np.allclose(res.values[:, j], ref[:, cols].sum(axis=1), atol=1e-12), col
    mapped = ex.provenance()["pipeline_map"]["map"]
    assert len(mapped["purpose"]) == X["purpose"].nunique() and all(n.startswith("cat__purpose_") for n in mapped["purpose"])
    # additivity against the pipeline's own log-odds
    assert np.allclose(res.values.sum(1) + res.base_values, scorecard.decision_function(rows), atol=1e-10)
    assert res.additivity_error.max() < 1e-10


def test_background_size_is_the_size_actually_used(credit, scorecard):
    from sklearn.ensemble import RandomForestClassifier
    X, y = credit
    bg = X.iloc[:250]
    lin = ShapExplainer(_adapter(scorecard, X), bg)
    assert lin.background_size == 250 == lin.route.explainer.masker.data.shape[0]
    num = X.select_dtypes("number")
    rf = RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0).fit(num, y)
    tree = ShapExplainer(_adapter(rf, num), num.iloc[:250])
    assert tree.route.explainer_name == "shap.TreeExplainer" and tree.route.feature_perturbation == "interventional"
    assert tree.background_size == 250 == tree.route.explainer.data.shape[0]
    assert tree.provenance()["background_size"] == 250
    # the pitfall this guards against: shap's default masker silently keeps 100 rows
    assert shap.TreeExplainer(rf, data=num.iloc[:250], feature_perturbation="interventional").data.shape[0] == 100
    res = tree.explain(num.iloc[700:760])
    assert res.shap_additivity_check == "passed" and res.additivity_error.max() < 1e-6
    assert np.allclose(res.output, rf.predict_proba(num.iloc[700:760])[:, 1])


@pytest.mark.parametrize("kind", ["knn", "svc"])
def test_unsupported_model_falls_back_to_budgeted_permutation(credit, kind):
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC
    X, y = credit
    final = KNeighborsClassifier(n_neighbors=15) if kind == "knn" else SVC(probability=True, random_state=0)
    est = _pipeline(X, final).fit(X, y)
    ex = ShapExplainer(_adapter(est, X), X.iloc[:300], permutations=2, max_background_agnostic=40, seed=3)
    assert ex.route.kind == "permutation" and ex.route.explainer_name == "shap.PermutationExplainer"
    p = X.shape[1]
    assert ex.max_evals == 2 * (2 * p + 1)
    assert ex.background_size == 40 == ex.route.explainer.masker.data.shape[0]
    assert ex.cost_per_row == ex.max_evals * 40
    rows = X.iloc[900:904]
    res = ex.explain(rows)
    assert res.values.shape == (4, p)
    assert np.allclose(res.output, est.predict_proba(rows)[:, 1])
    assert res.additivity_error.max() < 1e-6  # permutation SHAP is efficient by construction
    assert any("model-agnostically" in n for n in ex.provenance()["notes"])


def test_native_tree_models_use_exact_path_dependent_shap_when_shap_cannot_intervene():
    import lightgbm as lgb
    import xgboost as xgb
    from audit.model_io import categorise, infer_features
    df = pd.read_csv(ROOT / "data" / "compas.csv.gz")
    X = df[["age", "age_cat", "priors_count", "juv_fel_count", "c_charge_degree"]]
    y = df["two_year_recid"]
    feats = infer_features(X)
    prep = lambda d: categorise(d[list(X.columns)], feats)  # noqa: E731
    Xc = prep(X)
    for est in (xgb.XGBClassifier(n_estimators=20, max_depth=3, enable_categorical=True, tree_method="hist", n_jobs=1),
                lgb.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1, n_jobs=1)):
        est.fit(Xc, y)
        ad = _adapter(est, X, prepare=prep)
        ad.categories = {f.name: f.categories for f in feats if f.kind == "categorical"}
        ex = ShapExplainer(ad, X.iloc[:200])
        assert ex.route.kind == "path_table"
        assert ex.route.feature_perturbation == "tree_path_dependent"
        assert ex.background_size is None
        assert "interventional TreeSHAP unavailable" in " ".join(ex.provenance()["notes"])
        res = ex.explain(X.iloc[1000:1300])
        ref = shap.TreeExplainer(est)(Xc.iloc[1000:1300])
        assert np.allclose(res.values, ref.values, atol=1e-4)
        margin = est.predict(Xc.iloc[1000:1300], output_margin=True) if hasattr(est, "get_booster") else \
            est.predict(Xc.iloc[1000:1300], raw_score=True)
        assert np.allclose(res.output, margin, atol=1e-5)
        assert res.additivity_error.max() < 1e-4


def test_explained_class_orientation_for_binary_class_zero_and_multiclass(credit):
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    X, y = credit
    num = X.select_dtypes("number")
    gb = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(num, y)
    ad = ModelAdapter(gb, list(num.columns), "binary", 0, predict_proba=gb.predict_proba)
    res = ShapExplainer(ad, num.iloc[:200]).explain(num.iloc[800:850])
    assert np.allclose(res.output, -gb.decision_function(num.iloc[800:850]))  # log-odds of class 0
    assert res.additivity_error.max() < 1e-6
    y3 = pd.cut(X["age"], [0, 30, 45, 100], labels=False)
    num = (num - num.mean()) / num.std()
    lr = LogisticRegression(max_iter=500).fit(num, y3)
    ad = ModelAdapter(lr, list(num.columns), "multiclass", 2, predict_proba=lr.predict_proba)
    res = ShapExplainer(ad, num.iloc[:200]).explain(num.iloc[800:850])
    assert np.allclose(res.output, lr.decision_function(num.iloc[800:850])[:, 2])
    assert res.additivity_error.max() < 1e-9


# -- LIME ---------------------------------------------------------------------------------------

def test_lime_is_seeded_per_call_and_reproducible(credit, scorecard):
    X, _ = credit
    features = list(X.columns)
    enc = TabularEncoder.fit([X], features)
    bg = enc.encode(X.iloc[:300])

    def f(A):
        return scorecard.decision_function(enc.decode(A))

    a, b = enc.encode(X.iloc[[700]]), enc.encode(X.iloc[[701, 700]])
    first = explain_rows(a, f, bg, enc, seeds=[11], num_samples=500).weights[0, 0]
    again = explain_rows(b, f, bg, enc, seeds=[11], num_samples=500).weights[1, 0]  # after another row
    other = explain_rows(a, f, bg, enc, seeds=[12], num_samples=500).weights[0, 0]
    assert np.array_equal(first, again)
    assert not np.allclose(first, other)
    assert first.shape == (len(features),)
    holes = X.iloc[:300].copy()
    holes.loc[holes.index[:30], "duration"] = np.nan
    res = explain_rows(enc.encode(X.iloc[[700]]), f, enc.encode(holes), enc, seeds=[11], num_samples=300)
    assert res.imputed_values == 30 and np.isfinite(res.weights).all()


# -- sampling, importance, quality, reason codes ------------------------------------------------

def test_stratified_sample_keeps_small_groups_and_weights_to_population():
    rng = np.random.default_rng(0)
    strata = pd.DataFrame({"g": np.where(rng.random(5000) < 0.01, "rare", "common")})
    plan = stratified_sample(strata, 400, np.random.default_rng(1), min_per_stratum=30)
    counts = strata["g"].iloc[plan.indices].value_counts()
    assert plan.size == 400 and counts["rare"] >= 30
    assert plan.weights.sum() == pytest.approx(5000)
    for s in plan.strata:
        assert s["weight"] == pytest.approx(s["population"] / s["sample"])
    assert len(set(plan.indices)) == plan.size


def test_importance_is_design_weighted_with_bootstrap_ci():
    rng = np.random.default_rng(0)
    vals = rng.normal(size=(500, 4)) * np.array([3.0, 1.0, 0.5, 0.1])
    w = rng.uniform(1, 3, 500)
    strata = rng.integers(0, 3, 500)
    ranking = rank_features(vals, list("abcd"), weights=w, strata=strata, rng=rng, n_boot=200)
    assert [r.feature for r in ranking] == list("abcd")
    for r, j in zip(ranking, range(4)):
        assert r.mean_abs == pytest.approx(np.average(np.abs(vals[:, j]), weights=w))
        assert r.ci_low <= r.mean_abs <= r.ci_high
    assert sum(r.share for r in ranking) == pytest.approx(1.0)


def test_quality_measures_against_references():
    a, b = np.array([5.0, -4, 3, 0.1, 2]), np.array([4.0, 5, -1, 0.2, 3])
    idx = sorted(q.top_k(a, 3) | q.top_k(b, 3))
    assert q.topk_kendall(a, b, 3) == pytest.approx(kendalltau(np.abs(a[idx]), np.abs(b[idx])).statistic)
    assert q.topk_jaccard(a, b, 3) == pytest.approx(len({0, 1, 2} & {0, 1, 4}) / len({0, 1, 2} | {0, 1, 4}))
    # deletion: exact attributions of a linear model beat a random order, reversed ones do not
    rng = np.random.default_rng(0)
    beta = np.array([4.0, 2.0, 1.0, 0.5, 0.1, 0.0])
    X, bg = rng.normal(size=(100, 6)), rng.normal(size=(200, 6))
    phi = beta * (X - bg.mean(0))
    good = q.deletion_curves(lambda A: A @ beta, X, phi, bg, steps=3, rng=np.random.default_rng(1))
    bad = q.deletion_curves(lambda A: A @ beta, X, 1 / (np.abs(phi) + 1e-9), bg, steps=3, rng=np.random.default_rng(1))
    assert good["ratio"] > 1.5 > 1.0 > bad["ratio"]
    add = q.additivity(phi, np.full(100, bg.mean(0) @ beta), X @ beta, atol=1e-9, rtol=0)
    assert add["max"] < 1e-9 and add["rows_over_tolerance"] == []


def test_reason_codes_in_english_and_korean():
    feats = ["credit_amount", "duration", "age", "purpose"]
    raw = {"credit_amount": 15000, "duration": 48, "age": 35, "purpose": "car (new)"}
    adverse_push = np.array([0.21, 0.12, -0.30, 0.05])
    declined = reason_codes(adverse_push, raw, feats, adverse=True, domain="credit", n_reasons=3)
    assert declined.text["en"] == ("Declined mainly because: credit amount 15,000 (+0.21), duration 48 (+0.12), "
                                   "purpose car (new) (+0.05).")
    assert declined.text["ko"].startswith("주로 다음 이유로 거절되었습니다: 대출 금액 15,000 (+0.21)")
    approved = reason_codes(adverse_push, raw, feats, adverse=False, domain="credit")
    assert approved.text["en"] == "Approved mainly because: age 35 (+0.30)."
    assert approved.text["ko"] == "주로 다음 이유로 승인되었습니다: 나이 35 (+0.30)."


# -- the audit check ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def explained_credit(engine):
    """The credit demo audit with the fairness check (which hands its proxies on) and this check."""
    prepared = engine.prepare(ROOT / "examples" / "credit" / "audit.yaml")
    prepared.plan = [c for c in prepared.plan if c.name in ("fairness", "explanations")]
    result = engine.run(prepared)
    return result, engine.audit_dir(result.audit_id)


def test_credit_audit_has_global_local_quality_and_reason_codes(explained_credit):
    result, audit_dir = explained_credit
    assert result.checks["explanations"].status == "completed", result.checks["explanations"].error
    found = {f.title: f for f in result.findings if f.check == "explanations"}
    for title in ("Global drivers of the model's output", "SHAP explainer and background",
                  "Local explanations and reason codes", "SHAP additivity", "LIME stability across seeds",
                  "SHAP–LIME agreement", "Faithfulness (deletion curve)", "Sensitivity to the background size"):
        assert title in found, title
    m = result.metrics
    assert m["explanations.shap.background_size"] == 300  # credit's training split has 678 rows
    assert m["explanations.quality.additivity_max_error"] < 1e-9
    for key in ("explanations.quality.lime_topk_jaccard", "explanations.quality.shap_lime_kendall_tau",
                "explanations.quality.deletion_auc_ratio", "explanations.quality.background_topk_jaccard",
                "explanations.quality.lime_topk_jaccard_kappa", "explanations.quality.background_topk_jaccard_kappa",
                "explanations.shap.mean_abs.status", "explanations.shap.mean_abs.status.ci_low"):
        assert m[key] is not None, key
    details = result.checks["explanations"].details
    assert details["explainer"]["explainer"] == "shap.LinearExplainer"
    assert {r["feature"] for r in details["global"]} == set(json.loads(
        (audit_dir / "evidence/explanations/global_importance.json").read_text())["provenance"]["pipeline_map"]["map"])
    local = details["local"]
    assert {r["kind"] for r in local} == {"most_adverse", "near_threshold", "random"}
    adverse = next(r for r in local if r["decision"] == "adverse")
    assert adverse["reason_codes"]["en"].startswith("Declined mainly because:")
    assert adverse["reason_codes"]["ko"].startswith("주로 다음 이유로 거절되었습니다:")
    for rec in local:
        assert rec["waterfall"] in result.evidence
        assert figures.draw((audit_dir / rec["waterfall"]).read_bytes())[:4] == b"\x89PNG"
    for name in ("global_bar", "beeswarm", "deletion"):
        assert figures.draw((audit_dir / "evidence/explanations" / f"{name}{figures.SUFFIX}").read_bytes())[:4] == b"\x89PNG"
    for name in ("sampling_plan.json", "quality.json"):
        assert (audit_dir / "evidence/explanations" / name).is_file(), name
    plan = json.loads((audit_dir / "evidence/explanations/sampling_plan.json").read_text())
    assert len(plan["background"]["row_positions"]) == 300


def test_proxy_reported_by_fairness_among_top_drivers_is_a_finding(explained_credit):
    result, _ = explained_credit
    proxies = {f.metric.rsplit(".", 1)[-1] for f in result.findings
               if f.check == "fairness" and f.metric and f.metric.startswith("fairness.proxy.") and f.status.value == "warn"}
    details = result.checks["explanations"].details
    k = details["quality"]["top_k"]["effective_k"]
    expected = {r["feature"] for r in details["global"] if r["feature"] in proxies and r["share"] >= 0.05 and r["rank"] <= k}
    flagged = {f.group for f in result.findings if f.check == "explanations" and f.metric == "explanations.shap.proxy_share"
               and f.status.value == "warn"}
    assert expected and expected == flagged
    for f in result.findings:
        if f.metric == "explanations.shap.proxy_share" and f.status.value == "warn":
            assert f.value >= f.threshold and f.ci[0] <= f.value <= f.ci[1]


def test_check_on_adult_xgboost_reads_proxies_and_explains_natively(engine):
    from audit.checks import explanations as E
    from audit.checks.base import AuditContext
    prepared = engine.prepare(ROOT / "examples" / "adult" / "audit.yaml")
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        ctx = AuditContext(spec=prepared.spec, policy=prepared.policy, model=prepared.model, data=prepared.data,
                           evidence_dir=Path(tmp) / "evidence", domain="employment")
        ctx.shared["proxies"] = [{"feature": "relationship", "attribute": "sex", "score": 0.9, "method": "single_feature_auc"}]
        cfg = E.ExplanationsConfig(sample_size=400, n_local=2, lime_num_samples=500, deletion_rows=50, plots=False,
                                   n_boot=50)
        res = E.run(ctx, cfg)
    d = res.details
    assert d["explainer"]["explainer"] == "aiaudit path-table TreeSHAP (exact; equals xgboost pred_contribs)"
    assert d["explainer"]["feature_perturbation"] == "tree_path_dependent"
    assert res.metrics["explanations.shap.background_size"] is None
    assert res.metrics["explanations.quality.additivity_max_error"] < 1e-4
    assert d["sampling"]["sample_rows"] == 400 and d["sampling"]["population_rows"] == len(prepared.data.frame)
    assert {"sex", "race"} == set(d["groups"])
    entry = next(r for r in d["global"] if r["feature"] == "relationship")
    proxy = [f for f in res.findings if f.metric == "explanations.shap.proxy_share" and f.group == "relationship"]
    assert bool(proxy) == (entry["share"] >= cfg.min_driver_share and entry["rank"] <= d["quality"]["top_k"]["effective_k"])
    assert all(len(r["reason_codes"]) == 2 for r in d["local"])


# -- statistics built to fail -------------------------------------------------------------------------------

def test_chance_jaccard_is_exact_and_capped_k_leaves_room_to_disagree():
    rng = np.random.default_rng(3)
    for k, p in ((5, 6), (3, 6), (5, 20), (1, 2)):
        sims = [len(set(a) & set(b)) / len(set(a) | set(b))
                for a, b in ((rng.choice(p, k, replace=False), rng.choice(p, k, replace=False)) for _ in range(20_000))]
        assert q.chance_jaccard(k, p) == pytest.approx(np.mean(sims), abs=0.01), (k, p)
    assert q.chance_jaccard(5, 6) > 0.6  # the old threshold: random top-5 sets of 6 features always passed it
    assert q.effective_k(5, 6) == 3 and q.effective_k(5, 20) == 5
    assert q.chance_corrected(q.chance_jaccard(3, 6), q.chance_jaccard(3, 6)) == pytest.approx(0)


def test_lime_stability_fails_on_seed_noise_and_passes_on_stable_weights():
    rng = np.random.default_rng(0)
    p, k = 6, q.effective_k(5, 6)
    noise = rng.normal(size=(20, 5, p))                 # every seed a fresh random explanation
    raw = q.seed_stability(noise, 5)
    assert raw["jaccard"].mean() >= 4 / 6 > 0.6          # the uncorrected top-5 statistic cannot fail
    st = q.seed_stability(noise, k)
    assert st["jaccard_kappa"].mean() < 0.2 < 0.5        # the chance-corrected one does
    stable = np.arange(1, p + 1)[None, None, :] + rng.normal(scale=0.01, size=(20, 5, p))
    assert q.seed_stability(stable, k)["jaccard_kappa"].mean() == pytest.approx(1.0)


def test_shap_lime_agreement_and_background_agreement_fail_on_unrelated_rankings():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(200, 8)), rng.normal(size=(200, 8))
    k = q.effective_k(5, 8)
    unrelated = q.agreement(a, b, k)
    assert np.nanmean(unrelated["kendall"]) < 0.3 and np.mean(unrelated["jaccard_kappa"]) < 0.2
    same = q.agreement(a, a * 2.0, k)
    assert np.nanmean(same["kendall"]) == pytest.approx(1.0) and np.mean(same["jaccard_kappa"]) == pytest.approx(1.0)
    kappas = [q.ranking_agreement(rng.random(8), rng.random(8), k)["jaccard_topk_kappa"] for _ in range(400)]
    assert abs(np.mean(kappas)) < 0.05 and np.mean(np.array(kappas) >= 0.6) < 0.2


def test_proxy_driver_rule_ignores_a_proxy_the_model_barely_uses():
    """A proxy at rank 6 of 6 with 0.9% of mean |SHAP| (below a noise feature) is not a top driver, whatever
    a subgroup's top-k says; one with a 30% share and rank 1 is."""
    from types import SimpleNamespace
    from audit.checks import explanations as E
    from audit.checks.base import CheckResult
    rng = np.random.default_rng(2)
    features = ["income", "debt", "age", "noise", "tenure", "zip"]
    scale = {"income": 3.0, "debt": 2.0, "age": 1.5, "noise": 0.05, "tenure": 1.0, "zip": 0.03}
    values = rng.normal(size=(500, 6)) * np.array([scale[f] for f in features])
    ranking = rank_features(values, features, rng=rng, n_boot=100)
    zip_rank = next(r for r in ranking if r.feature == "zip")
    assert zip_rank.rank == 6 and zip_rank.share < 0.01
    groups = {"sex": {"f": {"rows": 100, "ranking": [r for r in ranking if r.feature == "zip"] + ranking}}}
    cfg = E.ExplanationsConfig()
    scope = E._topk_scope(cfg, len(features))

    def run_with(proxy: str) -> CheckResult:
        ctx = SimpleNamespace(shared={"proxies": [{"feature": proxy, "attribute": "sex", "score": 0.8,
                                                   "method": "single_feature_auc"}]},
                              data=SimpleNamespace(protected=["sex"]))
        res = CheckResult()
        E._fairness_findings(res, ctx, cfg, ranking, groups, features, {"global_json": "g", "groups_json": "h"}, scope)
        return res

    quiet = run_with("zip").findings
    assert [f.status.value for f in quiet] == ["pass"] and quiet[0].value < quiet[0].threshold
    loud = [f for f in run_with("income").findings if f.group == "income"]
    assert loud and loud[0].status.value == "warn" and loud[0].value >= loud[0].threshold
