"""The append-only ledger detects every kind of tampering (issue: reliability and security)."""
from __future__ import annotations

import sqlite3

import pytest

from audit.records import Records
from conftest import run_cli


@pytest.fixture()
def ledger(tmp_path) -> Records:
    rec = Records(tmp_path / "records.db")
    for i in range(6):
        rec.log("finding.recorded", f"audit-{i // 2}", {"finding": f"f{i}", "value": i * 0.1}, actor=f"user{i % 2}")
    assert rec.verify().ok
    return rec


def _raw(rec: Records) -> sqlite3.Connection:
    """What an attacker with file access can do: drop the append-only triggers and edit rows."""
    con = sqlite3.connect(rec.db_path, isolation_level=None)
    con.execute("DROP TRIGGER ledger_no_update")
    con.execute("DROP TRIGGER ledger_no_delete")
    return con


def test_triggers_forbid_update_and_delete(ledger):
    con = sqlite3.connect(ledger.db_path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("UPDATE ledger SET actor = 'mallory' WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("DELETE FROM ledger WHERE seq = 2")


def test_edited_payload_detected(ledger):
    _raw(ledger).execute("UPDATE ledger SET payload = '{\"finding\":\"f2\",\"value\":0.0}' WHERE seq = 3")
    res = ledger.verify()
    assert not res.ok and res.first_bad == 3 and "edited" in res.reason


def test_edited_actor_detected(ledger):
    _raw(ledger).execute("UPDATE ledger SET actor = 'mallory' WHERE seq = 4")
    res = ledger.verify()
    assert not res.ok and res.first_bad == 4


def test_deleted_entry_detected(ledger):
    _raw(ledger).execute("DELETE FROM ledger WHERE seq = 2")
    res = ledger.verify()
    assert not res.ok and res.first_bad == 3


def test_reordered_entries_detected(ledger):
    con = _raw(ledger)
    con.execute("UPDATE ledger SET seq = 100 WHERE seq = 2")
    con.execute("UPDATE ledger SET seq = 2 WHERE seq = 3")
    con.execute("UPDATE ledger SET seq = 3 WHERE seq = 100")
    res = ledger.verify()
    assert not res.ok and res.first_bad == 2


def test_truncation_detected(ledger):
    _raw(ledger).execute("DELETE FROM ledger WHERE seq >= 5")
    res = ledger.verify()
    assert not res.ok and "truncated" in res.reason and res.first_bad == 5


def test_rewritten_chain_tail_detected_against_head(ledger):
    """Replacing the last entry with a freshly hashed one still contradicts the head record."""
    from audit.records import entry_hash
    con = _raw(ledger)
    row = con.execute("SELECT * FROM ledger WHERE seq = 6").fetchone()
    forged = entry_hash(6, row[1], "mallory", row[3], row[4], row[6], row[7])
    con.execute("UPDATE ledger SET actor = 'mallory', entry_hash = ? WHERE seq = 6", (forged,))
    res = ledger.verify()
    assert not res.ok and res.first_bad == 6


def test_cli_verify_exit_codes(ledger, tmp_path):
    env = {"AIAUDIT_HOME": str(tmp_path)}
    ok = run_cli("ledger", "verify", env=env)
    assert ok.returncode == 0 and "6 entries" in ok.stdout
    _raw(ledger).execute("UPDATE ledger SET event = 'audit.signed_off' WHERE seq = 5")
    bad = run_cli("ledger", "verify", env=env)
    assert bad.returncode == 1 and "entry 5" in bad.stderr


def _writer(db: str, n: int, name: str) -> None:
    records = Records(db)
    for i in range(n):
        records.log("review.disposition", f"finding:{name}:{i}", {"i": i}, actor=name)


def test_verify_under_concurrent_writers_raises_no_false_alarm(tmp_path):
    """Four writer processes append while this process verifies in a loop: every verify must pass, the head
    never moves backwards, and nothing is lost."""
    import multiprocessing as mp
    db = str(tmp_path / "records.db")
    records = Records(db)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(db, 60, f"w{k}")) for k in range(4)]
    for p in procs:
        p.start()
    results, heads = [], []
    while any(p.is_alive() for p in procs) or not results:
        results.append(records.verify())
        heads.append((records._read_head() or (0, ""))[0])
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert len(results) > 5
    bad = [r.reason for r in results if not r.ok]
    assert not bad, bad[:3]
    assert heads == sorted(heads)
    final = records.verify()
    assert final.ok and final.entries == 240 and records._read_head()[0] == 240


def test_store_is_private_whatever_the_umask(tmp_path):
    """Home and audit folders 0700, databases and the head file 0600, even under a permissive umask."""
    import os
    import stat
    from audit.config import Settings
    from audit.registry import Registry
    old = os.umask(0o000)
    try:
        settings = Settings.from_env(tmp_path / "home")
        Registry(settings)
        records = Records(settings.records_db)
        records.log("test.event", "subject", {"x": 1}, actor="t")
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(settings.home) == 0o700 and mode(settings.audits_dir) == 0o700
    assert mode(settings.records_db) == 0o600 and mode(settings.home / "mlflow.db") == 0o600
    assert mode(records.head_path) == 0o600


def test_damaged_records_database_is_one_line_naming_the_file(ledger, tmp_path):
    db = ledger.db_path
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    raw = db.read_bytes()
    db.write_bytes(raw[:100] + b"\x00" * 200 + raw[300:len(raw) // 2])   # header overwritten, then half gone
    env = {"AIAUDIT_HOME": str(tmp_path)}
    verify = run_cli("ledger", "verify", env=env)
    assert verify.returncode == 1 and str(db) in verify.stderr and "cannot be read" in verify.stderr
    listing = run_cli("ls", env=env)
    assert listing.returncode == 2 and len(listing.stderr.strip().splitlines()) == 1 and str(db) in listing.stderr
    assert "Traceback" not in verify.stderr + listing.stderr
