"""Membership inference: an overfitted model leaks who was in its training data and a regularised one does
not; the attack AUC equals scikit-learn's, and its bounds are what the method says."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from audit.metrics.membership import attack_auc, clopper_pearson, epsilon_lower_bound, tpr_at_fpr
from conftest import run_synthetic_audit


def _data(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n),
                      "sex": rng.choice(["f", "m"], n)})
    y = ((X.a + 0.5 * X.b + rng.normal(scale=1.5, size=n)) > 0).astype(int).to_numpy()  # noisy labels
    return X, y


def _audit(settings, registry, tmp_path, name, model):
    X, y = _data(2000, 4)
    features = ["a", "b", "c"]
    model.fit(X[features][:1000], y[:1000])
    df = X.assign(label=y, split=["train"] * 1000 + ["test"] * 1000)
    result, _ = run_synthetic_audit(settings, registry, tmp_path, name, model, X[features][:1000], df, "privacy",
                                    ["sex"], {"n_boot": 200})
    return next(f for f in result.findings if f.metric == "privacy.attack_auc"), result


def test_an_overfitted_model_leaks_membership(settings, registry, tmp_path):
    leaky = RandomForestClassifier(n_estimators=50, min_samples_leaf=1, random_state=0)  # memorises noisy labels
    finding, result = _audit(settings, registry, tmp_path, "privacy-leaky", leaky)
    assert finding.status.value == "fail" and finding.ci[0] > 0.6
    assert finding.data["epsilon_lower_bound"] > 0.5
    assert result.checks["privacy"].status == "completed"
    assert any(f.metric == "privacy.attack_auc.sex" for f in result.findings)


def test_a_regularised_model_does_not(settings, registry, tmp_path):
    finding, _ = _audit(settings, registry, tmp_path, "privacy-tight", LogisticRegression(C=0.1))
    assert finding.status.value == "pass" and finding.ci[0] <= 0.5 <= finding.ci[1] + 0.02
    assert finding.data["epsilon_lower_bound"] < 0.5


def test_attack_statistics_match_references():
    rng = np.random.default_rng(0)
    member, non_member = rng.normal(0.3, 1, 800), rng.normal(0, 1, 1200)
    labels = np.r_[np.ones(800), np.zeros(1200)]
    assert attack_auc(member, non_member) == pytest.approx(skm.roc_auc_score(labels, np.r_[member, non_member]))
    point = tpr_at_fpr(member, non_member, 0.01, 0.05)
    assert point.fpr <= 0.011 and point.tpr_ci[0] <= point.tpr <= point.tpr_ci[1]
    assert tpr_at_fpr(member, non_member, 0.001, 0.05) is None   # 1,200 non-members cannot show 0.1%
    lo, hi = clopper_pearson(3, 10, 0.05)
    assert (lo, hi) == pytest.approx((0.0667, 0.6525), abs=1e-4)
    # identical distributions: the epsilon bound is (almost always) 0
    same = [epsilon_lower_bound(rng.normal(size=500), rng.normal(size=500), 0.05) for _ in range(20)]
    assert sum(e > 0 for e in same) <= 2


def test_bootstrap_replicates_equal_the_auc_of_the_resampled_rows():
    """The vectorised replicate is the Mann-Whitney AUC of the drawn rows, ties included."""
    from audit.metrics.membership import bootstrap_auc
    from audit.metrics.performance import resample_counts
    rng = np.random.default_rng(0)
    member, non_member = rng.normal(0.2, 1, 300), np.round(rng.normal(0, 1, 200), 1)  # many ties
    reps = bootstrap_auc(member, non_member, np.random.default_rng(7), 3)
    draw = np.random.default_rng(7)
    w_member, w_non = resample_counts(draw, 300, 3).astype(int), resample_counts(draw, 200, 3).astype(int)
    for b, (wm, wn) in enumerate(zip(w_member, w_non)):
        assert reps[b] == pytest.approx(attack_auc(np.repeat(member, wm), np.repeat(np.sort(non_member), wn)),
                                        abs=1e-12)
