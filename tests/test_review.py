"""Review workflow without Streamlit: users, roles, dispositions, sign-off, MLflow write-back, promote, compare.

Real MLflow store, real audits of a real scikit-learn scorecard; the helpers here are shared with
tests/test_app.py and tests/e2e/.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run_cli


def cli(*args: str, input_text: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real `aiaudit` console script, with standard input."""
    exe = Path(sys.executable).parent / "aiaudit"
    return subprocess.run([str(exe), *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          input=input_text, env={**os.environ, **(env or {})})

PASSWORD = "correct horse battery"


# shared helpers ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def review_engine(settings):
    from audit.engine import AuditEngine
    return AuditEngine(settings)


@pytest.fixture(scope="session")
def scorecard():
    """The demo credit scorecard, trained once (scikit-learn pipeline, real German credit data)."""
    from audit.demo import DEMO_MODELS, train
    return train(DEMO_MODELS[0])


def register_model(registry, scorecard, name: str):
    est, X, lineage = scorecard
    return registry.register(est, X, name, lineage)


def strict_spec(tmp: Path, model_uri: str, thresholds: dict[str, float], name: str = "review-test") -> Path:
    """A performance-only audit whose thresholds we choose, so findings are high-severity fails on purpose."""
    tmp.mkdir(parents=True, exist_ok=True)
    policy = yaml.safe_load((ROOT / "policies/eu-ai-act-default.yaml").read_text())
    policy["checks"] = {"performance": {"n_boot": 100, "thresholds": thresholds}}
    policy["domains"] = {}
    (tmp / "policy.yaml").write_text(yaml.safe_dump(policy))
    spec = {"name": name, "model": model_uri, "policy": str(tmp / "policy.yaml"), "checks": ["performance"],
            "dataset": {"path": str(ROOT / "data" / "german_credit.csv.gz"), "label": "good_credit",
                        "positive_label": 1, "protected": ["sex", "age_group"], "split_column": "split",
                        "audit_split": "test", "train_split": "train"}}
    (tmp / "audit.yaml").write_text(yaml.safe_dump(spec))
    return tmp / "audit.yaml"


def run_audit(engine, tmp: Path, model_uri: str, thresholds: dict[str, float], extra_checks=()):
    prepared = engine.prepare(strict_spec(tmp, model_uri, thresholds))
    prepared.plan = [*prepared.plan, *extra_checks]
    return engine.run(prepared)


def add_user(records, name: str, role: str, password: str = PASSWORD):
    from audit.users import UserStore
    store = UserStore(records)
    return store.get(name) or store.add(name, role, password, actor="test")


def ledger_count(records) -> int:
    with records.connect() as con:
        return con.execute("SELECT COUNT(*) FROM ledger").fetchone()[0]


FAIL_AUC = {"roc_auc": 0.99, "balanced_accuracy": 0.5, "ece": 0.5}   # ROC AUC fails (high); the rest pass


@pytest.fixture(scope="module")
def review_model(registry, scorecard):
    """One registered version shared by the tests below; each test audits it afresh (its newest audit is its own)."""
    return register_model(registry, scorecard, "review-scorecard")


@pytest.fixture(scope="module")
def signoff_case(review_engine, review_model, tmp_path_factory):
    result = run_audit(review_engine, tmp_path_factory.mktemp("signoff"), review_model.uri, FAIL_AUC)
    return review_model, result


# users ---------------------------------------------------------------------------------------
def test_passwords_are_salted_scrypt_hashes_checked_against_hashlib(tmp_path):
    from audit.records import Records
    from audit.users import UserStore
    rec = Records(tmp_path / "records.db")
    store = UserStore(rec)
    store.add("ann", "viewer", PASSWORD, actor="test")
    store.add("ben", "viewer", PASSWORD, actor="test")
    raw = sqlite3.connect(rec.db_path).execute("SELECT username, password_hash FROM users ORDER BY username").fetchall()
    assert all(PASSWORD not in h for _, h in raw)
    (_, a), (_, b) = raw
    assert a != b  # salted
    scheme, n, r, p, salt, digest = a.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", 2**17, 8, 1)
    independent = hashlib.scrypt(PASSWORD.encode(), salt=base64.b64decode(salt), n=2**17, r=8, p=1,
                                 maxmem=256 * 1024 * 1024, dklen=32)
    assert base64.b64decode(digest) == independent
    assert store.authenticate("ann", PASSWORD).role.value == "viewer"
    with pytest.raises(Exception, match="at least 12"):
        store.add("cat", "viewer", "short", actor="test")
    # every account change is in the ledger
    assert [e.event for e in rec.entries("user:ann")] == ["user.added"]


def test_sign_in_lockout_is_persisted_per_username_and_expires(tmp_path):
    from audit.records import Records
    from audit.users import BACKOFF_SECONDS, LOCKOUT_SECONDS, MAX_FAILURES, SignInError, UserStore
    rec = Records(tmp_path / "records.db")
    UserStore(rec).add("ann", "reviewer", PASSWORD, actor="test")
    now = time.time()
    for i in range(MAX_FAILURES - 1):
        with pytest.raises(SignInError) as e:
            UserStore(rec).authenticate("ann", "wrong password!", now=now + i)
        assert e.value.retry_after is None
    with pytest.raises(SignInError) as e:
        UserStore(rec).authenticate("ann", "wrong password!", now=now + 5)
    assert e.value.retry_after == BACKOFF_SECONDS
    # a new store object (another process, after a restart) still sees the wait; the right password is refused
    with pytest.raises(SignInError, match="too many"):
        UserStore(rec).authenticate("ann", PASSWORD, now=now + 6)
    # each further failure doubles the wait, up to LOCKOUT_SECONDS and never beyond
    t, waits = now + 5, [BACKOFF_SECONDS]
    for _ in range(8):
        t += waits[-1] + 1  # each attempt as soon as the previous wait is over
        with pytest.raises(SignInError) as e:
            UserStore(rec).authenticate("ann", "wrong password!", now=t)
        waits.append(e.value.retry_after)
    assert waits[:4] == [BACKOFF_SECONDS, 2 * BACKOFF_SECONDS, 4 * BACKOFF_SECONDS, 8 * BACKOFF_SECONDS]
    assert max(waits) == LOCKOUT_SECONDS
    # unknown names are throttled the same way (responses do not reveal which accounts exist)
    for i in range(MAX_FAILURES):
        with pytest.raises(SignInError) as unknown:
            UserStore(rec).authenticate("nobody", "whatever", now=now + i)
    assert unknown.value.retry_after == BACKOFF_SECONDS
    assert UserStore(rec).authenticate("ann", PASSWORD, now=t + LOCKOUT_SECONDS + 1).username == "ann"
    assert any(e.event == "user.locked_out" for e in rec.entries("user:ann"))


def test_parallel_sign_in_attempts_never_exceed_the_allowance(tmp_path):
    """16 attempts at once (15 wrong, 1 right): attempts are counted before the slow hash, so at most
    MAX_FAILURES reach it, whichever order they arrive in (they used to be all checked, and the right one
    reset the counter)."""
    from concurrent.futures import ThreadPoolExecutor
    from audit.records import Records
    from audit.users import MAX_FAILURES, SignInError, UserStore
    rec = Records(tmp_path / "records.db")
    UserStore(rec).add("ann", "approver", PASSWORD, actor="test")

    def attempt(i: int) -> str:
        try:
            UserStore(rec).authenticate("ann", PASSWORD if i == 15 else f"wrong password {i}")
            return "ok"
        except SignInError as e:
            return "refused" if "too many" in str(e) else "wrong"
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(attempt, range(16)))
    assert sum(o != "refused" for o in outcomes) <= MAX_FAILURES, outcomes


def test_per_client_throttle_follows_the_client_across_account_names(tmp_path):
    """A client that keeps failing is throttled by its own counter, across the account names it tries."""
    from audit.records import Records
    from audit.users import MAX_FAILURES, SignInError, UserStore
    rec = Records(tmp_path / "records.db")
    store = UserStore(rec)
    now = time.time()
    for i in range(MAX_FAILURES):
        with pytest.raises(SignInError):
            store.authenticate(f"user{i}", "whatever", now=now + i, client="10.0.0.9")
    with pytest.raises(SignInError, match="too many"):
        store.authenticate("someone-else", "whatever", now=now + 6, client="10.0.0.9")
    with pytest.raises(SignInError, match="wrong username"):
        store.authenticate("someone-else", "whatever", now=now + 6, client="10.0.0.10")


def test_sessions_time_out_and_follow_role_changes_and_removal(tmp_path):
    from audit.records import Records
    from audit.users import SessionExpired, UserStore
    rec = Records(tmp_path / "records.db")
    store = UserStore(rec)
    user = store.add("ann", "reviewer", PASSWORD, actor="test")
    s = store.start_session(user, now=1000.0)
    s = store.refresh(s, now=1000.0 + 60, idle=600)
    assert s.last_seen == 1060.0
    with pytest.raises(SessionExpired):
        store.refresh(s, now=1060.0 + 601, idle=600)
    store.set_role("ann", "viewer", actor="admin")
    assert store.refresh(s, now=1070.0, idle=600).user.role.value == "viewer"
    store.remove("ann", actor="admin")
    with pytest.raises(SessionExpired):
        store.refresh(s, now=1080.0, idle=600)


def test_permission_matrix():
    from audit.review import ACTIONS, PermissionDenied, can, require
    from audit.users import Role, User
    allowed = {r: {a for a in ACTIONS if can(User("x", r), a)} for r in Role}
    assert allowed[Role.viewer] == {"audit.view", "document.export"}
    assert allowed[Role.reviewer] == allowed[Role.viewer] | {"disposition.record", "audit.start", "incident.record"}
    assert allowed[Role.approver] == allowed[Role.reviewer] | {"audit.sign_off", "audit.revoke_sign_off", "model.promote",
                                                               "incident.change_status"}
    assert allowed[Role.admin] == set(ACTIONS)
    with pytest.raises(PermissionDenied, match="sign-in required"):
        require(None, "audit.view")


# dispositions and sign-off ----------------------------------------------------------------------
def test_viewer_and_reviewer_cannot_do_more_than_their_role(review_engine, signoff_case):
    from audit.review import PermissionDenied, record_disposition, sign_off
    from audit.users import Role, User
    _, result = signoff_case
    rec = review_engine.records
    viewer = add_user(rec, "vera", "viewer")
    reviewer = add_user(rec, "rita", "reviewer")
    before = ledger_count(rec)
    fid = next(f.id for f in result.findings if f.metric == "performance.roc_auc")
    with pytest.raises(PermissionDenied):
        record_disposition(review_engine, viewer, result.audit_id, fid, "accept_risk", "looks acceptable to me")
    with pytest.raises(PermissionDenied):
        sign_off(review_engine, reviewer, result.audit_id)
    # a stale session object claiming a higher role does not help: the store is re-read
    with pytest.raises(PermissionDenied):
        sign_off(review_engine, User("vera", Role.admin), result.audit_id)
    with pytest.raises(PermissionDenied, match="no longer exists"):
        record_disposition(review_engine, User("ghost", Role.admin), result.audit_id, fid, "retest", "ten chars at least")
    assert ledger_count(rec) == before


def test_disposition_needs_rationale_and_mitigation_needs_owner_and_date(review_engine, signoff_case):
    from audit.review import ReviewError, record_disposition
    _, result = signoff_case
    rita = add_user(review_engine.records, "rita", "reviewer")
    fid = next(f.id for f in result.findings if f.metric == "performance.roc_auc")
    with pytest.raises(ReviewError, match="rationale"):
        record_disposition(review_engine, rita, result.audit_id, fid, "accept_risk", "   ")
    with pytest.raises(ReviewError, match="owner and a due date"):
        record_disposition(review_engine, rita, result.audit_id, fid, "mitigation_planned", "retrain with more data")
    with pytest.raises(ReviewError, match="kind"):
        record_disposition(review_engine, rita, result.audit_id, fid, "ignore", "because I said so")
    with pytest.raises(ReviewError, match="no such finding"):
        record_disposition(review_engine, rita, result.audit_id, "nope", "retest", "re-run next quarter")


def test_sign_off_needs_decisions_then_writes_record_ledger_and_mlflow(review_engine, registry, signoff_case):
    from audit import review
    ref, result = signoff_case
    rec = review_engine.records
    rita, alex = add_user(rec, "rita", "reviewer"), add_user(rec, "alex", "approver")
    blockers = review.signoff_blockers(result, review.current_dispositions(rec, result.audit_id))
    assert [f.metric for f in blockers] == ["performance.roc_auc"]
    assert blockers[0].severity.value == "high" and blockers[0].status.value == "fail"
    with pytest.raises(review.ReviewError, match="1 high or critical finding"):
        review.sign_off(review_engine, alex, result.audit_id, "ok")
    assert review.get_signoff(rec, result.audit_id) is None
    d = review.record_disposition(review_engine, rita, result.audit_id, blockers[0].id, "mitigation_planned",
                                  "Retrain with the 2025 applications; AUC is below the declared 0.99.",
                                  owner="model team", due_date="2030-01-31")
    done = review.sign_off(review_engine, alex, result.audit_id, "Accepted with the planned mitigation.")
    assert done["signed_off_by"] == "alex" and done["registry_synced"] and not done["self_review"]
    # the audit record, the ledger and MLflow agree
    assert rec.get_audit(result.audit_id)["status"] == "signed_off"
    events = [e for e in rec.entries(result.audit_id) if e.event in ("disposition.recorded", "audit.signed_off")]
    assert [(e.event, e.actor) for e in events] == [("disposition.recorded", "app:rita"), ("audit.signed_off", "app:alex")]
    assert events[0].payload["rationale"].startswith("Retrain") and events[0].payload["due_date"] == "2030-01-31"
    assert events[1].payload["dispositions"] == {blockers[0].id: d["ledger_seq"]}
    tags = registry.client.get_model_version(ref.name, ref.version).tags
    assert tags["aiaudit.status"] == "signed_off"
    assert tags["aiaudit.signed_off_by"] == "alex"
    assert tags["aiaudit.signed_off_at"] == done["signed_off_at"]
    assert rec.verify().ok and review.verify_review(rec, result.audit_id) == []
    # decisions are frozen once signed off; a second sign-off is refused
    with pytest.raises(review.ReviewError, match="frozen"):
        review.record_disposition(review_engine, rita, result.audit_id, blockers[0].id, "accept_risk", "changed my mind")
    with pytest.raises(review.ReviewError, match="already signed off"):
        review.sign_off(review_engine, alex, result.audit_id)
    # rows are append-only at the database level
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        sqlite3.connect(rec.db_path).execute("UPDATE dispositions SET rationale = 'x'")


def test_promote_refuses_without_sign_off_and_allows_after(review_engine, registry, scorecard, tmp_path):
    from audit import review
    ref = register_model(registry, scorecard, "review-promote")
    with pytest.raises(review.PromotionRefused, match="never been audited"):
        review.promote(review_engine, ref.name, ref.version, "production", actor="test")
    result = run_audit(review_engine, tmp_path, ref.uri, FAIL_AUC)
    refused = run_cli("promote", ref.name, ref.version, "--alias", "production")
    assert refused.returncode == 1, refused.stderr
    assert "not signed off" in refused.stderr and result.audit_id in refused.stderr
    rec = review_engine.records
    fid = next(f.id for f in result.findings if f.metric == "performance.roc_auc")
    review.record_disposition(review_engine, add_user(rec, "rita", "reviewer"), result.audit_id, fid, "accept_risk",
                              "Screening model only; a human decides every application.")
    review.sign_off(review_engine, add_user(rec, "alex", "approver"), result.audit_id)
    done = review.promote(review_engine, ref.name, ref.version, "production", actor="cli:test")
    assert done["signed_off_by"] == "alex"
    assert registry.resolve(f"models:/{ref.name}@production").version == ref.version
    assert [e.event for e in rec.entries(result.audit_id)][-1] == "model.promoted"
    mine = lambda: [b for b in review.alias_bypasses(rec, registry) if b["model"] == ref.name]  # noqa: E731
    assert mine() == []
    # moving the alias with MLflow's own client bypasses the gate: ledger verify names it
    other = register_model(registry, scorecard, "review-promote")
    registry.client.set_registered_model_alias(ref.name, "production", other.version)
    registry.client.set_registered_model_alias(ref.name, "shadow", ref.version)
    found = {b["alias"]: b for b in mine()}
    assert found["production"]["version"] == other.version and found["production"]["promoted_version"] == ref.version
    assert found["shadow"]["reason"] == "never promoted through aiaudit" and set(found) == {"production", "shadow"}
    cli = run_cli("ledger", "verify")
    assert cli.returncode == 1 and f"{ref.name}@production -> version {other.version}" in cli.stderr
    registry.client.set_registered_model_alias(ref.name, "production", ref.version)
    registry.client.delete_registered_model_alias(ref.name, "shadow")
    assert mine() == []
    # a newer audit of the same version needs its own sign-off before the next promotion
    newer = run_audit(review_engine, tmp_path / "again", ref.uri, FAIL_AUC)
    with pytest.raises(review.PromotionRefused, match="earlier audit") as refusal:
        review.promote(review_engine, ref.name, ref.version, "production", actor="test")
    assert newer.audit_id in str(refusal.value)
    with pytest.raises(review.ReviewError, match="newer audit"):
        review.sign_off(review_engine, add_user(rec, "alex", "approver"), result.audit_id)


def test_tampered_decision_is_detected_and_blocks_promotion(review_engine, review_model, tmp_path):
    from audit import review
    ref = review_model
    result = run_audit(review_engine, tmp_path, ref.uri, FAIL_AUC)
    rec = review_engine.records
    fid = next(f.id for f in result.findings if f.metric == "performance.roc_auc")
    review.record_disposition(review_engine, add_user(rec, "rita", "reviewer"), result.audit_id, fid, "retest",
                              "Re-test on the Q3 sample before deciding.")
    review.sign_off(review_engine, add_user(rec, "alex", "approver"), result.audit_id)
    con = sqlite3.connect(rec.db_path, isolation_level=None)  # someone with file access rewrites the rationale
    con.execute("DROP TRIGGER dispositions_no_update")
    con.execute("UPDATE dispositions SET rationale = 'Fine.' WHERE audit_id = ?", (result.audit_id,))
    con.close()
    assert "differs from the ledger" in review.verify_review(rec, result.audit_id)[0]
    with pytest.raises(review.PromotionRefused, match="do not match the ledger"):
        review.promote(review_engine, ref.name, ref.version, "production", actor="test")
    review.ensure_schema(rec)  # restore the trigger for the rest of the session


def test_revoking_a_sign_off_restores_status_and_tags(review_engine, registry, review_model, tmp_path):
    from audit import review
    ref = review_model
    result = run_audit(review_engine, tmp_path, ref.uri, {"roc_auc": 0.5})
    rec = review_engine.records
    alex = add_user(rec, "alex", "approver")
    review.sign_off(review_engine, alex, result.audit_id)  # nothing high/critical open: allowed at once
    review.revoke_signoff(review_engine, alex, result.audit_id, "Signed the wrong audit by mistake.")
    assert review.get_signoff(rec, result.audit_id) is None
    assert rec.get_audit(result.audit_id)["status"] == result.status
    tags = registry.client.get_model_version(ref.name, ref.version).tags
    assert tags["aiaudit.status"] == result.status and "aiaudit.signed_off_by" not in tags
    again = review.sign_off(review_engine, alex, result.audit_id, "second time")
    assert again["comment"] == "second time" and review.verify_review(rec, result.audit_id) == []


# compare and carry-forward -----------------------------------------------------------------------
def test_compare_and_carry_forward_only_unchanged_findings(review_engine, review_model, tmp_path):
    from audit import review
    from audit.checks.base import Check, CheckResult
    from audit.findings import Finding

    def extra(ctx, cfg):
        return CheckResult(findings=[Finding.make("extra", "New data-quality finding", status="warn",
                                                  severity="critical", metric="extra.rows", value=1.0)])

    ref = review_model
    first = run_audit(review_engine, tmp_path / "a", ref.uri, {"roc_auc": 0.99, "ece": 0.001, "balanced_accuracy": 0.5})
    second = run_audit(review_engine, tmp_path / "b", ref.uri, {"roc_auc": 0.99, "ece": 0.5, "balanced_accuracy": 0.99},
                       extra_checks=[Check(name="extra", run=extra)])
    rec = review_engine.records
    rita = add_user(rec, "rita", "reviewer")
    by_metric = {f.metric: f for f in first.findings}
    for metric in ("performance.roc_auc", "performance.ece", "performance.balanced_accuracy"):
        review.record_disposition(review_engine, rita, first.audit_id, by_metric[metric].id, "accept_risk",
                                  f"Decision on {metric} for the first audit.")
    assert review.previous_audit(rec, second.audit_id)["audit_id"] == first.audit_id
    cmp = review.compare(review_engine, second.audit_id)
    assert cmp.previous_id == first.audit_id
    assert [f["id"] for f in cmp.new] == ["extra:extra.rows"]
    assert [f["id"] for f in cmp.resolved] == [by_metric["performance.ece"].id]
    assert [f["id"] for f in cmp.changed] == [by_metric["performance.balanced_accuracy"].id]
    assert cmp.changed[0]["previous_status"] == "pass" and cmp.changed[0]["status"] in ("warn", "fail")
    assert by_metric["performance.roc_auc"].id in cmp.unchanged
    deltas = {d["metric"]: d for d in cmp.metric_deltas}
    assert deltas["performance.roc_auc"]["delta"] == pytest.approx(0.0, abs=1e-12)
    carried = review.carry_forward(review_engine, rita, second.audit_id)
    assert [c["finding_id"] for c in carried] == [by_metric["performance.roc_auc"].id]
    assert carried[0]["carried_from"] == first.audit_id
    now = review.current_dispositions(rec, second.audit_id)
    assert set(now) == {by_metric["performance.roc_auc"].id}
    assert review.carry_forward(review_engine, rita, second.audit_id) == []  # idempotent
    blockers = {f.id for f in review.signoff_blockers(second, now)}
    assert blockers == {"extra:extra.rows", by_metric["performance.balanced_accuracy"].id}


# CLI and app start-up -------------------------------------------------------------------------
def test_users_cli_add_list_remove(settings):
    added = cli("users", "add", "cli-ann", "--role", "reviewer", "--password-stdin",
                env={"AIAUDIT_ACTOR": "cli:test"}, input_text=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    listed = json.loads(run_cli("users", "list", "--json").stdout)
    ann = next(u for u in listed if u["username"] == "cli-ann")
    assert ann["role"] == "reviewer" and "password_hash" not in ann and PASSWORD not in json.dumps(listed)
    short = cli("users", "add", "cli-bob", "--role", "viewer", "--password-stdin", input_text="short\n")
    assert short.returncode == 2 and "at least 12" in short.stderr
    assert run_cli("users", "remove", "cli-ann").returncode == 0
    assert "cli-ann" not in {u["username"] for u in json.loads(run_cli("users", "list", "--json").stdout)}


def test_app_creates_first_admin_from_env_only_when_store_is_empty(tmp_path, monkeypatch):
    from audit.commands.app import ADD_USER_HINT, first_admin
    from audit.config import Settings
    from audit.records import Records
    from audit.users import UserStore
    s = Settings.from_env(tmp_path / "home").ensure()
    monkeypatch.delenv("AIAUDIT_ADMIN_USER", raising=False)
    monkeypatch.delenv("AIAUDIT_ADMIN_PASSWORD", raising=False)
    assert first_admin(s) == ADD_USER_HINT
    monkeypatch.setenv("AIAUDIT_ADMIN_USER", "root-admin")
    monkeypatch.setenv("AIAUDIT_ADMIN_PASSWORD", PASSWORD)
    assert "root-admin" in first_admin(s)
    store = UserStore(Records(s.records_db))
    assert store.authenticate("root-admin", PASSWORD).role.value == "admin"
    assert first_admin(s) is None and store.count() == 1


def test_start_audit_checks_role_and_reports_bad_specs(review_engine, review_model, tmp_path):
    """The child process itself is exercised through the app in tests/test_app.py."""
    from audit import review
    from audit.errors import AuditInputError
    spec = yaml.safe_load(strict_spec(tmp_path, review_model.uri, {"roc_auc": 0.5}).read_text())
    rec = review_engine.records
    with pytest.raises(review.PermissionDenied):
        review.start_audit(review_engine, add_user(rec, "vera", "viewer"), spec)
    with pytest.raises(AuditInputError, match="models:/"):
        review.start_audit(review_engine, add_user(rec, "rita", "reviewer"), {**spec, "model": "s3://bucket/model"})
    # a spec the engine rejects: the job reports the one-line input error instead of crashing
    bad_job = tmp_path / "bad-job"
    bad_job.mkdir()
    (bad_job / "audit.yaml").write_text(yaml.safe_dump({**spec, "dataset": {**spec["dataset"], "label": "no_such_column"}}))
    assert review._run_job(bad_job) == 2
    failed = json.loads((bad_job / "result.json").read_text())
    assert failed["state"] == "failed" and "no_such_column" in failed["error"]
