"""The vectorised row bootstrap equals scikit-learn's metrics on the drawn rows, replicate by replicate."""
import numpy as np
import pytest
from sklearn import metrics as skm

from audit.metrics.performance import binary_metrics, binary_replicates, resample_counts


def _data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    score = np.round(np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1), 2)  # rounded: many tied scores
    return y, score, (score >= 0.5).astype(int)


def test_replicates_equal_metrics_of_the_drawn_rows():
    y, score, y_pred = _data(800, 0)
    idx = np.random.default_rng(1).integers(0, len(y), size=(25, len(y)))
    w = np.stack([np.bincount(i, minlength=len(y)) for i in idx]).astype(float)
    reps = binary_replicates(w, y, score, y_pred)
    for b, rows in enumerate(idx):
        yb, sb, pb = y[rows], score[rows], y_pred[rows]
        assert reps["roc_auc"][b] == pytest.approx(skm.roc_auc_score(yb, sb), abs=1e-12)
        assert reps["balanced_accuracy"][b] == pytest.approx(skm.balanced_accuracy_score(yb, pb), abs=1e-12)
        assert reps["log_loss"][b] == pytest.approx(skm.log_loss(yb, sb), abs=1e-9)
        assert reps["brier"][b] == pytest.approx(skm.brier_score_loss(yb, sb), abs=1e-12)
        ref = binary_metrics(yb, sb, pb)
        assert reps["accuracy"][b] == pytest.approx(ref["accuracy"], abs=1e-12)
        assert reps["ece"][b] == pytest.approx(ref["ece"], abs=1e-12)


def test_replicate_with_one_class_gives_nan_auc():
    y, score, y_pred = np.array([0, 0, 1]), np.array([0.1, 0.2, 0.9]), np.array([0, 0, 1])
    reps = binary_replicates(np.array([[2.0, 1.0, 0.0], [1.0, 1.0, 1.0]]), y, score, y_pred)
    assert np.isnan(reps["roc_auc"][0]) and np.isnan(reps["balanced_accuracy"][0])
    assert reps["roc_auc"][1] == 1.0


def test_resample_counts_is_a_row_bootstrap():
    w = resample_counts(np.random.default_rng(0), 50, 4000)
    assert (w.sum(1) == 50).all()
    # each row's count is Binomial(n, 1/n): mean 1, variance (1 - 1/n)
    assert w.mean() == pytest.approx(1.0, abs=0.01)
    assert w.var() == pytest.approx(1 - 1 / 50, abs=0.03)


def test_ece_interval_covers_the_truth_and_contains_its_estimate():
    """Binned ECE is biased upwards: percentile limits of its bootstrap miss a near-zero truth (0% coverage in
    benchmarks/bench_calibration.py) and can exclude the estimate; the bias-corrected interval must do neither."""
    from audit.metrics.intervals import bootstrap_interval
    from audit.metrics.performance import binary_replicates, expected_calibration_error, resample_counts
    rng = np.random.default_rng(11)

    def draw(n):
        score = rng.beta(2, 3, n)
        y = (rng.random(n) < np.clip(score + 0.02, 0, 1)).astype(int)  # slightly miscalibrated: truth > 0
        return y, score

    truth = expected_calibration_error(*draw(2_000_000))
    hits, inside, percentile_hits = 0, 0, 0
    redraws = 150
    for _ in range(redraws):
        y, score = draw(3000)
        est = expected_calibration_error(y, score)
        reps = binary_replicates(resample_counts(rng, len(y), 300), y, score, (score >= 0.5).astype(int))["ece"]
        lo, hi = bootstrap_interval(est, reps, 0.95, biased_upwards=True)
        plo, phi = bootstrap_interval(est, reps, 0.95)
        hits += lo <= truth <= hi
        percentile_hits += plo <= truth <= phi
        inside += lo <= est <= hi
    assert inside == redraws
    assert hits / redraws >= 0.92, (hits / redraws, truth)
    assert percentile_hits / redraws < hits / redraws  # the case the plain percentile interval gets wrong
