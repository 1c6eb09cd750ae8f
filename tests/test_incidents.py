"""Serious incidents (Art. 73): deadlines from the law as data, the record and its ledger, the report draft."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run_cli

D = dt.date


@pytest.fixture(scope="module")
def policy():
    from risk.incidents import load_policy
    return load_policy()


def _store_digest(home: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(home.rglob("*")):
        if p.is_file() and not p.name.endswith(("-wal", "-shm")):
            h.update(p.relative_to(home).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


# the law as data ---------------------------------------------------------------------------------------
def test_deadlines_follow_art_73_and_the_earliest_category_governs(policy):
    from risk.incidents import days_remaining, deadline, governing_deadline, is_overdue
    aware = D(2026, 12, 1)
    assert deadline("health", aware, policy) == D(2026, 12, 16)          # Art. 73(2): 15 days
    assert deadline("death", aware, policy) == D(2026, 12, 11)           # Art. 73(4): 10 days
    assert deadline("critical_infrastructure", aware, policy) == D(2026, 12, 3)  # Art. 73(3): 2 days
    both = governing_deadline(policy, ["health", "death"], aware)
    assert (both.category, both.days, both.basis.id) == ("death", 10, "eu.aia.art.73.4")
    assert days_remaining(D(2026, 12, 16), D(2026, 12, 16)) == 0 and not is_overdue(D(2026, 12, 16), D(2026, 12, 16))
    assert is_overdue(D(2026, 12, 16), D(2026, 12, 17)) and not is_overdue(D(2026, 12, 16), D(2026, 12, 17), True)


def test_the_policy_file_is_strict_and_the_status_flow_is_enforced(policy, tmp_path):
    from risk.errors import RegulationError
    from risk.incidents import IncidentError, load_policy, policy_path
    text = policy_path().read_text(encoding="utf-8")
    bad = tmp_path / "incidents" / "incidents.yaml"
    bad.parent.mkdir()
    bad.write_text(text.replace("deadline_days: 10", "deadline_days: 10\n    deadline_hours: 240", 1))
    with pytest.raises(RegulationError, match="unknown key"):
        load_policy(bad)
    bad.write_text(text.replace("next: [reported]", "next: [submitted]"))
    with pytest.raises(RegulationError, match="unknown next status 'submitted'"):
        load_policy(bad)
    with pytest.raises(IncidentError, match="cannot change from 'open' to 'closed'"):
        policy.check_transition("open", "closed")
    assert policy.check_transition("open", "reported").submitted


# the record ------------------------------------------------------------------------------------------
def _incident(audit, **extra):
    finding = next(f for f in audit.findings if f.status.value in ("fail", "warn"))
    return {"title": "Applicants over 60 refused at twice the usual rate",
            "description": "A deployer reported that credit applications from older applicants were refused "
                           "far more often than the audit showed.",
            "aware_on": "2026-12-01", "occurred_on": "2026-11-20", "categories": ["fundamental_rights"],
            "affected_count": 212, "member_states": ["DE", "AT"], "provider": "Example Bank AG",
            "audits": [audit.audit_id], "findings": [f"{audit.audit_id}/{finding.id}"], **extra}


def test_an_incident_is_recorded_with_its_deadline_and_every_step_is_in_the_ledger(engine, credit_audit, policy):
    from audit.incidents import change_status, get_incident, record_incident, update_incident, verify_incident
    i = record_incident(engine, _incident(credit_audit), today=D(2026, 12, 7), actor="cli:tester")
    assert (i.status, i.deadline.due, i.days_left, i.overdue) == ("open", D(2026, 12, 16), 9, False)
    assert i.member_states == ["AT", "DE"]
    i = update_incident(engine, i.id, {"categories": ["fundamental_rights", "health"], "causal_link": "the age proxy",
                                       "reason": "a complaint names a health consequence"}, today=D(2026, 12, 7))
    assert i.deadline.due == D(2026, 12, 16) and i.causal_link == "the age proxy"
    late = get_incident(engine.records, i.id, policy, D(2026, 12, 18))
    assert late.overdue and late.days_left == -2
    i = change_status(engine, i.id, "reported", "initial report sent to the BNetzA by e-mail", D(2026, 12, 15),
                      today=D(2026, 12, 18))
    assert i.submitted and i.reported_on == D(2026, 12, 15) and not i.overdue and not i.late and i.days_left == 1
    entries = [e for e in engine.records.entries(i.id)]
    assert [e.event for e in entries] == ["incident.recorded", "incident.updated", "incident.status_changed"]
    assert [e.seq for e in i.history] == [e.seq for e in entries] and engine.records.verify().ok
    assert verify_incident(engine.records, i.id) == []


def test_the_record_is_append_only_and_a_forged_row_shows(engine, credit_audit):
    from audit.incidents import record_incident, verify_incident
    i = record_incident(engine, _incident(credit_audit, title="Forgery target"), today=D(2026, 12, 7))
    con = sqlite3.connect(engine.settings.records_db)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("UPDATE incident_events SET payload = '{}' WHERE incident_id = ?", (i.id,))
    con.execute("DROP TRIGGER incident_events_no_update")  # an insider with the database file
    row = con.execute("SELECT payload FROM incident_events WHERE incident_id = ?", (i.id,)).fetchone()[0]
    forged = json.loads(row)
    forged["fields"]["aware_on"] = "2026-12-06"  # buys five days
    con.execute("UPDATE incident_events SET payload = ? WHERE incident_id = ?", (json.dumps(forged), i.id))
    con.commit()
    try:
        assert verify_incident(engine.records, i.id) == [
            f"incident event recorded (ledger entry {i.history[0].seq}) differs from the ledger"]
    finally:  # reading the record put the trigger back
        con.execute("DROP TRIGGER incident_events_no_update")
        con.execute("UPDATE incident_events SET payload = ? WHERE incident_id = ?", (row, i.id))
        con.commit()
        con.close()
    assert verify_incident(engine.records, i.id) == []
    with sqlite3.connect(engine.settings.records_db) as con, pytest.raises(sqlite3.IntegrityError):
        con.execute("DELETE FROM incident_events WHERE incident_id = ?", (i.id,))


@pytest.mark.parametrize("change,message", [
    ({"categories": ["meteor"]}, "unknown harm category 'meteor'"),
    ({"aware_on": "2027-01-01"}, "aware_on 2027-01-01 is in the future"),
    ({"occurred_on": "2026-12-02"}, "occurred_on 2026-12-02 is after aware_on 2026-12-01"),
    ({"audits": ["no-such-audit"]}, "no audit or monitoring window 'no-such-audit'"),
    ({"findings": ["no-slash"]}, "'no-slash' is not AUDIT_ID/FINDING_ID"),
    ({"member_states": ["Germany"]}, "'Germany' is not an ISO 3166-1 alpha-2 code"),
    ({"severity": "high"}, "severity: unknown field"),
    ({"description": "short"}, "description: String should have at least 10 characters"),
])
def test_bad_incidents_are_refused_and_nothing_is_written(engine, credit_audit, aiaudit_home, change, message):
    from audit.errors import AuditInputError
    from audit.incidents import record_incident
    before = _store_digest(aiaudit_home)
    with pytest.raises(AuditInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        record_incident(engine, _incident(credit_audit, **change), today=D(2026, 12, 7))
    assert _store_digest(aiaudit_home) == before


def test_a_finding_must_exist_in_the_audit_it_names(engine, credit_audit, aiaudit_home):
    from audit.errors import AuditInputError
    from audit.incidents import record_incident
    before = _store_digest(aiaudit_home)
    with pytest.raises(AuditInputError, match="has no finding 'fairness:made_up'"):
        record_incident(engine, _incident(credit_audit, findings=[f"{credit_audit.audit_id}/fairness:made_up"]),
                        today=D(2026, 12, 7))
    assert _store_digest(aiaudit_home) == before


def test_status_changes_follow_the_flow_and_dates(engine, credit_audit):
    from audit.errors import AuditInputError
    from audit.incidents import change_status, record_incident
    i = record_incident(engine, _incident(credit_audit, categories=["death"]), today=D(2026, 12, 7))
    with pytest.raises(AuditInputError, match="cannot change from 'open' to 'closed'"):
        change_status(engine, i.id, "closed", "nothing to report, closing", today=D(2026, 12, 7))
    with pytest.raises(AuditInputError, match="before the day of awareness"):
        change_status(engine, i.id, "reported", "reported before we knew", D(2026, 11, 30), today=D(2026, 12, 7))
    i = change_status(engine, i.id, "reported", "initial report to the authority", D(2026, 12, 12), today=D(2026, 12, 12))
    assert i.late and i.days_left == -1  # death: 10 days from 1 December, due the 11th


# the report --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt,lang", [("html", "en"), ("md", "ko"), ("docx", "en"), ("pdf", "ko")])
def test_the_report_draft_has_the_deadline_and_verifies(engine, credit_audit, tmp_path, fmt, lang, policy):
    from audit.documents import verify_document
    from audit.documents.incident_report import export
    from audit.documents.manifest import extract
    from audit.incidents import record_incident
    i = record_incident(engine, _incident(credit_audit), today=D(2026, 12, 7))
    out = export(engine, i.id, fmt, lang, tmp_path, as_of=D(2026, 12, 10))
    assert out.name == f"{i.id}_incident-report_{lang}.{fmt}"
    _, man = extract(out)
    assert man["incident"]["id"] == i.id and man["incident"]["deadline"] == "2026-12-16"
    assert [a["id"] for a in man["audits"]] == [credit_audit.audit_id]
    report = verify_document(out, engine)
    assert report.ok, report.mismatches
    if fmt in ("html", "md"):
        text = out.read_text(encoding="utf-8")
        assert policy.report.title(lang) in text and "2026-12-16" in text
        assert policy.label("days_left", lang, n=6) in text
        for s in policy.report.sections:
            assert s.title(lang) in text
        assert i.id in text and credit_audit.audit_id in text
    raw = out.read_bytes()
    out.write_bytes(raw.replace(b"2026-12-16", b"2026-12-26") if b"2026-12-16" in raw else raw + b"\0")
    assert [m.name for m in verify_document(out, engine).mismatches] == ["document"]


def test_a_changed_linked_audit_fails_the_report_verification(engine, credit_audit, tmp_path):
    from audit.documents import verify_document
    from audit.documents.incident_report import export
    from audit.incidents import record_incident
    i = record_incident(engine, _incident(credit_audit), today=D(2026, 12, 7))
    out = export(engine, i.id, "html", "en", tmp_path)
    audit_json = engine.audit_dir(credit_audit.audit_id) / "audit.json"
    original = audit_json.read_bytes()
    audit_json.write_bytes(original.replace(b'"status"', b' "status"', 1))
    try:
        report = verify_document(out, engine)
        assert [m.name for m in report.mismatches] == ["linked audits"]
    finally:
        audit_json.write_bytes(original)
    assert verify_document(out, engine).ok


def test_the_cli_records_lists_and_exports(credit_audit, tmp_path, aiaudit_home):
    spec = tmp_path / "incident.yaml"
    spec.write_text(yaml.safe_dump(_incident(credit_audit, aware_on=dt.date.today().isoformat(), occurred_on=None,
                                             categories=["critical_infrastructure"])))
    proc = run_cli("incident", "record", str(spec), "--json")
    assert proc.returncode == 0, proc.stderr
    i = json.loads(proc.stdout)
    assert i["deadline"]["days"] == 2 and i["days_left"] == 2
    listed = run_cli("incident", "list")
    assert i["id"] in listed.stdout and "2 days left" in listed.stdout
    assert run_cli("incident", "list", "--fail-on-overdue").returncode == 0
    soon = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    overdue = run_cli("incident", "list", "--as-of", soon, "--fail-on-overdue")
    assert overdue.returncode == 1 and "OVERDUE" in overdue.stdout
    out = run_cli("incident", "export", i["id"], "--format", "md", "--lang", "en", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert run_cli("verify", str(tmp_path / f"{i['id']}_incident-report_en.md")).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**_incident(credit_audit), "categories": ["meteor"]}))
    before = _store_digest(aiaudit_home)
    refused = run_cli("incident", "record", str(bad))
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "unknown harm category 'meteor'" in refused.stderr and _store_digest(aiaudit_home) == before
    assert run_cli("incident", "status", i["id"], "closed", "--note", "closing it early").returncode == 2
    assert "Art. 73(3)" in run_cli("incident", "deadlines").stdout


def test_the_published_schema_matches_the_input_model():
    from audit.incidents import IncidentInput
    published = json.loads((ROOT / "docs" / "schema" / "incident.schema.json").read_text())
    assert published["properties"].keys() == IncidentInput.model_json_schema()["properties"].keys()


def test_the_incident_policy_validates_against_its_published_schema():
    import jsonschema
    from risk.incidents import policy_path
    from risk.schemas import render
    published = policy_path().parent.parent / "schema" / "incidents.schema.json"
    assert published.read_text() == render("incidents"), "stale: run python -m risk.schemas"
    jsonschema.validate(yaml.safe_load(policy_path().read_text(encoding="utf-8")), json.loads(published.read_text()))


def _signed_in(username: str, password: str):
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120).run()
    at.text_input(key="signin_user").input(username)
    at.text_input(key="signin_password").input(password)
    at = at.button(key="signin_submit").click().run()
    return at.sidebar.radio(key="page").set_value("incidents").run()


def test_reviewers_record_incidents_in_the_app_and_only_approvers_move_them_on(engine, credit_audit):
    from audit.incidents import list_incidents
    from audit.users import UserStore
    users = UserStore(engine.records)
    users.get("ivan") or users.add("ivan", "reviewer", "reviewer password 1", actor="test")
    users.get("ada") or users.add("ada", "approver", "approver password 1", actor="test")
    at = _signed_in("ivan", "reviewer password 1")
    assert not at.exception
    at.text_input(key="inc_f_title").input("Chatbot told a user to stop their medication")
    at.text_area(key="inc_f_description").input("A deployer forwarded a transcript in which the assistant advised "
                                                "a user to stop prescribed medication.")
    at.date_input(key="inc_f_aware").set_value(dt.date.today() - dt.timedelta(days=3))
    at.multiselect(key="inc_f_categories").set_value(["health"])
    at.text_input(key="inc_f_states").input("fr, be")
    at.multiselect(key="inc_f_audits").set_value([credit_audit.audit_id])
    at = at.button(key="inc_f_submit").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    recorded = next(i for i in list_incidents(engine.records) if i.title.startswith("Chatbot told"))
    assert recorded.recorded_by == "app:ivan" and recorded.history[0].role == "reviewer"
    assert recorded.member_states == ["BE", "FR"] and recorded.days_left == 12
    register = next(d.value for d in at.dataframe if "days left" in d.value.columns)
    assert recorded.id in set(register["incident"]) and "12 days left" in set(register["days left"])
    assert f"inc_s_submit_{recorded.id}" not in {b.key for b in at.button}  # a reviewer cannot change the status
    assert any("Only an approver" in c.value for c in at.caption)

    at = _signed_in("ada", "approver password 1")
    at = at.selectbox(key="inc_pick").set_value(recorded.id).run()
    at.selectbox(key=f"inc_s_new_{recorded.id}").set_value("reported")
    at.text_area(key=f"inc_s_note_{recorded.id}").input("initial report sent to the CNIL and the Belgian authority")
    at = at.button(key=f"inc_s_submit_{recorded.id}").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    entry = engine.records.entries(recorded.id)[-1]
    assert (entry.event, entry.actor, entry.payload["role"], entry.payload["status"]) == (
        "incident.status_changed", "app:ada", "approver", "reported")
    at = at.button(key=f"inc_go_{recorded.id}").click().run()
    assert not at.exception
    assert at.get("download_button")[0].proto.label.endswith("_incident-report_en.pdf")


def test_the_documented_deadlines_are_the_policy_s():
    from risk.incidents import deadline_table, load_policy
    assert deadline_table(load_policy()) in (ROOT / "docs" / "incidents.md").read_text(encoding="utf-8")


def test_commands_on_an_empty_store_create_nothing(tmp_path):
    home = tmp_path / "fresh-home"
    env = {"AIAUDIT_HOME": str(home)}
    assert run_cli("incident", "list", env=env).stdout.strip() == "no incidents recorded"
    for args in (["show", "INC-20261207-00000000"], ["status", "INC-20261207-00000000", "reported", "--note", "sent it to the authority"],
                 ["export", "INC-20261207-00000000", "--out", str(tmp_path / "out")]):
        proc = run_cli("incident", *args, env=env)
        assert proc.returncode == 2 and "no such incident" in proc.stderr, (args, proc.stderr)
    assert not home.exists() and not (tmp_path / "out").exists()


def test_a_change_decided_on_a_stale_state_is_refused(engine, credit_audit):
    """Two approvers open the same incident; the second one's change was decided on a state that no longer holds."""
    from audit.errors import AuditInputError
    from audit.incidents import _write, change_status, get_incident, record_incident
    i = record_incident(engine, _incident(credit_audit), today=D(2026, 12, 7))
    seen_by_b = get_incident(engine.records, i.id)
    change_status(engine, i.id, "reported", "initial report sent by approver A", D(2026, 12, 7), today=D(2026, 12, 7))
    before = len(engine.records.entries(i.id))
    with pytest.raises(AuditInputError, match="changed while this change was made"):
        _write(engine, i.id, "status_changed", {"from": "open", "status": "reported", "note": "sent again by B",
                                               "on": "2026-12-07"}, "app:b", "approver", after=seen_by_b)
    assert len(engine.records.entries(i.id)) == before
