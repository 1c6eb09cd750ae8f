"""Atomic results under SIGKILL and no lost records under concurrency (real processes, real store)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, copy_example, run_cli


def _spec(tmp_path: Path, n_boot: int, name: str = "adult") -> Path:
    spec_path = copy_example(name, tmp_path)
    policy = yaml.safe_load((ROOT / "policies/eu-ai-act-default.yaml").read_text())
    policy["checks"] = {"performance": {"n_boot": n_boot}}
    policy["domains"] = {}
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    spec = yaml.safe_load(spec_path.read_text())
    spec.update(policy="../../policy.yaml", checks=["performance"])
    spec.pop("system_card", None)
    spec_path.write_text(yaml.safe_dump(spec))
    return spec_path


def _start(spec: Path) -> subprocess.Popen:
    exe = Path(sys.executable).parent / "aiaudit"
    return subprocess.Popen([str(exe), "run", str(spec)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ))


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 180) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    return False


def _visible_audits(settings) -> list[Path]:
    return [p for p in settings.audits_dir.iterdir() if not p.name.startswith(".")]


STAGES = {
    "validating": lambda settings: True,
    "running checks": lambda settings: any(settings.audits_dir.glob(".partial-*/pid")),
    "mlflow run open": lambda settings: any(settings.audits_dir.glob(".partial-*/run_id")),
}


@pytest.mark.parametrize("stage", list(STAGES))
def test_sigkill_leaves_store_consistent(stage, demo_models, settings, registry, tmp_path):
    from audit.records import Records
    records = Records(settings.records_db)
    spec = _spec(tmp_path, n_boot=4000)
    before_ids = {r["audit_id"] for r in records.list_audits(limit=10_000)}
    before_dirs = set(_visible_audits(settings))
    proc = _start(spec)
    reached = _wait_for(lambda: STAGES[stage](settings), proc)
    if stage == "validating":
        time.sleep(2.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_partial = [p for p in settings.audits_dir.glob(".partial-*")]
    # nothing half-written is visible
    assert {r["audit_id"] for r in records.list_audits(limit=10_000)} == before_ids
    assert set(_visible_audits(settings)) == before_dirs
    assert all((p / "audit.json").is_file() for p in _visible_audits(settings))
    # the next run recovers and succeeds
    after = run_cli("run", str(spec), "--json")
    assert after.returncode == 0, after.stderr
    assert not list(settings.audits_dir.glob(".partial-*"))
    assert records.verify().ok
    events = {(e.subject, e.event) for e in records.entries()}
    for p in killed_partial:
        audit_id = p.name.removeprefix(".partial-")
        assert (audit_id, "audit.failed") in events
    if stage != "validating":
        assert reached and killed_partial, "the audit finished before it could be killed at this stage"
    if stage == "mlflow run open":
        failed = [e for e in records.entries() if e.event == "audit.failed"]
        assert "interrupted" in failed[-1].payload["reason"]
        runs = registry.client.search_runs([registry.experiment_id("aiaudit-audits")],
                                           filter_string="attributes.status = 'FAILED'")
        assert runs, "the killed audit's MLflow run was not marked FAILED"


def test_concurrent_audits_and_ledger_writes_lose_nothing(demo_models, settings, registry, tmp_path):
    from audit.records import Records
    records = Records(settings.records_db)
    specs = [_spec(tmp_path / f"s{i}", n_boot=100, name="credit") for i in range(8)]
    ledger_before = len(records.entries())

    def audit(spec):
        return run_cli("run", str(spec), "--json", timeout=900)

    def review_action(i):
        proc = subprocess.run([sys.executable, "-c", (
            "import sys; from audit.records import Records; "
            f"r = Records(__import__('pathlib').Path({str(settings.records_db)!r})); "
            f"r.log('disposition.recorded', 'concurrency-{i}', {{'rationale': 'r{i}'}}, actor='reviewer{i}')")],
            capture_output=True, text=True, timeout=300)
        return proc.returncode

    with ThreadPoolExecutor(max_workers=16) as pool:
        audits = [pool.submit(audit, s) for s in specs]
        reviews = [pool.submit(review_action, i) for i in range(8)]
        results = [f.result() for f in audits]
        review_codes = [f.result() for f in reviews]
    assert all(r.returncode == 0 for r in results), [r.stderr[-500:] for r in results if r.returncode]
    assert review_codes == [0] * 8
    ids = [json.loads(r.stdout)["audit_id"] for r in results]
    assert len(set(ids)) == 8
    indexed = {r["audit_id"] for r in records.list_audits(limit=10_000)}
    assert set(ids) <= indexed
    entries = records.entries()
    assert records.verify().ok
    completed = {e.subject for e in entries if e.event == "audit.completed"}
    assert set(ids) <= completed
    assert {f"concurrency-{i}" for i in range(8)} <= {e.subject for e in entries if e.event == "disposition.recorded"}
    for r in results:
        run_id = json.loads(r.stdout)["mlflow"]["run_id"]
        assert registry.client.get_run(run_id).info.status == "FINISHED"
    assert len(entries) > ledger_before
