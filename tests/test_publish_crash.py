"""A process killed at each step of publishing an audit leaves either a complete audit (indexed by the next
run) or a cleanly recorded failure: never an orphan folder that `ls` and `show` do not know (issue 25)."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from conftest import example_for_checks

KILLER = textwrap.dedent('''
    import os, sys
    from audit.engine import AuditEngine
    from audit.records import Records
    step, spec = sys.argv[1], sys.argv[2]

    def die(*_a, **_k):
        sys.stdout.flush()
        os._exit(9)

    def after(fn):
        def wrapped(*a, **k):
            out = fn(*a, **k)
            die()
        return wrapped

    if step == "after_mlflow_run":
        AuditEngine._log_mlflow = after(AuditEngine._log_mlflow)
    elif step == "after_rename":
        AuditEngine._index = die
    elif step == "inside_the_index_transaction":
        append = Records.append
        Records.append = lambda self, con, event, *a, **k: die() if event == "audit.completed" else append(
            self, con, event, *a, **k)
    elif step == "after_the_index":
        AuditEngine._index = after(AuditEngine._index)
    engine = AuditEngine()
    engine.run(engine.prepare(spec))
''')

EXPECTED = {"after_mlflow_run": "failed", "after_rename": "recovered", "inside_the_index_transaction": "recovered",
            "after_the_index": "complete"}


def _events(settings, audit_id: str) -> list[tuple[str, dict]]:
    con = sqlite3.connect(settings.records_db)
    rows = con.execute("SELECT event, payload FROM ledger WHERE subject = ? ORDER BY seq", (audit_id,)).fetchall()
    con.close()
    return [(e, json.loads(p)) for e, p in rows]


@pytest.mark.parametrize("step", sorted(EXPECTED))
def test_kill_at_each_publishing_step(step, demo_models, settings, tmp_path):
    from audit.engine import AuditEngine
    spec = example_for_checks("credit", tmp_path, ["performance"], keep_card=False)
    before = {p.name for p in settings.audits_dir.iterdir()}
    proc = subprocess.run([sys.executable, "-c", KILLER, step, str(spec)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 9, proc.stderr[-2000:]
    new = {p.name for p in settings.audits_dir.iterdir()} - before
    assert len(new) == 1, new
    folder = settings.audits_dir / new.pop()
    audit_id = folder.name.removeprefix(".partial-")

    engine = AuditEngine(settings)
    settled = engine.recover_interrupted()
    assert audit_id in settled
    events = [e for e, _ in _events(settings, audit_id)]
    assert engine.records.verify().ok
    assert not list(settings.audits_dir.glob(f"*{audit_id}/pid"))
    if EXPECTED[step] == "failed":
        assert events[-1] == "audit.failed" and not list(settings.audits_dir.glob(f"*{audit_id}"))
        assert engine.records.get_audit(audit_id) is None
        return
    result = engine.load_result(audit_id)  # `show` knows it, and its files are intact
    assert result.audit_id == audit_id and (settings.audits_dir / audit_id / "audit.json").is_file()
    assert events.count("audit.completed") == 1
    completed = dict(_events(settings, audit_id))["audit.completed"]
    assert completed.get("recovered", False) == (EXPECTED[step] == "recovered")
    assert engine.recover_interrupted() == []  # settled once
