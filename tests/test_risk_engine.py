"""The tier drives the audit: classification first, required checks planned, evidence rated, gaps become findings."""
from __future__ import annotations

import hashlib
import json
import sqlite3

import jsonschema
import pytest
import yaml

from audit import risk_link
from audit.checks.base import Check, CheckResult
from audit.spec import load_spec
from conftest import ROOT, copy_example, run_cli
from risk.regulation import load_regulation

CREDIT_SPEC = ROOT / "examples" / "credit" / "audit.yaml"


def _explode(ctx, cfg) -> CheckResult:
    raise RuntimeError("fairness backend unavailable")


@pytest.fixture(scope="module")
def trimmed_credit_audit(engine):
    """The credit example with only performance run for real and 'fairness' crashing (fast, and exercises gaps)."""
    prepared = engine.prepare(CREDIT_SPEC)
    planned = {c.name for c in prepared.plan} | set(prepared.skipped)
    perf = next(c for c in prepared.plan if c.name == "performance")
    prepared.plan = [perf, Check(name="fairness", run=_explode)]
    return prepared, planned, engine.run(prepared)


def test_required_checks_are_added_to_the_plan(trimmed_credit_audit):
    prepared, planned, _ = trimmed_credit_audit
    c = prepared.classification
    assert c.tier == "high" and "Annex III 5(b)" in c.citations
    assert c.required_checks == ["data_governance", "performance", "fairness", "slices", "explanations", "robustness"]
    from audit.checks import available_checks
    assert set(c.required_checks) & set(available_checks()) <= planned


def test_audit_records_tier_obligations_and_tags_the_model(trimmed_credit_audit, registry, settings):
    _, _, result = trimmed_credit_audit
    risk = result.risk
    assert risk["tier"] == "high" and risk["citations"] == ["Art. 6(2)", "Annex III 5(b)"]
    assert risk["regulation"]["name"] == "eu-ai-act-2024"
    assert risk["regulation"]["checksum"] == load_regulation().checksum
    card_path = ROOT / "examples" / "cards" / "credit-scoring.yaml"
    assert risk["card"]["sha256"] == hashlib.sha256(card_path.read_bytes()).hexdigest()
    obligations = {o["id"]: o for o in risk["obligations"]}
    for o in obligations.values():
        assert {"id", "article", "title", "checks", "status", "automation", "applies_from"} <= set(o)
    assert obligations["eu.aia.art.15"]["status"] == "partial"    # performance ran; slices, robustness did not
    assert obligations["eu.aia.art.72"]["status"] == "evidenced"  # needs performance only
    assert obligations["eu.aia.art.10"]["status"] == "failing"    # fairness errored (an error finding), slices not run
    assert obligations["eu.aia.art.10"]["findings"]["failing"]
    assert obligations["eu.aia.art.12"]["status"] == "manual-only"
    assert obligations["eu.aia.art.15"]["findings"]["count"] > 0  # the performance check's findings count
    for o in obligations.values():  # no obligation is evidenced by nothing
        if o["status"] == "evidenced":
            assert o["findings"]["count"] >= 1 and not o["findings"]["failing"], o["id"]
    assert result.checks["fairness"].status == "error"
    # the stored audit.json carries the block and validates
    stored = json.loads((settings.audits_dir / result.audit_id / "audit.json").read_text())
    jsonschema.validate(stored, json.loads((ROOT / "docs/schema/audit.schema.json").read_text()))
    assert stored["risk"]["tier"] == "high"
    version = registry.resolve("models:/german-credit-scorecard@candidate")
    tags = registry.client.get_model_version(version.name, version.version).tags
    assert tags["aiaudit.tier"] == "high"
    con = sqlite3.connect(settings.records_db)
    assert con.execute("SELECT tier FROM audits WHERE audit_id = ?", (result.audit_id,)).fetchone()[0] == "high"
    con.close()


def test_missing_required_checks_become_findings(trimmed_credit_audit):
    _, _, result = trimmed_credit_audit
    gaps = {f.data["check"]: f for f in result.findings if f.check == "risk" and f.metric.startswith("risk.required_check.")}
    assert set(gaps) == {"data_governance", "fairness", "slices", "explanations", "robustness"}
    policy = load_regulation().obligations.missing_check
    for f in gaps.values():
        assert f.status.value == policy.status and f.severity.value == policy.severity
    assert gaps["fairness"].data["state"] == "error" and gaps["slices"].data["state"] == "not run"
    assert "EU-AI-Act Art. 10(2)(f)" in gaps["fairness"].references
    assert "EU-AI-Act Art. 13(3)(b)(iv)" in gaps["explanations"].references
    assert "eu.aia.art.86" in gaps["explanations"].data["obligations"]
    missing = {m["check"] for m in result.risk["missing_checks"]}
    assert missing == set(gaps)


def test_classify_rates_evidence_from_a_stored_audit(trimmed_credit_audit):
    _, _, result = trimmed_credit_audit
    proc = run_cli("classify", "examples/cards/credit-scoring.yaml", "--format", "json", "--audit", result.audit_id)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["evidence_source"] == result.audit_id
    assert {o["id"]: o["status"] for o in out["obligations"]} == {o["id"]: o["status"] for o in result.risk["obligations"]}
    latest = run_cli("classify", "examples/cards/credit-scoring.yaml", "--format", "json", "--model", "german-credit-scorecard")
    assert latest.returncode == 0 and json.loads(latest.stdout)["evidence_source"]
    assert run_cli("classify", "examples/cards/credit-scoring.yaml", "--audit", "no-such-audit").returncode == 2


def test_skipped_check_is_a_finding():
    card = risk_link.load_card(ROOT / "examples" / "cards" / "cv-screening.yaml")
    classification = risk_link.classify_card(card)
    assert risk_link.required_checks(classification) == ["data_governance", "performance", "fairness", "slices", "explanations",
                                                         "robustness"]
    ran = {"data_governance": "completed", "performance": "completed", "fairness": "skipped", "slices": "completed",
           "explanations": "completed", "robustness": "completed"}
    from audit.findings import Finding
    produced = [Finding.make(c, f"{c} result", status="pass", severity="info", metric=f"{c}.x")
                for c, state in ran.items() if state == "completed"]
    block, findings = risk_link.assess(card, classification, ran, produced)
    assert [f.data["check"] for f in findings] == ["fairness"] and findings[0].data["state"] == "skipped"
    assert "skipped" in findings[0].detail and "Art. 10(2)(f)" in findings[0].detail
    status = {o["id"]: o["status"] for o in block["obligations"]}
    assert status["eu.aia.art.13"] == "partial" and status["eu.aia.art.10"] == "partial"
    assert status["eu.aia.art.15"] == "evidenced"
    assert "eu.aia.art.27" not in status  # a provider card: the FRIA is a deployer duty (Art. 27(1))
    assert block["evidence_summary"]["no-evidence"] == 0 and block["evidence_summary"]["failing"] == 0
    assert risk_link.assess(None, None, ran, []) == (None, [])


def test_example_specs_link_their_cards():
    want = {"credit": ("Annex III 5(b)", ["credit"]), "adult": ("Annex III 4(a)", ["employment"]),
            "compas": ("Annex III 6(d)", ["justice"])}
    for example, (cite, domains) in want.items():
        spec = load_spec(ROOT / "examples" / example / "audit.yaml")
        c = risk_link.classify_card(risk_link.load_card(spec.resolve(spec.spec.system_card)))
        assert c.tier == "high" and cite in c.citations and c.domains == domains
        assert spec.spec.domain in c.domains  # the spec's threshold domain matches the card's use case
    compas = risk_link.classify_card(risk_link.load_card(ROOT / "examples" / "cards" / "recidivism-risk.yaml"))
    assert compas.fria_required is True and "Art. 5(1)(d)" not in compas.citations


def test_prohibited_card_fails_the_gate(engine, tmp_path):
    spec_path = copy_example("credit", tmp_path)
    spec = yaml.safe_load(spec_path.read_text())
    spec.update(system_card="../cards/emotion-recognition-work.yaml", checks=["performance"])
    spec_path.write_text(yaml.safe_dump(spec))
    prepared = engine.prepare(spec_path)
    assert prepared.classification.tier == "prohibited" and prepared.classification.required_checks == []
    prepared.plan = []
    result = engine.run(prepared)
    banned = [f for f in result.findings if f.metric == "risk.tier"]
    assert len(banned) == 1 and banned[0].severity.value == "critical" and banned[0].status.value == "fail"
    assert "EU-AI-Act Art. 5(1)(f)" in banned[0].references
    assert result.status == "failed" and result.exit_code == 1 and result.risk["tier"] == "prohibited"


def test_bad_card_in_spec_exits_2_before_anything_is_written(demo_models, tmp_path, settings):
    spec_path = copy_example("credit", tmp_path)
    (tmp_path / "examples" / "cards" / "credit-scoring.yaml").write_text("name: x\nannex_iii: ['5(x)']\n")
    before = sorted(p.name for p in settings.audits_dir.iterdir())
    proc = run_cli("run", str(spec_path))
    assert proc.returncode == 2, proc.stderr
    assert "annex_iii.0" in proc.stderr and "5(x)" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in settings.audits_dir.iterdir()) == before
