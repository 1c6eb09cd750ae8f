"""The audit spine end to end: real CLI, real MLflow store, real data and models."""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml
from sklearn import metrics as skm

from conftest import ROOT, copy_example, run_cli


def store_snapshot(settings) -> dict:
    """Everything an audit could write: index rows, ledger entries, MLflow runs, audit directories."""
    audits = ledger = None  # no records database yet: it must still not exist afterwards
    if settings.records_db.exists():
        con = sqlite3.connect(settings.records_db)
        audits = con.execute("SELECT COUNT(*) FROM audits").fetchone()[0]
        ledger = con.execute("SELECT COUNT(*) FROM ledger").fetchone()[0]
        con.close()
    ml = sqlite3.connect(settings.home / "mlflow.db")
    runs = ml.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    tags = ml.execute("SELECT COUNT(*) FROM model_version_tags").fetchone()[0]
    ml.close()
    return {"audits": audits, "ledger": ledger, "runs": runs, "version_tags": tags,
            "dirs": sorted(p.name for p in settings.audits_dir.iterdir())}


def test_cli_run_writes_schema_valid_result_and_tags_model(demo_models, registry, tmp_path):
    proc = run_cli("run", "examples/credit/audit.yaml", "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "out" / "audit.json").read_text())
    schema = json.loads((ROOT / "docs/schema/audit.schema.json").read_text())
    jsonschema.validate(result, schema)
    for key in ("audit_id", "created_at", "model", "dataset", "policy", "findings", "metrics"):
        assert key in result
    assert result["model"]["name"] == "german-credit-scorecard"
    assert result["dataset"]["rows"] == 322 and len(result["dataset"]["sha256"]) == 64
    perf = [f for f in result["findings"] if f["check"] == "performance"]
    assert {f["metric"] for f in perf} >= {"performance.roc_auc", "performance.accuracy", "performance.log_loss",
                                           "performance.ece", "performance.balanced_accuracy"}
    for f in perf:
        lo, hi = f["ci"]
        assert lo <= f["value"] <= hi
    assert result["metrics"]["performance.roc_auc.ci_low"] < result["metrics"]["performance.roc_auc"]
    version = registry.resolve("models:/german-credit-scorecard@candidate")
    tags = registry.client.get_model_version(version.name, version.version).tags
    assert tags["aiaudit.audit_id"] in {r["audit_id"] for r in json.loads(run_cli("ls", "--json").stdout)}
    assert tags["aiaudit.status"] in ("passed", "needs_review")
    run = registry.client.get_run(result["mlflow"]["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["policy.name"] == "eu-ai-act-default"
    assert abs(run.data.metrics["performance.roc_auc"] - result["metrics"]["performance.roc_auc"]) < 1e-12
    shown = run_cli("show", result["audit_id"], "--json")
    assert json.loads(shown.stdout)["audit_id"] == result["audit_id"]


def test_performance_matches_scikit_learn(credit_audit, engine):
    prepared = engine.prepare(ROOT / "examples" / "credit" / "audit.yaml")
    frame = prepared.data.frame
    y = (frame["good_credit"] == 1).astype(int).to_numpy()
    score = prepared.model.predict_proba(frame)[:, 1]
    m = credit_audit.metrics
    assert m["performance.roc_auc"] == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)
    assert m["performance.log_loss"] == pytest.approx(skm.log_loss(y, score), abs=1e-9)
    assert m["performance.accuracy"] == pytest.approx(skm.accuracy_score(y, score >= 0.5), abs=1e-12)
    assert m["performance.brier"] == pytest.approx(skm.brier_score_loss(y, score), abs=1e-12)


def test_gate_failure_exits_1(demo_models, tmp_path):
    spec_path = copy_example("credit", tmp_path)
    policy = yaml.safe_load((ROOT / "policies/eu-ai-act-default.yaml").read_text())
    policy["checks"] = {"performance": {"n_boot": 100, "thresholds": {"roc_auc": 0.99}}}
    policy["domains"] = {}
    (tmp_path / "strict.yaml").write_text(yaml.safe_dump(policy))
    spec = yaml.safe_load(spec_path.read_text())
    spec["policy"] = "../../strict.yaml"
    spec["checks"] = ["performance"]
    spec_path.write_text(yaml.safe_dump(spec))
    proc = run_cli("run", str(spec_path), "--json")
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    auc = next(f for f in result["findings"] if f["metric"] == "performance.roc_auc")
    assert auc["status"] == "fail" and auc["ci"][1] < 0.99
    assert result["status"] == "failed"


def _mutate(spec_path: Path, change) -> None:
    spec = yaml.safe_load(spec_path.read_text())
    change(spec)
    spec_path.write_text(yaml.safe_dump(spec))


BAD_INPUTS = {
    "malformed yaml": (lambda p: p.write_text("name: x\nmodel: [unclosed\n"), "malformed YAML"),
    "unknown key": (lambda p: _mutate(p, lambda s: s.update(colour="red")), "colour"),
    "missing dataset file": (lambda p: _mutate(p, lambda s: s["dataset"].update(path="nope.csv")), "nope.csv"),
    "unresolvable model": (lambda p: _mutate(p, lambda s: s.update(model="models:/no-such-model/7")), "no-such-model"),
    "absent label": (lambda p: _mutate(p, lambda s: s["dataset"].update(label="outcome")), "outcome"),
    "absent protected": (lambda p: _mutate(p, lambda s: s["dataset"].update(protected=["religion"])), "religion"),
    "signature mismatch": (lambda p: _mutate(p, lambda s: s.update(model="models:/adult-income-xgb@candidate")), "signature"),
    "bad model uri": (lambda p: _mutate(p, lambda s: s.update(model="s3://bucket/model")), "model"),
    "unknown check": (lambda p: _mutate(p, lambda s: s.update(checks=["telepathy"])), "telepathy"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, demo_models, settings, tmp_path):
    spec_path = copy_example("credit", tmp_path)
    breaker, needle = BAD_INPUTS[case]
    breaker(spec_path)
    before = store_snapshot(settings)
    proc = run_cli("run", str(spec_path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert needle in lines[0]
    assert "Traceback" not in proc.stderr
    assert store_snapshot(settings) == before
    assert not (tmp_path / "out").exists()


def test_crashing_check_becomes_error_finding(engine, monkeypatch):
    from audit.checks.base import Check, CheckResult

    def explode(ctx, cfg) -> CheckResult:
        raise RuntimeError("boom")

    prepared = engine.prepare(ROOT / "examples" / "credit" / "audit.yaml")
    prepared.plan = [*prepared.plan, Check(name="exploding", run=explode)]
    result = engine.run(prepared)
    err = [f for f in result.findings if f.check == "exploding"]
    assert len(err) == 1 and err[0].status.value == "error" and "boom" in err[0].detail
    assert result.checks["exploding"].status == "error"
    assert result.checks["performance"].status == "completed"
    assert engine.load_result(result.audit_id).audit_id == result.audit_id


def test_published_schemas_are_current():
    from audit.schemas import models, render
    for name, model in models().items():
        assert (ROOT / "docs/schema" / f"{name}.schema.json").read_text() == render(model, name), \
            f"docs/schema/{name}.schema.json is stale: run python -m audit.schemas"


def test_register_command_records_lineage_and_refuses_pickles(demo_models, registry, tmp_path):
    import joblib
    from audit.demo import DEMO_MODELS, train
    est, X, _ = train(DEMO_MODELS[0])
    pkl = tmp_path / "model.pkl"
    joblib.dump(est, pkl)
    data = ROOT / "data" / "german_credit.csv.gz"
    refused = run_cli("register", str(pkl), "--name", "from-pickle", "--data", str(data), "--label", "good_credit")
    assert refused.returncode == 2 and "untrusted" in refused.stderr
    import skops.io as sio
    sk = tmp_path / "model.skops"
    sio.dump(est, sk)
    ok = run_cli("register", str(sk), "--name", "from-skops", "--data", str(data), "--label", "good_credit",
                 "--drop", "split", "--drop", "sex", "--drop", "age_group", "--alias", "candidate", "--trust-model")
    assert ok.returncode == 0, ok.stderr
    ref = registry.resolve("models:/from-skops@candidate")
    assert ref.tags["aiaudit.dataset_sha256"] == __import__("audit.model_io", fromlist=["x"]).sha256_file(data)
    assert ref.tags["aiaudit.dataset_rows"] == "1000"
    model = registry.load(ref)
    assert np.allclose(model.predict_proba(X.head(20)), est.predict_proba(X.head(20)))


def test_opening_a_registry_leaves_the_environment_alone(tmp_path, monkeypatch):
    """mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI; a second store opened later in the same process
    (or any child process) must still resolve to its own AIAUDIT_HOME, not to the first registry's."""
    from audit.config import Settings
    from audit.registry import Registry, _point_fluent_api_at
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    import mlflow
    before = mlflow.get_tracking_uri()
    monkeypatch.setenv("AIAUDIT_HOME", str(tmp_path / "a"))
    first = Registry(Settings.from_env())
    monkeypatch.setenv("AIAUDIT_HOME", str(tmp_path / "b"))
    second = Settings.from_env()
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert second.tracking_uri.endswith(str(tmp_path / "b" / "mlflow.db"))
    # opening a store does not move the process-wide fluent API; using one points it at that store
    assert mlflow.get_tracking_uri() == before
    assert first.fluent().get_tracking_uri() == first.settings.tracking_uri
    _point_fluent_api_at(mlflow, before)
