"""`aiaudit classify` through the real console script: JSON and text output, dates, overlays, bad input."""
from __future__ import annotations

import hashlib
import json

import pytest

from conftest import ROOT, run_cli

CREDIT = "examples/cards/credit-scoring.yaml"


def classify_json(*args: str) -> dict:
    proc = run_cli("classify", *args, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_classify_json_has_tier_citations_obligations_and_card_hash():
    out = classify_json(CREDIT, "--date", "2026-11-22")
    assert out["tier"] == "high" and out["citations"] == ["Art. 6(2)", "Annex III 5(b)"]
    assert out["transparency"] == [] and out["fria_required"] is True and out["needs_review"] is False
    assert out["gpai"] == {"is_gpai": False, "systemic_risk": False, "citations": [], "open_source_waiver": False}
    assert out["card"]["sha256"] == hashlib.sha256((ROOT / CREDIT).read_bytes()).hexdigest()
    obligations = {o["id"]: o for o in out["obligations"]}
    for o in obligations.values():
        assert {"id", "article", "title", "checks", "status", "automation", "applies_from"} <= set(o)
    assert set(obligations) >= {f"eu.aia.art.{a}" for a in (9, 10, 11, 12, 13, 14, 15, 17, 26, 27, 43, 49, 72, 73, 86)}
    assert obligations["eu.aia.art.15"]["checks"] == ["performance", "slices", "robustness"]
    assert obligations["eu.aia.art.15"]["status"] == "no-evidence"  # no audit considered
    assert obligations["eu.aia.art.17"]["status"] == "manual-only"
    assert "fairness" in obligations["eu.aia.art.10"]["checks"]
    assert obligations["eu.aia.art.10"]["applies_from"] == "2027-12-02"  # Annex III as postponed by the Omnibus, in force on the date
    assert out["penalties"]["eu.aia.art.99.4"]["max_eur"] == 15_000_000
    fired = {t["rule"]: t for t in out["trace"] if t["status"] == "fires"}
    assert fired["eu.aia.anx.III.5.b"]["facts"] == {"annex_iii": ["5(b)"]}


def test_classify_date_and_amendment_flags():
    early = classify_json(CREDIT, "--date", "2026-01-15")
    assert early["as_of"] == "2026-01-15" and early["tier_in_effect"] is False and early["overlays"] == []
    later = classify_json(CREDIT, "--date", "2027-01-15")  # the Omnibus is in force: no flag needed
    assert later["overlays"][0]["id"] == "omnibus-2026" and later["overlays"][0]["verified_against_oj"] is False
    assert "Digital Omnibus" in later["consolidated_version"]
    art9 = next(o for o in later["obligations"] if o["id"] == "eu.aia.art.9")
    assert art9["applies_from"] == "2027-12-02" and art9["in_effect"] is False and art9["dates"]["text_date"] == "2026-08-02"
    enacted = classify_json(CREDIT, "--date", "2027-01-15", "--as-enacted")
    assert enacted["overlays"] == [] and enacted["as_enacted"] is True and enacted["tier_in_effect"] is True
    ahead = classify_json(CREDIT, "--date", "2026-05-01", "--overlay", "omnibus-2026")
    assert ahead["overlays"][0]["applied"] == "requested"


def test_classify_text_explains_why():
    proc = run_cli("classify", "examples/cards/emotion-recognition-work.yaml", "--date", "2026-11-22")
    assert proc.returncode == 0, proc.stderr
    assert "PROHIBITED" in proc.stdout and "Art. 5(1)(f)" in proc.stdout
    assert "practices.emotion_recognition_medical_or_safety=false" in proc.stdout  # the trace shows the carve-out fact
    assert "Art. 99(3)" in proc.stdout


def _bad(tmp_path, text: str):
    path = tmp_path / "card.yaml"
    path.write_text(text)
    return str(path)


BAD = {
    "unknown Annex III point": ("name: x\nannex_iii: ['9(z)']\n", "annex_iii.0"),
    "wrong type": ("name: x\nprofiling: 'sometimes'\n", "profiling"),
    "unknown nested key": ("name: x\npractices:\n  mind_reading: true\n", "practices.mind_reading"),
    "unknown top-level key": ("name: x\ncolour: red\n", "colour"),
    "wrong list type": ("name: x\nderogation: a\n", "derogation"),
    "Annex I item out of range": ("name: x\nannex_i: {legislation: [21]}\n", "annex_i.legislation.0"),
    "malformed yaml": ("name: x\nannex_iii: [unclosed\n", "malformed YAML"),
    "not a mapping": ("- a\n- b\n", "mapping"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_card_exits_2_naming_the_field(case, tmp_path):
    text, needle = BAD[case]
    proc = run_cli("classify", _bad(tmp_path, text))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert needle in lines[0] and "Traceback" not in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("args, needle", [
    (["examples/cards/nope.yaml"], "not found"),
    ([CREDIT, "--date", "2026-13-01"], "--date"),
    ([CREDIT, "--format", "xml"], "--format"),
    ([CREDIT, "--overlay", "omnibus-2030"], "omnibus-2030"),
])
def test_bad_options_exit_2(args, needle):
    proc = run_cli("classify", *args)
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
