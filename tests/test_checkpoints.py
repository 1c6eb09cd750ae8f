"""Signed ledger checkpoints anchored outside the store: the tampering a hash chain alone cannot show."""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from types import SimpleNamespace

import pytest
import yaml

from conftest import ROOT, run_cli


@pytest.fixture
def store(tmp_path):
    """A store of its own (these tests damage it): the credit scorecard, audited twice."""
    from audit.config import Settings
    from audit.demo import DEMO_MODELS, train
    from audit.engine import AuditEngine
    from audit.registry import Registry
    settings = Settings.from_env(tmp_path / "home").ensure()
    est, X, lineage = train(DEMO_MODELS[0])
    ref = Registry(settings).register(est, X, "credit-checkpointed", lineage)
    spec = {"name": "credit-checkpointed", "model": ref.uri, "checks": ["performance"], "seed": 0,
            "dataset": {"path": str(ROOT / "data" / "german_credit.csv.gz"), "label": "good_credit",
                        "positive_label": 1, "split_column": "split"}}
    (tmp_path / "audit.yaml").write_text(yaml.safe_dump(spec))
    engine = AuditEngine(settings)
    audits = [engine.run(engine.prepare(tmp_path / "audit.yaml")) for _ in range(2)]
    return SimpleNamespace(settings=settings, engine=engine, audits=audits, ref=ref, tmp=tmp_path,
                           env={"AIAUDIT_HOME": str(settings.home)})


def _verify(store, *extra):
    return run_cli("ledger", "verify", "--no-aliases", *extra, env=store.env)


def _rehash_from(con, start: int) -> None:
    """What an insider who knows the format does: recompute every hash from `start` to the end, and the head."""
    from audit.records import GENESIS, entry_hash
    rows = con.execute("SELECT * FROM ledger ORDER BY seq").fetchall()
    prev = GENESIS if start == 1 else rows[start - 2][8]
    for r in rows[start - 1:]:
        seq, ts, actor, event, subject, payload = r[0], r[1], r[2], r[3], r[4], r[5]
        content = hashlib.sha256(payload.encode()).hexdigest()
        h = entry_hash(seq, ts, actor, event, subject, content, prev)
        con.execute("UPDATE ledger SET content_hash = ?, prev_hash = ?, entry_hash = ? WHERE seq = ?",
                    (content, prev, h, seq))
        prev = h
    return prev


def _tamper(store, sql: str, rehash_from: int | None = None) -> None:
    con = sqlite3.connect(store.settings.records_db)
    con.execute("DROP TRIGGER IF EXISTS ledger_no_update")
    con.execute("DROP TRIGGER IF EXISTS ledger_no_delete")
    con.execute(sql)
    last = con.execute("SELECT seq, entry_hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
    if rehash_from is not None:
        last = (last[0], _rehash_from(con, rehash_from))
    con.commit()
    con.close()
    store.settings.records_db.with_suffix(".head").write_text(f"{last[0]} {last[1]}\n")  # the head follows along


def test_every_audit_leaves_a_signed_checkpoint_in_mlflow_and_the_key_is_private(store):
    from audit import checkpoints
    key = store.settings.home / checkpoints.KEY_FILE
    assert oct(key.stat().st_mode & 0o777) == "0o600" and oct(key.parent.stat().st_mode & 0o777) == "0o700"
    client = store.engine.registry.client
    run_cp = checkpoints.parse(client.get_run(store.audits[0].mlflow["run_id"]).data.tags[checkpoints.TAG])
    version_cp = checkpoints.parse(client.get_model_version(store.ref.name, store.ref.version).tags[checkpoints.TAG])
    assert run_cp.size < version_cp.size and run_cp.key_id == version_cp.key_id == checkpoints.store_key_id(
        store.settings.home)
    proc = _verify(store)
    assert proc.returncode == 0 and "checkpoints ok: the ledger extends all 3 signed checkpoint(s)" in proc.stdout


def test_truncation_with_the_head_rewritten_is_caught_by_the_anchors(store):
    _tamper(store, "DELETE FROM ledger WHERE seq > (SELECT MAX(seq) - 3 FROM ledger)")
    from audit.records import Records
    assert Records(store.settings.records_db).verify().ok  # the chain and the head alone cannot tell
    proc = _verify(store)
    assert proc.returncode == 1 and "truncated" in proc.stderr


def test_a_rewrite_rehashed_to_the_end_is_caught(store, tmp_path):
    held = tmp_path / "checkpoint.json"
    held.write_text(run_cli("ledger", "checkpoint", env=store.env).stdout)
    _tamper(store, "UPDATE ledger SET payload = replace(payload, 'performance', 'performancf') WHERE seq = 3",
            rehash_from=3)
    from audit.records import Records
    assert Records(store.settings.records_db).verify().ok
    proc = _verify(store, "--checkpoint", str(held))
    assert proc.returncode == 1 and "rewritten" in proc.stderr and str(held) in proc.stderr


def test_a_checkpoint_altered_by_hand_fails_its_signature(store, tmp_path):
    held = json.loads(run_cli("ledger", "checkpoint", env=store.env).stdout)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({**held, "size": held["size"] - 1}))
    proc = _verify(store, "--checkpoint", str(forged))
    assert proc.returncode == 1 and "signature does not verify" in proc.stderr


def test_a_document_proves_its_ledger_against_its_own_checkpoint(store, tmp_path):
    from audit.documents import render_document, verify_document
    out = render_document(store.engine, store.audits[1].audit_id, "model-card", "md", "en", tmp_path)
    report = verify_document(out, store.engine)
    assert report.ok and any(i.name == "ledger checkpoint" and i.ok for i in report.items)
    _tamper(store, "UPDATE ledger SET actor = 'cli:someone-else' WHERE seq = 2", rehash_from=2)
    report = verify_document(out, store.engine)
    assert [i.name for i in report.mismatches] == ["ledger checkpoint"]  # the chain itself was made consistent
    assert "rewritten" in next(i.detail for i in report.items if i.name == "ledger checkpoint")


def test_a_replaced_signing_key_does_not_make_old_anchors_pass(store):
    from audit import checkpoints
    key = store.settings.home / checkpoints.KEY_FILE
    os.remove(key)
    checkpoints.make(store.engine.records, store.settings.home)  # a new key, as an insider would create
    proc = _verify(store)
    assert proc.returncode == 1 and "not this store's key" in proc.stderr


def test_a_deleted_review_row_is_reported_even_with_its_ledger_entry_intact(store):
    from audit.review import record_disposition
    from audit.users import UserStore
    reviewer = UserStore(store.engine.records).add("rhea", "reviewer", "a long passphrase 1", actor="test")
    finding = store.audits[1].findings[0]
    record_disposition(store.engine, reviewer, store.audits[1].audit_id, finding.id, "accept_risk",
                       "accepted for this test of deleted rows")
    assert _verify(store).returncode == 0
    con = sqlite3.connect(store.settings.records_db)
    con.execute("DROP TRIGGER dispositions_no_delete")
    con.execute("DELETE FROM dispositions")
    con.commit()
    con.close()
    proc = _verify(store)
    assert proc.returncode == 1 and "has no dispositions row (deleted)" in proc.stderr
