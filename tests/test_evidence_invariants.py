"""Properties every finding of every check must have, over the full example audits."""
from __future__ import annotations

import math

import pytest


@pytest.mark.parametrize("audit", ["credit_audit", "adult_audit"])
def test_no_point_estimate_lies_outside_its_own_interval(audit, request):
    result = request.getfixturevalue(audit)
    with_ci = [f for f in result.findings if f.ci is not None and f.value is not None]
    assert len(with_ci) >= 20  # performance, fairness and explanation findings all carry intervals
    outside = [(f.id, f.value, f.ci) for f in with_ci
               if not (f.ci[0] - 1e-9 * max(1.0, abs(f.value)) <= f.value <= f.ci[1] + 1e-9 * max(1.0, abs(f.value)))]
    assert not outside
    assert all(f.ci[0] <= f.ci[1] and not any(math.isnan(v) for v in f.ci) for f in with_ci)


@pytest.mark.parametrize("audit", ["credit_audit", "adult_audit"])
def test_every_fairness_verdict_states_its_family_method_and_test(audit, request):
    result = request.getfixturevalue(audit)
    verdicts = [f for f in result.findings if f.check == "fairness" and "p_adjusted" in f.data]
    assert verdicts
    family = result.checks["fairness"].details["settings"]["family_size"]
    for f in verdicts:
        assert f.data["family_size"] == family and f.data["correction"] == "holm" and f.data["ci_method"]
        if f.data["p_adjusted"] is not None:
            assert f.data["p_value"] <= f.data["p_adjusted"] <= 1
        if f.status.value in ("warn", "fail"):
            assert f.data["significant"], f.id
