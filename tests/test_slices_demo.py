"""The weak-slice and robustness checks on the bundled Adult and credit demo audits (real models, real data)."""
from __future__ import annotations

import json

import pytest

from conftest import example_for_checks


@pytest.fixture(scope="module")
def demo_results(engine, tmp_path_factory):
    """The example specs, restricted to the two checks, each audited once."""
    out = {}
    for name in ("credit", "adult"):
        spec_path = example_for_checks(name, tmp_path_factory.mktemp(name), ["slices", "robustness"], keep_card=False)
        result = engine.run(engine.prepare(spec_path))
        out[name] = (result, engine.audit_dir(result.audit_id))
    return out


@pytest.mark.parametrize("name", ["credit", "adult"])
def test_demo_audit_reports_weak_slices_with_intervals_and_fdr(demo_results, name):
    result, audit_dir = demo_results[name]
    assert result.checks["slices"].status == "completed", result.checks["slices"].error
    m = result.metrics
    assert m["slices.count"] >= 1 and m["slices.significant"] <= m["slices.tested"]
    assert m["slices.1.size"] >= 30 and m["slices.1.q_value"] <= 0.05 and m["slices.1.effect"] >= 0.2
    primary = next(f for f in result.findings if f.check == "slices" and f.metric and f.metric.startswith("slices.1."))
    lo, hi = primary.ci
    assert lo <= primary.value <= hi and primary.value >= primary.threshold
    assert m[f"{primary.metric}.ci_low"] == lo and m[f"{primary.metric}.ci_high"] == hi
    details = json.loads((audit_dir / "audit.json").read_text())["checks"]["slices"]["details"]
    assert details["settings"]["fdr_method"] == "bh" and 0.95 < details["fcr_confidence"] < 1
    assert details["weak_slices"] == m["slices.count"] and len(details["table"]) == min(10, m["slices.count"])
    assert "protected" in details["table"][0]


@pytest.mark.parametrize("name", ["credit", "adult"])
def test_demo_audit_reports_flip_rates_and_evasion(demo_results, name):
    result, audit_dir = demo_results[name]
    run = result.checks["robustness"]
    assert run.status == "completed", run.error
    m = result.metrics
    assert 0 <= m["robustness.flip_rate"] <= 1 and m["robustness.flip_rate.ci_low"] <= m["robustness.flip_rate"]
    assert 0 <= m["robustness.evasion.success_rate"] <= 1 and m["robustness.evasion.median_changes"] >= 1
    protected = set(result.dataset.protected)
    immutable = {r["column"] for r in run.details["immutable"]}
    assert "age" in immutable                                    # the default policy list
    perturbed = {k.rsplit(".", 1)[-1] for k in m if k.startswith(("robustness.flip_rate.", "robustness.missing.flip_rate."))}
    assert not perturbed & (immutable | protected)
    assert len(perturbed - {"ci_low", "ci_high"}) >= 5
    if name == "credit":   # the scorecard's scaler rejects missing numeric inputs: reported, not a crash
        assert m["robustness.missing.errors"] >= 1
        assert any(f.metric == "robustness.missing.errors" and f.status.value == "warn" for f in result.findings)
    for check in ("slices", "robustness"):
        assert result.checks[check].seconds < 60
