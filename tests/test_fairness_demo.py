"""The fairness check on the demo audits and on awkward protected attributes (real models, real data)."""
from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from audit import figures
from conftest import ROOT, copy_example, example_for_checks, run_cli

logging.getLogger().setLevel(logging.ERROR)


@pytest.fixture(scope="module")
def fairness_audits(engine, tmp_path_factory):
    """The Adult and credit example specs restricted to the fairness check, each audited once."""
    out = {}
    for name in ("adult", "credit"):
        prepared = engine.prepare(example_for_checks(name, tmp_path_factory.mktemp(name), ["fairness"]))
        result = engine.run(prepared)
        out[name] = (prepared, result, engine.audit_dir(result.audit_id))
    return out


def predictions(prepared) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    frame = prepared.data.frame
    proba = prepared.model.predict_proba(frame)
    y_hat = (np.asarray(prepared.model.classes)[proba.argmax(1)].astype(str) == "1").astype(int)
    return frame, frame[prepared.data.label].to_numpy().astype(int), y_hat


def test_adult_metrics_match_fairlearn_and_aif360(fairness_audits):
    from aif360.sklearn.metrics import df_bias_amplification
    from fairlearn import metrics as flm
    prepared, result, _ = fairness_audits["adult"]
    assert result.checks["fairness"].status == "completed", result.checks["fairness"].error
    frame, y, y_hat = predictions(prepared)
    m = result.metrics
    for attr, cols in (("sex", ["sex"]), ("race", ["race"]), ("sex*race", ["sex", "race"])):
        sf = frame[cols]
        want = {
            "demographic_parity_difference": flm.demographic_parity_difference(y, y_hat, sensitive_features=sf),
            "demographic_parity_ratio": flm.demographic_parity_ratio(y, y_hat, sensitive_features=sf),
            "equalized_odds_difference": flm.equalized_odds_difference(y, y_hat, sensitive_features=sf),
            "equal_opportunity_difference": flm.equal_opportunity_difference(y, y_hat, sensitive_features=sf),
        }
        for key, value in want.items():
            got = m[f"fairness.{attr}.{key}"]
            assert got == pytest.approx(value, abs=1e-9), (attr, key)
            assert m[f"fairness.{attr}.{key}.ci_low"] <= got <= m[f"fairness.{attr}.{key}.ci_high"]
        sel = flm.MetricFrame(metrics=flm.selection_rate, y_true=y, y_pred=y_hat, sensitive_features=sf).by_group
        for key, value in sel.items():
            group = "*".join(key) if isinstance(key, tuple) else key
            assert m[f"fairness.{attr}.selection_rate.{group}"] == pytest.approx(value, abs=1e-9)
        yt = pd.Series(y, index=pd.MultiIndex.from_frame(sf))
        assert m[f"bias_amplification.{attr}.df_amplification"] == pytest.approx(
            df_bias_amplification(yt, y_hat, prot_attr=cols), abs=1e-12)
        lo, hi = m[f"bias_amplification.{attr}.biasamp.ci_low"], m[f"bias_amplification.{attr}.biasamp.ci_high"]
        assert lo <= m[f"bias_amplification.{attr}.biasamp"] <= hi


def test_adult_intervals_equal_statsmodels_at_their_stated_levels(fairness_audits):
    """Per-group rates: Wilson at the confidence level; sex's parity difference (two groups): Newcombe's interval for
    the difference at the family-wise level alpha / F, folded to |difference|; and its Holm-adjusted p-value."""
    from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint
    prepared, result, _ = fairness_audits["adult"]
    frame, y, y_hat = predictions(prepared)
    m = result.metrics
    settings = result.checks["fairness"].details["settings"]
    F, alpha = settings["family_size"], settings["alpha"]
    assert settings["correction"] == "holm" and F > 3
    x = {g: int(y_hat[frame["sex"] == g].sum()) for g in ("Female", "Male")}
    n = {g: int((frame["sex"] == g).sum()) for g in ("Female", "Male")}
    for g in ("Female", "Male"):
        lo, hi = proportion_confint(x[g], n[g], alpha=0.05, method="wilson")
        assert m[f"fairness.sex.selection_rate.{g}.ci_low"] == pytest.approx(lo, abs=1e-9)
        assert m[f"fairness.sex.selection_rate.{g}.ci_high"] == pytest.approx(hi, abs=1e-9)
    lo, hi = confint_proportions_2indep(x["Male"], n["Male"], x["Female"], n["Female"], method="newcomb",
                                        compare="diff", alpha=alpha / F)
    assert lo > 0  # Adult's sex gap is far from zero, so |difference| keeps the same limits
    assert m["fairness.sex.demographic_parity_difference.ci_low"] == pytest.approx(lo, abs=1e-6)
    assert m["fairness.sex.demographic_parity_difference.ci_high"] == pytest.approx(hi, abs=1e-6)
    dp = next(f for f in result.findings if f.metric == "fairness.sex.demographic_parity_difference")
    assert dp.ci[0] <= dp.value <= dp.ci[1] and dp.data["significant"] and dp.data["p_adjusted"] < alpha
    assert dp.data["ci_method"] and dp.data["correction"] == "holm" and dp.data["family_size"] == F


def test_adult_findings_evidence_and_amplification(fairness_audits):
    _, result, audit_dir = fairness_audits["adult"]
    fair = [f for f in result.findings if f.check == "fairness"]
    dp = next(f for f in fair if f.metric == "fairness.sex.demographic_parity_ratio")
    # Adult's selection-rate ratio (~0.34) is far below 0.8 across the whole interval: a gating fail in employment
    assert dp.status.value == "fail" and dp.ci[1] < 0.8 and dp.severity.value == "high"
    assert "four-fifths" in dp.detail and dp.data["lowest_group"] == "Female"
    assert {"EU-AI-Act Art. 10(2)(f)", "EU-AI-Act Art. 10(2)(g)", "EU-AI-Act Art. 13(3)(b)(v)"} <= set(dp.references)
    assert result.status == "failed" and result.exit_code == 1
    for f in fair:  # the status rule: fail only when the whole interval is beyond the threshold
        if f.ci and f.threshold is not None and f.data.get("scale") in ("difference", "ratio", "additive", "log_ratio"):
            lo, hi = f.ci
            beyond = (hi < f.threshold) if f.data.get("higher_is_better") else (lo > f.threshold)
            if f.status.value == "fail":
                assert beyond, f.title
            if beyond is False and f.status.value == "warn":
                assert lo <= f.threshold <= hi or (f.data.get("higher_is_better") and lo < f.threshold), f.title
    amps = {f.metric: f for f in fair if f.metric and f.metric.startswith("bias_amplification.sex.")}
    assert set(amps) == {"bias_amplification.sex.biasamp", "bias_amplification.sex.df_amplification"}
    assert amps["bias_amplification.sex.biasamp"].data["scale"] == "additive"
    assert amps["bias_amplification.sex.df_amplification"].data["scale"] == "log_ratio"
    for f in amps.values():
        assert "BiasAmp→" in f.detail and "DF amplification" in f.detail
        assert {"EU-AI-Act Art. 10(2)(f)", "EU-AI-Act Art. 10(2)(g)"} <= set(f.references)
        assert not any(r.startswith("EU-AI-Act Art. 15") for r in f.references)  # the Adult card declares no learning
    if np.sign(amps["bias_amplification.sex.biasamp"].value) != np.sign(amps["bias_amplification.sex.df_amplification"].value):
        assert "disagree in sign" in amps["bias_amplification.sex.biasamp"].detail
    proxy = next(f for f in fair if f.metric == "fairness.proxy.sex.relationship")
    assert proxy.status.value == "warn" and proxy.value >= 0.8
    details = json.loads((audit_dir / "audit.json").read_text())["checks"]["fairness"]["details"]
    names = {a["attribute"] for a in details["analyses"]}
    assert names == {"sex", "race", "sex*race"}
    for a in details["analyses"]:
        assert figures.draw((audit_dir / a["chart"]).read_bytes())[:8] == b"\x89PNG\r\n\x1a\n"
        assert a["reference_group"] == max(a["groups"], key=lambda r: r["n"])["group"]
    with (audit_dir / details["tables"]["csv"]).open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert {r["attribute"] for r in rows} == names and "selection_rate_ci_low" in rows[0]
    assert json.loads((audit_dir / details["tables"]["json"]).read_text())["rows"]
    assert set(result.evidence) >= {details["tables"]["csv"], details["tables"]["json"]}


def test_credit_small_groups_are_warned_and_suppressed(fairness_audits):
    _, result, audit_dir = fairness_audits["credit"]
    small = [f for f in result.findings if f.check == "fairness" and f.data.get("insufficient_data")]
    assert small and all(f.status.value == "warn" and f.metric == "fairness.sex*age_group.group_size" for f in small)
    for f in small:
        assert not any(k.startswith(f"fairness.sex*age_group.selection_rate.{f.group}") for k in result.metrics)
    details = json.loads((audit_dir / "audit.json").read_text())["checks"]["fairness"]["details"]
    with (audit_dir / details["tables"]["csv"]).open(encoding="utf-8-sig") as fh:
        rows = [r for r in csv.DictReader(fh) if r["group"] in {f.group for f in small}]
    assert rows and all(r["n"] == "<30" and r["selection_rate"] == "" for r in rows)
    for attr in ("sex", "age_group"):
        assert f"fairness.{attr}.demographic_parity_ratio.ci_low" in result.metrics
        assert f"bias_amplification.{attr}.df_amplification.ci_high" in result.metrics
    proxies = {(f.data.get("method"), f.metric) for f in result.findings if f.check == "fairness"}
    assert ("single_feature_auc", "fairness.proxy.sex.personal_status") in proxies
    assert ("single_feature_auc", "fairness.proxy.age_group.age") in proxies
    assert result.exit_code == 0  # wide intervals on 322 rows: flags, not a gating failure


# --- awkward inputs, through the check with a real model and real rows ------------------------

def context(prepared, tmp_path: Path, frame: pd.DataFrame, protected: list[str], model=None, label="good_credit",
            train=None):
    from audit.checks.base import AuditContext, AuditData
    data = AuditData(frame=frame, label=label, protected=protected, train=train)
    return AuditContext(spec=prepared.spec, policy=prepared.policy, model=model or prepared.model, data=data,
                        evidence_dir=tmp_path / "evidence", seed=0, domain="credit")


def run_check(ctx, **settings):
    from audit.checks.fairness import CHECK
    cfg = CHECK.config.model_validate({**ctx.policy.check_settings("fairness", ctx.domain), **settings})
    return CHECK.run(ctx, cfg)


@pytest.fixture(scope="module")
def credit_prepared(engine):
    return engine.prepare(ROOT / "examples" / "credit" / "audit.yaml")


def test_awkward_protected_attributes_give_findings_not_tracebacks(credit_prepared, tmp_path):
    frame = credit_prepared.data.frame.copy()
    rng = np.random.default_rng(0)
    frame["constant"] = "x"
    frame["all_missing"] = np.nan
    frame["coded"] = rng.choice([1.0, 2.0, np.nan], len(frame), p=[0.45, 0.4, 0.15])
    frame["is_foreign"] = frame["foreign_worker"] == 1
    frame["amount_band"] = frame["credit_amount"]  # continuous: binned into quartiles
    y_hat = credit_predictions(credit_prepared, frame)
    never = np.flatnonzero(y_hat == 0)[:40]
    frame["never_selected"] = "rest"
    frame.loc[never, "never_selected"] = "held_back"
    protected = ["constant", "all_missing", "coded", "is_foreign", "amount_band", "never_selected"]
    ctx = context(credit_prepared, tmp_path, frame, protected)
    res = run_check(ctx, intersections=[["coded", "religion"], ["coded", "never_selected"]],
                    reference_groups={"coded": "9"})
    by_title = {f.title: f for f in res.findings}
    assert by_title["Protected attribute 'constant' is constant"].status.value == "warn"
    assert "entirely missing" in by_title["Protected attribute 'all_missing' is constant"].detail
    assert "fairness.coded.selection_rate.unknown" in res.metrics
    assert {"fairness.coded.selection_rate.1", "fairness.coded.selection_rate.2"} <= set(res.metrics)
    assert "fairness.is_foreign.selection_rate.True" in res.metrics
    if (~frame["is_foreign"]).sum() < 30:  # boolean attribute with a small group: a warning, not a metric
        assert "fairness.is_foreign.selection_rate.False" not in res.metrics
        assert any(f.group == "False" and f.data.get("insufficient_data") for f in res.findings)
    else:
        assert "fairness.is_foreign.selection_rate.False" in res.metrics
    assert by_title["Protected attribute 'amount_band' binned into quartiles"].status.value == "pass"
    assert len([k for k in res.metrics if k.startswith("fairness.amount_band.selection_rate.")
                and not k.endswith(("ci_low", "ci_high"))]) == 4
    assert res.metrics["fairness.never_selected.selection_rate.held_back"] == 0.0
    assert res.metrics["fairness.never_selected.demographic_parity_ratio"] == 0.0
    dp = next(f for f in res.findings if f.metric == "fairness.never_selected.demographic_parity_ratio")
    assert dp.status.value == "fail" and dp.data["lowest_group"] == "held_back"
    assert "religion" in by_title["Intersection 'coded*religion' not analysed"].detail
    assert "fairness.coded*never_selected.demographic_parity_difference" in res.metrics
    assert "does not occur" in by_title["Reference group for 'coded' not usable"].detail
    assert not any(f.status.value == "error" for f in res.findings)
    json.dumps(res.details)  # the details are plain JSON


def credit_predictions(prepared, frame) -> np.ndarray:
    proba = prepared.model.predict_proba(frame)
    return (np.asarray(prepared.model.classes)[proba.argmax(1)].astype(str) == "1").astype(int)


def test_proxies_are_handed_to_later_checks(credit_prepared, tmp_path):
    ctx = context(credit_prepared, tmp_path, credit_prepared.data.frame, ["sex", "age_group"],
                  train=credit_prepared.data.train)
    run_check(ctx, intersections="none")
    proxies = {(p["feature"], p["attribute"]): p for p in ctx.shared["proxies"]}
    assert ("personal_status", "sex") in proxies and ("age", "age_group") in proxies
    assert set(proxies[("age", "age_group")]) == {"feature", "attribute", "score", "method"}
    assert proxies[("age", "age_group")]["score"] >= 0.8


def _sklearn_model(est, X: pd.DataFrame, task: str, classes=()):
    from audit.model_io import LoadedModel, ModelMeta, infer_features
    meta = ModelMeta(format="skops", file="model.skops", sha256="0" * 64, task=task, classes=list(classes),
                     features=infer_features(X))
    return LoadedModel(estimator=est, meta=meta)


def test_multiclass_labels_are_assessed_one_vs_rest(credit_prepared, tmp_path):
    from fairlearn import metrics as flm
    from audit.demo import build_scorecard
    frame = credit_prepared.data.frame
    train = credit_prepared.data.train
    X_cols = [c for c in credit_prepared.model.feature_names if c != "housing"]
    est = build_scorecard(train[X_cols]).fit(train[X_cols], train["housing"])
    model = _sklearn_model(est, train[X_cols], "multiclass", est.classes_.tolist())
    ctx = context(credit_prepared, tmp_path, frame, ["sex"], model=model, label="housing", train=train)
    res = run_check(ctx, intersections="none")
    y_hat = np.asarray(model.predict(frame)).astype(str)
    y = frame["housing"].astype(str).to_numpy()
    worst = 0.0
    for c in est.classes_:
        yb, pb = (y == c).astype(int), (y_hat == c).astype(int)
        want = flm.demographic_parity_difference(yb, pb, sensitive_features=frame["sex"])
        assert res.metrics[f"fairness.sex.class.{c}.demographic_parity_difference"] == pytest.approx(want, abs=1e-9)
        worst = max(worst, want)
    assert res.metrics["fairness.sex.demographic_parity_difference"] == pytest.approx(worst, abs=1e-9)
    assert "bias_amplification.sex.biasamp" in res.metrics and "bias_amplification.sex.df_amplification" in res.metrics
    assert any(f.data.get("class") for f in res.findings if f.metric == "fairness.sex.demographic_parity_difference")


def test_regression_reports_per_group_mae_and_mean_prediction(credit_prepared, tmp_path):
    from fairlearn import metrics as flm
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_absolute_error
    from sklearn.pipeline import make_pipeline
    frame, train = credit_prepared.data.frame, credit_prepared.data.train
    X_cols = ["duration", "installment_rate", "age", "number_of_existing_credits"]
    est = make_pipeline(Ridge()).fit(train[X_cols], train["credit_amount"])
    ctx = context(credit_prepared, tmp_path, frame, ["sex", "age_group"], model=_sklearn_model(est, train[X_cols], "regression"),
                  label="credit_amount")
    res = run_check(ctx, regression_difference_threshold=5000.0)
    pred = est.predict(frame[X_cols])
    mf = flm.MetricFrame(metrics={"mae": mean_absolute_error, "mean_prediction": flm.mean_prediction},
                         y_true=frame["credit_amount"], y_pred=pred, sensitive_features=frame["sex"])
    for g, row in mf.by_group.iterrows():
        assert res.metrics[f"fairness.sex.mae.{g}"] == pytest.approx(row["mae"], abs=1e-9)
        assert res.metrics[f"fairness.sex.mean_prediction.{g}"] == pytest.approx(row["mean_prediction"], abs=1e-9)
        assert res.metrics[f"fairness.sex.mae.{g}.ci_low"] <= row["mae"] <= res.metrics[f"fairness.sex.mae.{g}.ci_high"]
    assert res.metrics["fairness.sex.mean_prediction_difference"] == pytest.approx(
        mf.difference()["mean_prediction"], abs=1e-9)
    f = next(f for f in res.findings if f.metric == "fairness.sex.mean_prediction_difference")
    assert f.threshold == 5000.0 and f.ci is not None


def test_unlabelled_data_reports_selection_rate_parity_only(credit_prepared, tmp_path):
    frame = credit_prepared.data.frame.drop(columns=["good_credit"])
    ctx = context(credit_prepared, tmp_path, frame, ["sex"], label=None)
    res = run_check(ctx, intersections="none")
    assert "fairness.sex.demographic_parity_ratio" in res.metrics
    assert "fairness.sex.equalized_odds_difference" not in res.metrics
    assert not any(k.startswith("bias_amplification") for k in res.metrics)
    assert any(f.metric == "fairness.labels" and f.status.value == "warn" for f in res.findings)


def test_bad_fairness_policy_is_rejected_before_running(engine, tmp_path):
    from audit.errors import AuditInputError
    spec_path = copy_example("credit", tmp_path)
    policy = yaml.safe_load((ROOT / "policies/eu-ai-act-default.yaml").read_text())
    policy["checks"]["fairness"]["ratio_threshold"] = 1.5
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(policy))
    spec = yaml.safe_load(spec_path.read_text())
    spec["policy"] = "../../bad.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    with pytest.raises(AuditInputError, match="checks.fairness"):
        engine.prepare(spec_path)


def test_protected_attribute_missing_from_data_exits_2(demo_models, tmp_path):
    spec_path = copy_example("credit", tmp_path)
    spec = yaml.safe_load(spec_path.read_text())
    spec["dataset"]["protected"] = ["sex", "ethnicity"]
    spec_path.write_text(yaml.safe_dump(spec))
    proc = run_cli("run", str(spec_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "protected attribute 'ethnicity' is not in the dataset" in proc.stderr


def test_credit_domain_gates_a_confirmed_amplification(credit_prepared, tmp_path):
    """Labels differ mildly by group (0.4 vs 0.6); a thresholded model turns that into near 0 vs 1, a confirmed
    amplification.  The credit domain raises fairness to high, and amplification and proxies inherit it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder
    from audit.checks.fairness import CHECK
    rng = np.random.default_rng(5)
    n = 4000
    grp = rng.choice(["a", "b"], n)
    noise = rng.normal(size=n)
    y = (rng.random(n) < np.where(grp == "b", 0.6, 0.4) + 0.02 * noise).astype(int)
    frame = pd.DataFrame({"grp": grp, "noise": noise, "good_credit": y})
    X = frame[["grp", "noise"]]
    est = make_pipeline(make_column_transformer((OneHotEncoder(), ["grp"]), remainder="passthrough"),
                        LogisticRegression()).fit(X, y)
    ctx = context(credit_prepared, tmp_path, frame, ["grp"], model=_sklearn_model(est, X, "binary", [0, 1]), train=frame)
    cfg = CHECK.config.model_validate(ctx.policy.check_settings("fairness", "credit"))
    assert cfg.severity.value == "high" and cfg.amplification_severity.value == "high"
    assert cfg.proxy_severity.value == "high"
    res = run_check(ctx, intersections="none")
    amp = {f.metric: f for f in res.findings if f.metric and f.metric.startswith("bias_amplification.grp.")}
    for f in amp.values():
        assert f.status.value == "fail" and f.severity.value == "high", (f.metric, f.ci, f.data.get("p_adjusted"), f.data.get("significant"), f.data.get("prediction_disparity_established"))
        lo, hi = f.data["interval"]
        assert f.data["significant"] and lo > f.threshold and lo <= f.value <= (hi if hi is not None else np.inf)
    assert set(amp) == {"bias_amplification.grp.biasamp", "bias_amplification.grp.df_amplification"}
