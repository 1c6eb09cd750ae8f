"""EU AI Act classification as policy-as-code: golden scenarios, dates, overlays, evidence rating, data integrity.

Expected outcomes are read off Regulation (EU) 2024/1689 (OJ L 12.7.2024) as condensed in
/work/shared/reference/eu-ai-act.md: Art. 5(1)(a)-(h), Art. 6(1)-(3), Annex III, Art. 27, Art. 50,
Art. 51(2), Art. 113.
"""
from __future__ import annotations

import copy
import json
import re
import shutil
from datetime import date
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import ROOT
from risk.card import ANNEX_III_POINTS, CardError, load_card, parse_card
from risk.classify import classify
from risk.errors import RegulationError
from risk.evidence import rate_evidence, reference_id
from risk.regulation import load_regulation, load_regulation_dir, regulation_dir

# A card on which nothing applies, every fact answered: the baseline each scenario changes.
BASE = {
    "name": "scenario", "role": ["provider", "deployer"], "deployer_type": "private",
    "scope": {"military_defence_national_security": False, "scientific_research_only": False},
    "practices": {k: False for k in (
        "subliminal_or_manipulative_causing_harm", "exploits_vulnerabilities_causing_harm", "social_scoring_detrimental",
        "crime_risk_solely_profiling", "untargeted_facial_scraping", "emotion_recognition_workplace_or_education",
        "biometric_categorisation_sensitive_traits", "realtime_rbi_public_law_enforcement", "generates_ncii_or_csam")},
    "annex_iii": [], "derogation": [], "profiling": False,
    "annex_i": {"legislation": [], "third_party_conformity": None},
    "transparency": {k: False for k in ("interacts_with_people", "generates_synthetic_content",
                                        "emotion_recognition_or_biometric_categorisation", "deep_fake",
                                        "public_interest_text", "authorised_law_enforcement")},
    "gpai": {"is_gpai": False},
    "art25": {"rebranded": False, "substantial_modification": False, "intended_purpose_changed": False},
}
TODAY = date(2026, 11, 22)


def make(**changes):
    """BASE with dotted-path changes, e.g. make(**{"practices.social_scoring_detrimental": True})."""
    card = copy.deepcopy(BASE)
    for path, value in changes.items():
        node = card
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return parse_card(card)


def run(as_of=TODAY, overlays=(), as_enacted=False, **changes):
    return classify(make(**changes), as_of=as_of, overlays=overlays, as_enacted=as_enacted)


P = "practices."
SCENARIOS = {
    # -- Art. 5(1): every letter, and each carve-out -----------------------------------------------
    "5a manipulation": ({P + "subliminal_or_manipulative_causing_harm": True}, {"tier": "prohibited", "cites": ["Art. 5(1)(a)"]}),
    "5b vulnerabilities": ({P + "exploits_vulnerabilities_causing_harm": True}, {"tier": "prohibited", "cites": ["Art. 5(1)(b)"]}),
    "5c social scoring": ({P + "social_scoring_detrimental": True}, {"tier": "prohibited", "cites": ["Art. 5(1)(c)"]}),
    "5d crime profiling": ({P + "crime_risk_solely_profiling": True, P + "crime_risk_supports_human_assessment": False},
                           {"tier": "prohibited", "cites": ["Art. 5(1)(d)"]}),
    "5d carve-out human assessment": ({P + "crime_risk_solely_profiling": True, P + "crime_risk_supports_human_assessment": True},
                                      {"tier": "minimal", "not_cites": ["Art. 5(1)(d)"]}),
    "5e facial scraping": ({P + "untargeted_facial_scraping": True}, {"tier": "prohibited", "cites": ["Art. 5(1)(e)"]}),
    "5f emotion at work": ({P + "emotion_recognition_workplace_or_education": True, P + "emotion_recognition_medical_or_safety": False,
                            "annex_iii": ["1(c)"]}, {"tier": "prohibited", "cites": ["Art. 5(1)(f)"]}),
    "5f carve-out medical or safety -> Annex III 1(c)": (
        {P + "emotion_recognition_workplace_or_education": True, P + "emotion_recognition_medical_or_safety": True,
         "annex_iii": ["1(c)"]}, {"tier": "high", "cites": ["Art. 6(2)", "Annex III 1(c)"], "not_cites": ["Art. 5(1)(f)"]}),
    "5f carve-out unknown -> presumed prohibited, review": (
        {P + "emotion_recognition_workplace_or_education": True}, {"tier": "prohibited", "review": True,
                                                                    "questions": [P + "emotion_recognition_medical_or_safety"]}),
    "5g biometric categorisation": ({P + "biometric_categorisation_sensitive_traits": True,
                                     P + "biometric_categorisation_labelling_or_law_enforcement": False},
                                    {"tier": "prohibited", "cites": ["Art. 5(1)(g)"]}),
    "5g carve-out labelling -> Annex III 1(b)": (
        {P + "biometric_categorisation_sensitive_traits": True, P + "biometric_categorisation_labelling_or_law_enforcement": True,
         "annex_iii": ["1(b)"]}, {"tier": "high", "cites": ["Annex III 1(b)"], "not_cites": ["Art. 5(1)(g)"]}),
    "5h real-time RBI": ({P + "realtime_rbi_public_law_enforcement": True, P + "realtime_rbi_permitted_objective": False},
                         {"tier": "prohibited", "cites": ["Art. 5(1)(h)"]}),
    "5h permitted objective -> Annex III 1(a), FRIA": (
        {P + "realtime_rbi_public_law_enforcement": True, P + "realtime_rbi_permitted_objective": True,
         "annex_iii": ["1(a)"], "biometric_verification_only": False, "role": "deployer", "deployer_type": "public_body"},
        {"tier": "high", "cites": ["Annex III 1(a)"], "not_cites": ["Art. 5(1)(h)"], "fria": True, "fria_cites": ["Art. 5(2)"]}),
    "5h permitted, card omits Annex III 1(a) -> review": (
        {P + "realtime_rbi_public_law_enforcement": True, P + "realtime_rbi_permitted_objective": True},
        {"tier": "minimal", "review": True, "questions": ["annex_iii"]}),
    # -- Art. 6(1): Annex I needs the third-party conformity test ------------------------------------
    "6(1) with third-party assessment": ({"annex_i.legislation": [11], "annex_i.third_party_conformity": True},
                                         {"tier": "high", "cites": ["Art. 6(1)"]}),
    "6(1) without third-party assessment": ({"annex_i.legislation": [11], "annex_i.third_party_conformity": False},
                                            {"tier": "minimal", "not_cites": ["Art. 6(1)"]}),
    "6(1) third-party unknown": ({"annex_i.legislation": [11]}, {"tier": "minimal", "review": True,
                                                                 "questions": ["annex_i.third_party_conformity"]}),
    # -- Annex III carve-outs -------------------------------------------------------------------------
    "5(b) credit scoring": ({"annex_iii": ["5(b)"], "financial_fraud_detection": False},
                            {"tier": "high", "cites": ["Art. 6(2)", "Annex III 5(b)"], "fria": True}),
    "5(b) fraud detection carve-out": ({"annex_iii": ["5(b)"], "financial_fraud_detection": True},
                                       {"tier": "minimal", "not_cites": ["Annex III 5(b)"], "fria": False}),
    "5(b) fraud unknown": ({"annex_iii": ["5(b)"]}, {"tier": "high", "review": True, "questions": ["financial_fraud_detection"]}),
    "1(a) verification only": ({"annex_iii": ["1(a)"], "biometric_verification_only": True}, {"tier": "minimal"}),
    "7(d) travel documents": ({"annex_iii": ["7(d)"], "travel_document_verification_only": True}, {"tier": "minimal"}),
    "8(b) campaign logistics": ({"annex_iii": ["8(b)"], "campaign_logistics_only": True}, {"tier": "minimal"}),
    # -- Art. 6(3) derogation and the profiling override ----------------------------------------------
    "derogation (a) holds": ({"annex_iii": ["4(a)"], "derogation": ["a"]},
                             {"tier": "minimal", "cites": ["Art. 6(3)(a)", "Annex III 4(a)"], "not_cites": ["Art. 6(2)"]}),
    "derogation (d) holds": ({"annex_iii": ["3(b)"], "derogation": ["d"]}, {"tier": "minimal", "cites": ["Art. 6(3)(d)"]}),
    "derogation defeated by profiling": ({"annex_iii": ["4(a)"], "derogation": ["b", "c"], "profiling": True},
                                         {"tier": "high", "cites": ["Art. 6(2)", "Art. 6(3)"], "not_cites": ["Art. 6(3)(b)"]}),
    "derogation with profiling unknown": ({"annex_iii": ["4(a)"], "derogation": ["a"], "profiling": None},
                                          {"tier": "high", "review": True, "questions": ["profiling"]}),
    "derogation unknown": ({"annex_iii": ["4(a)"], "derogation": None}, {"tier": "high", "review": True, "questions": ["derogation"]}),
    # -- Art. 50: each paragraph, their exceptions, stacking with high-risk -----------------------------
    "50(1) chatbot": ({"transparency.interacts_with_people": True, "transparency.obvious_ai_interaction": False},
                      {"tier": "transparency", "transparency": ["Art. 50(1)"]}),
    "50(1) obvious": ({"transparency.interacts_with_people": True, "transparency.obvious_ai_interaction": True},
                      {"tier": "minimal", "transparency": []}),
    "50(2) synthetic content": ({"transparency.generates_synthetic_content": True, "transparency.assistive_editing_only": False},
                                {"tier": "transparency", "transparency": ["Art. 50(2)"]}),
    "50(2) assistive editing": ({"transparency.generates_synthetic_content": True, "transparency.assistive_editing_only": True},
                                {"tier": "minimal", "transparency": []}),
    "50(3) emotion recognition, stacks with high-risk": (
        {"transparency.emotion_recognition_or_biometric_categorisation": True, "annex_iii": ["1(c)"]},
        {"tier": "high", "transparency": ["Art. 50(3)"]}),
    "50(3) law enforcement": ({"transparency.emotion_recognition_or_biometric_categorisation": True,
                               "transparency.authorised_law_enforcement": True}, {"tier": "minimal", "transparency": []}),
    "50(4) deep fake": ({"transparency.deep_fake": True}, {"tier": "transparency", "transparency": ["Art. 50(4)"]}),
    "50(4) public-interest text": ({"transparency.public_interest_text": True, "transparency.human_editorial_control": False},
                                   {"tier": "transparency", "transparency": ["Art. 50(4)"]}),
    "50(4) text with editorial control": ({"transparency.public_interest_text": True, "transparency.human_editorial_control": True},
                                          {"tier": "minimal", "transparency": []}),
    # -- GPAI: Art. 51(2) presumption is strictly greater than 10^25 FLOP ------------------------------
    "GPAI at 2e25 FLOP": ({"gpai.is_gpai": True, "gpai.training_flop": 2e25, "gpai.high_impact_capabilities": False,
                           "gpai.commission_designated": False, "gpai.open_weights": False},
                          {"systemic": True, "gpai_cites": ["Art. 53(1)", "Art. 51(2)", "Art. 55(1)"]}),
    "GPAI at exactly 1e25 FLOP": ({"gpai.is_gpai": True, "gpai.training_flop": 1e25, "gpai.high_impact_capabilities": False,
                                   "gpai.commission_designated": False, "gpai.open_weights": False},
                                  {"systemic": False, "gpai_cites": ["Art. 53(1)"]}),
    "GPAI open weights below threshold": ({"gpai.is_gpai": True, "gpai.training_flop": 3e23, "gpai.high_impact_capabilities": False,
                                           "gpai.commission_designated": False, "gpai.open_weights": True},
                                          {"systemic": False, "gpai_cites": ["Art. 53(1)", "Art. 53(2)"]}),
    "GPAI compute unknown": ({"gpai.is_gpai": True, "gpai.high_impact_capabilities": False, "gpai.commission_designated": False,
                              "gpai.open_weights": False}, {"systemic": None, "review": True, "questions": ["gpai.training_flop"]}),
    # -- FRIA (Art. 27) -----------------------------------------------------------------------------------
    "FRIA public body, Annex III 5(a)": ({"annex_iii": ["5(a)"], "role": "deployer", "deployer_type": "public_body"}, {"fria": True}),
    "no FRIA for public body in point 2 only": ({"annex_iii": ["2"], "role": "deployer", "deployer_type": "public_body"},
                                                {"tier": "high", "cites": ["Annex III 2"], "fria": False}),
    "FRIA private insurer 5(c)": ({"annex_iii": ["5(c)"], "role": "deployer", "deployer_type": "private"}, {"fria": True}),
    "no FRIA for private employer 4(a)": ({"annex_iii": ["4(a)"], "role": "deployer", "deployer_type": "private"}, {"fria": False}),
    "FRIA role unknown": ({"annex_iii": ["5(b)"], "financial_fraud_detection": False, "role": None},
                          {"fria": None, "review": True, "questions": ["role"]}),
    # -- scope and roles ----------------------------------------------------------------------------------
    "Art. 2(3) military": ({"scope.military_defence_national_security": True, P + "social_scoring_detrimental": True},
                           {"tier": "minimal", "cites": ["Art. 2(3)"]}),
    "Art. 25 deployer becomes provider": ({"annex_iii": ["4(b)"], "role": "deployer", "art25.substantial_modification": True},
                                          {"tier": "high", "roles": ["deployer", "provider"]}),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario(name):
    changes, want = SCENARIOS[name]
    c = run(**changes)
    if "tier" in want:
        assert c.tier == want["tier"], c.trace
    for cite in want.get("cites", []):
        assert cite in c.citations, (cite, c.citations)
    for cite in want.get("not_cites", []):
        assert cite not in c.citations, (cite, c.citations)
    if "transparency" in want:
        assert c.transparency == want["transparency"]
    if "fria" in want:
        assert c.fria_required is want["fria"]
    for cite in want.get("fria_cites", []):
        assert cite in c.fria_citations
    if "systemic" in want:
        assert c.gpai.is_gpai is True and c.gpai.systemic_risk is want["systemic"]
    if "gpai_cites" in want:
        assert c.gpai.citations == want["gpai_cites"]
    if "roles" in want:
        assert c.roles == want["roles"]
    assert c.needs_review is want.get("review", False), [q.fact for q in c.open_questions]
    assert sorted(q.fact for q in c.open_questions) == sorted(want.get("questions", []))


def test_scenario_suite_covers_the_act():
    text = json.dumps(SCENARIOS)
    assert len(SCENARIOS) >= 30
    for letter in "abcdefgh":
        assert f"Art. 5(1)({letter})" in text
    for para in ("50(1)", "50(2)", "50(3)", "50(4)"):
        assert para in text


@pytest.mark.parametrize("point", ANNEX_III_POINTS)
def test_every_annex_iii_point_is_high_risk(point):
    exclusions = {"1(a)": "biometric_verification_only", "5(b)": "financial_fraud_detection",
                  "7(d)": "travel_document_verification_only", "8(b)": "campaign_logistics_only"}
    changes = {"annex_iii": [point]}
    if point in exclusions:
        changes[exclusions[point]] = False
    c = run(**changes)
    assert c.tier == "high" and c.citations == ["Art. 6(2)", f"Annex III {point}"]
    assert not c.needs_review
    assert {"performance", "fairness", "explanations"} <= set(c.required_checks)
    art86 = [o for o in c.obligations if o.id == "eu.aia.art.86"]
    assert bool(art86) is (point != "2")  # Art. 86(1): Annex III except point 2


def test_annex_iii_domains_drive_policy_thresholds():
    assert run(annex_iii=["5(b)"], financial_fraud_detection=False).domains == ["credit"]
    assert run(annex_iii=["4(a)"]).domains == ["employment"]
    assert run(annex_iii=["3(a)"]).domains == ["education"]
    assert run(annex_iii=["6(d)"]).domains == ["justice"]


def test_unknown_facts_never_pass_silently():
    c = classify(parse_card({"name": "nothing known"}), as_of=TODAY)
    assert c.tier == "minimal" and c.needs_review
    facts = {q.fact for q in c.open_questions}
    assert {"annex_iii", "profiling", "gpai.is_gpai", "role", "transparency.interacts_with_people"} <= facts
    assert {f"practices.{p}" for p in BASE["practices"]} <= facts
    effects = {e for q in c.open_questions for e in q.effects}
    assert {"tier: prohibited", "tier: high", "transparency", "gpai"} <= effects


def test_moot_questions_dropped_when_prohibited():
    c = run(**{P + "social_scoring_detrimental": True, "annex_iii": None, "gpai.is_gpai": None})
    assert c.tier == "prohibited"
    assert not c.needs_review and c.open_questions == []
    assert [o.id for o in c.obligations] == ["eu.aia.art.4", "eu.aia.art.5"]
    assert c.required_checks == []


def test_trace_names_the_facts_that_fired():
    c = run(annex_iii=["5(b)"], financial_fraud_detection=True)
    entries = {t.rule: t for t in c.trace}
    assert entries["eu.aia.anx.III.5.b"].status == "overridden"
    assert entries["eu.aia.anx.III.5.b"].overridden_by == ["eu.aia.anx.III.5.b.exc"]
    assert entries["eu.aia.anx.III.5.b.exc"].facts == {"financial_fraud_detection": True}
    assert entries["eu.aia.art.5.1.a"].facts == {"practices.subliminal_or_manipulative_causing_harm": False}
    assert entries["eu.aia.art.5.1.a"].status == "no"


# -- dates (Art. 113) and overlays ------------------------------------------------------------------

def test_dates_follow_article_113_of_the_enacted_text():
    emotion = {P + "emotion_recognition_workplace_or_education": True, P + "emotion_recognition_medical_or_safety": False}
    assert not run(as_enacted=True, as_of=date(2025, 2, 1), **emotion).tier_in_effect
    assert run(as_enacted=True, as_of=date(2025, 2, 2), **emotion).tier_in_effect
    credit = {"annex_iii": ["5(b)"], "financial_fraud_detection": False}
    early = run(as_enacted=True, as_of=date(2026, 1, 1), **credit)
    assert early.tier == "high" and not early.tier_in_effect and early.tier_applies_from == date(2026, 8, 2)
    obligations = {o.id: o for o in early.obligations}
    assert obligations["eu.aia.art.4"].in_effect and not obligations["eu.aia.art.10"].in_effect
    product = run(as_enacted=True, as_of=date(2027, 8, 1), **{"annex_i.legislation": [1], "annex_i.third_party_conformity": True})
    assert product.tier_applies_from == date(2027, 8, 2) and not product.tier_in_effect
    gpai = {"gpai.is_gpai": True, "gpai.training_flop": 1e23, "gpai.high_impact_capabilities": False,
            "gpai.commission_designated": False, "gpai.open_weights": False}
    assert {o.id: o for o in run(as_enacted=True, **gpai).obligations}["eu.aia.art.53.1.c"].applies_from == date(2025, 8, 2)
    legacy = {o.id: o for o in run(as_enacted=True, placed_on_market=date(2025, 1, 1), **gpai).obligations}
    assert legacy["eu.aia.art.53.1.c"].applies_from == date(2027, 8, 2)  # Art. 111(3)
    public_legacy = run(as_enacted=True, placed_on_market=date(2025, 6, 1), significant_design_change=False, role="deployer",
                        deployer_type="public_body", annex_iii=["5(a)"])
    art9 = {o.id: o for o in public_legacy.obligations}["eu.aia.art.9"]
    assert art9.applies_from == date(2030, 8, 2) and art9.dates.basis == "Art. 111(2)"


def test_omnibus_applies_from_its_entry_into_force_and_is_named():
    credit = {"annex_iii": ["5(b)"], "financial_fraud_detection": False}
    before = run(as_of=date(2026, 7, 26), **credit)  # the day before the amendment entered into force
    assert before.overlays == [] and all(o.dates.overlay is None for o in before.obligations)
    assert before.tier_applies_from == date(2026, 8, 2) and "as enacted" in before.consolidated_version
    after = run(**credit, **{P + "generates_ncii_or_csam": False})
    layer = after.overlays[0]
    assert layer.id == "omnibus-2026" and layer.applied == "in_force" and layer.in_force == date(2026, 7, 27)
    assert "SECONDARY" in layer.marks and layer.verified_against_oj is False and layer.oj_ref and layer.sources
    assert "Digital Omnibus" in after.consolidated_version and "not verified" in after.consolidated_version
    art10 = {o.id: o for o in after.obligations}["eu.aia.art.10"]
    assert art10.applies_from == date(2027, 12, 2) and art10.dates.text_date == date(2026, 8, 2)
    assert art10.dates.overlay == "omnibus-2026.annex_iii_postponed" and "[SECONDARY]" in art10.dates.basis
    assert not art10.in_effect and after.tier == "high" and not after.tier_in_effect
    enacted = classify(make(**credit), as_of=TODAY, as_enacted=True)
    assert enacted.overlays == [] and enacted.as_enacted and enacted.tier_in_effect
    with pytest.raises(RegulationError):
        classify(make(**credit), as_of=TODAY, as_enacted=True, overlays=["omnibus-2026"])
    # a layer can still be applied on request before its entry into force (e.g. to plan ahead)
    ahead = run(as_of=date(2026, 7, 1), overlays=["omnibus-2026"], **credit)
    assert ahead.overlays[0].applied == "requested" and ahead.tier_applies_from == date(2027, 12, 2)
    assert load_regulation().date_entry("annex_iii_high_risk").date == date(2026, 8, 2)  # never overwritten


# Dated cases held out from the data: (as_of, card changes) -> (tier, tier applies from, in effect).
DATED = {
    "Annex III credit after the amendment": (date(2026, 12, 7), {"annex_iii": ["5(b)"], "financial_fraud_detection": False},
                                             ("high", date(2027, 12, 2), False)),
    "Annex III credit before the amendment existed": (date(2026, 3, 1), {"annex_iii": ["5(b)"], "financial_fraud_detection": False},
                                                      ("high", date(2026, 8, 2), False)),
    "Annex III after the postponed date": (date(2027, 12, 2), {"annex_iii": ["4(a)"]}, ("high", date(2027, 12, 2), True)),
    "Annex I product": (date(2027, 9, 1), {"annex_i.legislation": [1], "annex_i.third_party_conformity": True},
                        ("high", date(2028, 8, 2), False)),
    "NCII generator after the new ban": (date(2026, 12, 7), {P + "generates_ncii_or_csam": True},
                                         ("prohibited", date(2026, 12, 2), True)),
    "NCII generator before the new ban applies": (date(2026, 11, 30), {P + "generates_ncii_or_csam": True},
                                                  ("prohibited", date(2026, 12, 2), False)),
    "NCII generator before the amendment existed": (date(2026, 6, 1), {P + "generates_ncii_or_csam": True},
                                                    ("minimal", None, True)),
}


@pytest.mark.parametrize("case", sorted(DATED))
def test_dated_cases_follow_the_text_in_force(case):
    as_of, changes, (tier, start, in_effect) = DATED[case]
    c = run(as_of=as_of, **changes)
    assert (c.tier, c.tier_applies_from, c.tier_in_effect) == (tier, start, in_effect), c.consolidated_version


def test_art_50_2_grace_for_systems_already_on_the_market():
    synthetic = {"transparency.generates_synthetic_content": True, "transparency.assistive_editing_only": False}
    legacy = {o.id: o for o in run(as_of=date(2026, 11, 1), placed_on_market=date(2026, 3, 1), **synthetic).obligations}
    new = {o.id: o for o in run(as_of=date(2026, 11, 1), placed_on_market=date(2026, 9, 1), **synthetic).obligations}
    art50 = next(k for k in legacy if k.startswith("eu.aia.art.50"))
    assert legacy[art50].applies_from == date(2026, 12, 2) and not legacy[art50].in_effect
    assert new[art50].applies_from == date(2026, 8, 2) and new[art50].in_effect


# -- evidence rating ----------------------------------------------------------------------------------

def test_evidence_roll_up_counts_the_findings_of_the_obligations_own_checks():
    c = run(annex_iii=["4(a)"])
    ran = {"performance": "completed", "fairness": "completed", "slices": "skipped", "explanations": "error"}
    findings = [{"id": "fairness:dpd:sex", "check": "fairness", "status": "fail"},
                {"id": "fairness:groups", "check": "fairness", "status": "pass"},
                {"id": "performance:auc", "check": "performance", "status": "pass"},
                {"id": "explanations:error", "check": "explanations", "status": "error"}]
    report = rate_evidence(c, ran, findings, source="a1")
    ob = {o.id: o for o in report.classification.obligations}
    art10 = ob["eu.aia.art.10"]
    assert art10.status == "failing" and art10.findings["failing"] == ["fairness:dpd:sex"]
    assert art10.findings["count"] == 2 and art10.findings["by_status"] == {"pass": 1, "warn": 0, "fail": 1, "error": 0}
    points = {e.id: e.status for e in art10.evidence}
    assert points["eu.aia.art.10.2.f"] == "failing"
    assert ob["eu.aia.art.14"].status == "failing"          # explanations errored
    assert ob["eu.aia.art.12"].status == "manual-only"
    for o in report.classification.obligations:             # never "evidenced" by nothing
        if o.status == "evidenced":
            assert o.findings["count"] >= 1 and not o.findings["failing"], o.id
        if o.status == "no-evidence":
            assert o.findings["count"] == 0, o.id
    perf_only = rate_evidence(c, {"performance": "completed"},
                              [{"id": "performance:auc", "check": "performance", "status": "pass"}])
    st = {o.id: o for o in perf_only.classification.obligations}
    checks15 = set(st["eu.aia.art.15"].checks)
    assert st["eu.aia.art.15"].status == ("evidenced" if checks15 == {"performance"} else "partial")
    assert {o.status for o in perf_only.classification.obligations if "performance" not in
            st[o.id].findings["checks"] and o.checks} == {"no-evidence"}
    missing = {m.check: m for m in report.missing_checks}
    assert set(missing) == {"data_governance", "slices", "explanations", "robustness"}
    assert missing["explanations"].state == "error" and missing["robustness"].state == "not run"
    assert "Art. 13(3)(b)(iv)" in missing["explanations"].points and "eu.aia.art.86" in missing["explanations"].obligations
    assert report.classification.evidence_source == "a1"
    nothing = rate_evidence(c, {k: "completed" for k in c.required_checks})  # checks ran, produced no finding
    assert {o.status for o in nothing.classification.obligations} <= {"no-evidence", "manual-only"}
    clean = rate_evidence(c, {k: "completed" for k in c.required_checks},
                          [{"id": f"{k}:x", "check": k, "status": "pass"} for k in c.required_checks])
    assert clean.missing_checks == [] and {o.status for o in clean.classification.obligations} <= {"evidenced", "manual-only"}


def test_reference_ids():
    assert reference_id("EU-AI-Act Art. 10(2)(f)") == "eu.aia.art.10.2.f"
    assert reference_id("EU-AI-Act Art. 13(3)(b)(iv)") == "eu.aia.art.13.3.b.iv"
    assert reference_id("NIST AI RMF MEASURE 2.11") is None


# -- the regulation data ------------------------------------------------------------------------------

def test_regulation_files_validate_against_generated_schemas():
    from risk.schemas import render
    directory = regulation_dir()
    for f in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(f.read_text())
        published = directory / "schema" / f"{data['kind']}.schema.json"
        assert published.read_text() == render(data["kind"]), f"{published} is stale: run python -m risk.schemas"
        jsonschema.validate(json.loads(json.dumps(data, default=str)), json.loads(published.read_text()))


def test_system_card_schema_is_published_and_cards_validate():
    from audit.schemas import render
    from risk.card import SystemCard
    published = ROOT / "docs/schema/system-card.schema.json"
    assert published.read_text() == render(SystemCard, "system-card")
    schema = json.loads(published.read_text())
    for f in sorted((ROOT / "examples/cards").glob("*.yaml")):
        jsonschema.validate(json.loads(json.dumps(yaml.safe_load(f.read_text()), default=str)), schema)


def test_ids_are_point_level_and_penalties_only_referenced():
    reg = load_regulation()
    ids = {r.id for r in reg.rules.rules}
    assert {"eu.aia.art.5.1.f", "eu.aia.anx.III.5.b", "eu.aia.art.6.3.a", "eu.aia.art.51.2"} <= ids
    assert "eu.aia.art.10.2.f" in {e.id for o in reg.obligations.obligations for e in o.evidence}
    penalties = {p.id: p for p in reg.penalties.penalties}
    assert penalties["eu.aia.art.99.3"].max_eur == 35_000_000 and penalties["eu.aia.art.99.3"].max_turnover_pct == 7
    assert penalties["eu.aia.art.101"].max_eur == 15_000_000
    assert {o.id: o for o in reg.obligations.obligations}["eu.aia.art.4"].penalty is None  # Art. 4: no fine
    amount = re.compile(r"(EUR|€)\s*\d|\d[\d ]{3,}000\b|\d\s*%")
    for f in regulation_dir().glob("*.yaml"):
        if f.name not in ("penalties.yaml", "text.yaml"):
            assert not amount.search(f.read_text()), f"fine amount restated in {f.name}"


def test_text_anchors_pin_the_verbatim_text():
    reg = load_regulation()
    for rule in reg.rules.rules:
        anchor = reg.text.anchors[rule.source.anchor]
        assert len(anchor.sha256) == 64
        if rule.source.paragraph:
            assert rule.source.paragraph in anchor.paragraphs
    assert reg.index.eli == "http://data.europa.eu/eli/reg/2024/1689/oj"


def test_secondary_and_uncertain_items_are_marked():
    reg = load_regulation()
    omnibus = reg.overlay("omnibus-2026")
    assert "SECONDARY" in omnibus.marks and not omnibus.verified_against_oj
    frameworks = {f.id: f for f in reg.crosswalks.frameworks}
    assert "SECONDARY" in frameworks["kr-ai-basic-act"].marks and "UNCERTAIN" in frameworks["iso-iec-42001-2023"].marks
    assert all("unofficial" in f.label or "secondary" in f.label for f in frameworks.values())
    assert all("SECONDARY" in link.marks for link in reg.crosswalks.links if link.to.startswith("kr."))
    ob = {o.id: o for o in run(annex_iii=["4(a)"]).obligations}
    assert any(x.framework == "nist-ai-rmf-1.0" and x.label == "unofficial mapping" for x in ob["eu.aia.art.10"].crosswalk)


def _copy_regulation(tmp_path: Path) -> Path:
    dest = tmp_path / "reg"
    shutil.copytree(regulation_dir(), dest)
    return dest


def test_regulation_cross_checks_catch_typos(tmp_path):
    dest = _copy_regulation(tmp_path)
    rules = dest / "rules.yaml"
    rules.write_text(rules.read_text().replace("fact: financial_fraud_detection", "fact: financial_fraud_detecton"))
    with pytest.raises(RegulationError, match="financial_fraud_detecton"):
        load_regulation_dir(dest)


def test_regulation_checksum_tracks_every_file(tmp_path):
    dest = _copy_regulation(tmp_path)
    assert load_regulation_dir(dest).checksum == load_regulation().checksum
    crosswalks = dest / "crosswalks.yaml"
    crosswalks.write_text(crosswalks.read_text() + "\n# edited\n")
    assert load_regulation_dir(dest).checksum != load_regulation().checksum


def test_example_cards():
    cards = ROOT / "examples/cards"
    want = {"credit-scoring.yaml": ("high", "Annex III 5(b)"), "cv-screening.yaml": ("high", "Annex III 4(a)"),
            "recidivism-risk.yaml": ("high", "Annex III 6(d)"), "customer-chatbot.yaml": ("transparency", None),
            "spam-filter.yaml": ("minimal", None), "emotion-recognition-work.yaml": ("prohibited", "Art. 5(1)(f)"),
            "gpai-model.yaml": ("transparency", None)}
    assert {p.name for p in cards.glob("*.yaml")} == set(want)
    for name, (tier, cite) in want.items():
        c = classify(load_card(cards / name), as_of=TODAY)
        assert c.tier == tier and not c.needs_review, (name, c.open_questions)
        assert cite is None or cite in c.citations
    assert classify(load_card(cards / "recidivism-risk.yaml"), as_of=TODAY).fria_required is True
    gpai = classify(load_card(cards / "gpai-model.yaml"), as_of=TODAY)
    assert gpai.gpai.systemic_risk is True and "Art. 51(2)" in gpai.gpai.citations and "sae" in gpai.required_checks


@pytest.mark.parametrize("data, field", [
    ({"name": "x", "annex_iii": ["9(z)"]}, "annex_iii.0"),
    ({"name": "x", "profiling": "yes"}, "profiling"),
    ({"name": "x", "practices": {"mind_reading": True}}, "practices.mind_reading"),
    ({"name": "x", "gpai": {"training_flop": "lots"}}, "gpai.training_flop"),
    ({"annex_iii": []}, "name"),
])
def test_card_errors_name_the_field(data, field):
    with pytest.raises(CardError) as e:
        parse_card(data)
    assert e.value.field == field and f"field '{field}'" in str(e.value)


def test_yaml_exponent_strings_are_numbers():
    assert parse_card({"name": "x", "gpai": {"training_flop": "2e25"}}).gpai.training_flop == 2e25


def test_definition_screen_takes_a_rule_table_out_of_scope():
    """Art. 3(1): a system that infers nothing (a points table written by people) is not an AI system; the
    elements are presumed met unless the card says otherwise, and an explicit null is an open question."""
    from risk.card import SystemCard
    from risk.classify import classify
    card = yaml.safe_load((ROOT / "examples/cards/credit-scoring.yaml").read_text())
    assert classify(SystemCard.model_validate(card), as_of=date(2026, 12, 7)).tier == "high"
    card["definition"] = {"infers_outputs": False, "basis": "fixed points table written by the credit committee"}
    c = classify(SystemCard.model_validate(card), as_of=date(2026, 12, 7))
    assert c.tier == "minimal" and c.citations[:1] == ["Art. 3(1)"]
    card["definition"] = {"infers_outputs": None}
    c = classify(SystemCard.model_validate(card), as_of=date(2026, 12, 7))
    assert "definition.infers_outputs" in {q.fact for q in c.open_questions}


def test_a_key_given_twice_in_a_card_is_an_error_naming_its_line(tmp_path):
    from risk.card import load_card
    from risk.errors import CardError
    path = tmp_path / "card.yaml"
    text = (ROOT / "examples/cards/credit-scoring.yaml").read_text()
    path.write_text(text + "profiling: false\n")   # already given above: used to win silently
    with pytest.raises(CardError, match="duplicate key 'profiling'") as e:
        load_card(path)
    assert e.value.source == f"{path}:{len(text.splitlines()) + 1}"


def test_the_check_catalogue_is_the_one_list_of_checks():
    """Every implemented check has one catalogue entry and vice versa; the law names only catalogue checks."""
    from audit.checks import available_checks
    from risk.catalogue import check_catalogue
    from risk.regulation import CHECK_NAMES
    catalogue = check_catalogue()
    assert tuple(available_checks()) == catalogue.names == CHECK_NAMES
    named = {c for ob in load_regulation().obligations.obligations for e in ob.evidence for c in (*e.checks, *e.supporting)}
    assert named <= set(catalogue.names) and "lm_robustness" in named
    for entry in catalogue.checks:
        assert entry.title.en != entry.title.ko and entry.short.ko


def test_checks_cite_the_law_from_the_catalogue_not_from_code():
    """The provisions a check's findings cite are data (policies/checks.yaml); no check module spells one out."""
    import re
    from pydantic import ValidationError
    from audit.checks import available_checks
    from risk.catalogue import CatalogueEntry, citations
    for name, check in available_checks().items():
        source = (ROOT / "audit" / "checks" / f"{name}.py").read_text()
        assert not re.search(r"[\"'](EU-AI-Act|GDPR) ", source), f"{name}.py writes a citation"
        assert set(check.references) <= set(citations(name).values()) and citations(name), name
    with pytest.raises(ValidationError, match="is not a citation"):
        CatalogueEntry(name="made_up", title={"en": "a", "ko": "b"}, short={"en": "a", "ko": "b"},
                       references={"bias": "Article ten"})


def test_an_obligation_naming_an_unknown_check_is_refused(tmp_path):
    dest = tmp_path / "reg"
    shutil.copytree(regulation_dir(), dest)
    path = dest / "obligations.yaml"
    path.write_text(path.read_text().replace("checks: [sae]", "checks: [sea]", 1))
    with pytest.raises(RegulationError, match="unknown check 'sea'"):
        load_regulation_dir(dest)
