"""Post-market monitoring (`aiaudit monitor`): windows against a signed-off baseline audit, end to end."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT, run_cli

WINDOWS = ROOT / "data" / "monitoring"
MODEL = "credit-monitored"


@pytest.fixture(scope="module")
def monitored(settings, registry, tmp_path_factory):
    """The demo scorecard registered under its own name, audited (performance and fairness) and signed off."""
    from audit.demo import DEMO_MODELS, train
    from audit.engine import AuditEngine
    from audit.review import needs_disposition, record_disposition, sign_off
    from audit.users import UserStore
    est, X, lineage = train(DEMO_MODELS[0])
    ref = registry.register(est, X, MODEL, lineage)
    tmp = tmp_path_factory.mktemp("monitoring")
    spec = {"name": "credit-monitored", "model": ref.uri, "checks": ["performance"], "seed": 0,
            "dataset": {"path": str(ROOT / "data" / "german_credit.csv.gz"), "label": "good_credit",
                        "positive_label": 1, "protected": ["sex", "age_group"], "split_column": "split"}}
    (tmp / "audit.yaml").write_text(yaml.safe_dump(spec))
    engine = AuditEngine(settings)
    audit = engine.run(engine.prepare(tmp / "audit.yaml"))
    users = UserStore(engine.records)
    approver = users.get("mona") or users.add("mona", "approver", "correct horse battery", actor="test")
    for f in audit.findings:
        if needs_disposition(f):
            record_disposition(engine, approver, audit.audit_id, f.id, "accept_risk", "accepted for the monitoring tests")
    sign_off(engine, approver, audit.audit_id, "baseline for monitoring")
    return SimpleNamespace(engine=engine, spec=tmp / "audit.yaml", audit=audit, ref=ref, approver=approver, tmp=tmp)


def _monitor(monitored, window: Path, *extra: str):
    out = monitored.tmp / f"out-{window.stem}-{len(list(monitored.tmp.iterdir()))}"
    proc = run_cli("monitor", str(monitored.spec), "--window", str(window), "--out", str(out), *extra)
    return proc, out


@pytest.fixture(scope="module")
def windows(monitored):
    """The stable window, then the shifted one, each through the real CLI."""
    stable, stable_out = _monitor(monitored, WINDOWS / "credit-window-stable.csv.gz")
    shifted, shifted_out = _monitor(monitored, WINDOWS / "credit-window-shifted.csv.gz")
    return SimpleNamespace(stable=stable, shifted=shifted,
                           stable_json=json.loads((stable_out / "monitor.json").read_text()),
                           shifted_json=json.loads((shifted_out / "monitor.json").read_text()))


def test_a_window_like_the_baseline_raises_no_breach(windows, monitored):
    assert windows.stable.returncode == 0, windows.stable.stdout + windows.stable.stderr
    result = windows.stable_json
    assert result["kind"] == "monitor"
    assert result["window"]["baseline_audit_id"] == monitored.audit.audit_id
    assert result["window"]["baseline_signed_off"] is True
    assert result["window"]["start"].startswith("2027-01-01") and result["window"]["timestamp_column"] == "timestamp"
    assert not [f for f in result["findings"] if f["status"] == "fail"]
    estimated = {f["metric"]: f for f in result["findings"] if f["metric"].startswith("monitoring.estimated")}
    assert set(estimated) == {"monitoring.estimated_auc", "monitoring.estimated_accuracy"}  # no labels in the window
    assert estimated["monitoring.estimated_auc"]["data"]["valid"] is True
    lo, hi = estimated["monitoring.estimated_auc"]["ci"]
    assert lo <= estimated["monitoring.estimated_auc"]["value"] <= hi


def test_a_shifted_window_is_a_breach_recorded_like_any_finding(windows, monitored):
    from audit.review import ReviewError, latest_audit, sign_off
    assert windows.shifted.returncode == 1, windows.shifted.stdout + windows.shifted.stderr
    assert "Monitoring breach" in windows.shifted.stdout
    result = windows.shifted_json
    failed = {(f["metric"], f["group"]) for f in result["findings"] if f["status"] == "fail"}
    # the generator lengthened loans, inflated amounts by 30% and tripled women's weight
    assert {("monitoring.feature_psi", "duration"), ("monitoring.feature_psi", "credit_amount"),
            ("monitoring.domain_auc", None)} <= failed
    assert ("monitoring.population_shift.sex", "male") in failed
    assert ("monitoring.feature_psi", "housing") not in failed  # untouched inputs stay quiet
    family = {f["data"]["family_size"] for f in result["findings"] if "p_adjusted" in f["data"]}
    assert len(family) == 1 and family.pop() >= 25  # one Holm family for the whole window
    records = monitored.engine.records
    row = records.get_audit(result["audit_id"])
    assert row["kind"] == "monitor" and row["status"] == "failed"
    events = [e.event for e in records.entries(result["audit_id"])]
    assert events.count("finding.recorded") == len(result["findings"]) and events[-1] == "audit.completed"
    assert records.verify().ok
    # a breach is a review item: the window cannot be signed off until each is decided
    with pytest.raises(ReviewError, match="no disposition"):
        sign_off(monitored.engine, monitored.approver, result["audit_id"])
    # ... and it never displaces the signed-off audit or its registry tags
    assert latest_audit(records, MODEL, monitored.ref.version)["audit_id"] == monitored.audit.audit_id
    tags = monitored.engine.registry.client.get_model_version(MODEL, monitored.ref.version).tags
    assert tags["aiaudit.audit_id"] == monitored.audit.audit_id and tags["aiaudit.status"] == "signed_off"
    assert tags["aiaudit.monitor_id"] == result["audit_id"]


def test_windows_are_a_trend_in_mlflow_and_in_the_history(windows, monitored):
    client = monitored.engine.registry.client
    steps = {}
    for result in (windows.stable_json, windows.shifted_json):
        history = client.get_metric_history(result["mlflow"]["run_id"], "monitoring.domain_auc")
        steps[result["window"]["window_index"]] = [m.step for m in history]
    assert steps == {1: [1], 2: [2]}
    proc = run_cli("monitor", "--history", f"{MODEL}/{monitored.ref.version}", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["window"] for r in rows] == [1, 2] and [r["status"] for r in rows] == ["passed", "failed"]
    assert rows[1]["breaches"] >= 4 and rows[0]["breaches"] == 0


def test_monitor_json_follows_the_published_schema(windows):
    import jsonschema
    schema = json.loads((ROOT / "docs" / "schema" / "audit.schema.json").read_text())
    jsonschema.validate(windows.shifted_json, schema)


def _store_digest(home: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(home.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(home).as_posix().encode() + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def _bad_window(tmp: Path, kind: str) -> Path:
    w = pd.read_csv(WINDOWS / "credit-window-stable.csv.gz")
    path = tmp / f"bad-{kind}.csv"
    if kind == "missing_column":
        w = w.drop(columns=["duration"])
    elif kind == "empty":
        w = w.iloc[:0]
    elif kind == "timestamps":
        w.loc[7, "timestamp"] = "last tuesday"
    elif kind == "types":
        w["credit_amount"] = w["credit_amount"].astype(str) + " EUR"
    w.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("kind,message", [
    ("missing_column", "missing column(s) ['duration']"),
    ("empty", "no rows"),
    ("timestamps", "not ISO 8601 dates, e.g. 'last tuesday'"),
    ("types", "column 'credit_amount' is numeric in the baseline and text in the window"),
])
def test_bad_windows_are_refused_before_anything_is_written(monitored, aiaudit_home, kind, message):
    from audit.errors import AuditInputError
    from audit.monitoring import prepare_monitor
    path = _bad_window(monitored.tmp, kind)
    before = _store_digest(aiaudit_home)
    with pytest.raises(AuditInputError) as e:
        prepare_monitor(monitored.engine, monitored.spec, path)
    assert message in str(e.value)
    assert _store_digest(aiaudit_home) == before


def test_the_cli_gives_one_line_and_exit_2_for_a_bad_window(monitored, aiaudit_home):
    path = _bad_window(monitored.tmp, "timestamps")
    before = _store_digest(aiaudit_home)
    proc = run_cli("monitor", str(monitored.spec), "--window", str(path), "--out", str(monitored.tmp / "none"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "last tuesday" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert _store_digest(aiaudit_home) == before and not (monitored.tmp / "none").exists()


def test_a_baseline_must_be_an_audit_not_a_window(monitored, windows, aiaudit_home, demo_models):
    from audit.errors import AuditInputError
    from audit.monitoring import prepare_monitor
    window = WINDOWS / "credit-window-stable.csv.gz"
    before = _store_digest(aiaudit_home)
    for baseline, message in [(windows.stable_json["audit_id"], "is a monitoring window, not an audit"),
                              ("20990101T000000-deadbeef", "no such audit")]:
        with pytest.raises(AuditInputError, match=message):
            prepare_monitor(monitored.engine, monitored.spec, window, baseline)
    assert _store_digest(aiaudit_home) == before


def test_a_version_without_a_signed_off_audit_needs_an_explicit_baseline(monitored, registry, tmp_path, aiaudit_home):
    from audit.demo import DEMO_MODELS, train
    from audit.errors import AuditInputError
    from audit.monitoring import prepare_monitor
    est, X, lineage = train(DEMO_MODELS[0])
    ref = registry.register(est, X, "credit-unsigned", lineage)
    spec = {"name": "credit-unsigned", "model": ref.uri, "checks": ["performance"],
            "dataset": {"path": str(ROOT / "data" / "german_credit.csv.gz"), "label": "good_credit",
                        "positive_label": 1, "protected": ["sex"], "split_column": "split"}}
    (tmp_path / "audit.yaml").write_text(yaml.safe_dump(spec))
    engine = monitored.engine
    audit = engine.run(engine.prepare(tmp_path / "audit.yaml"))
    window = WINDOWS / "credit-window-stable.csv.gz"
    before = _store_digest(aiaudit_home)
    with pytest.raises(AuditInputError, match="has no signed-off audit"):
        prepare_monitor(engine, tmp_path / "audit.yaml", window)
    with pytest.raises(AuditInputError, match=f"not {MODEL} version"):
        prepare_monitor(engine, monitored.spec, window, audit.audit_id)
    assert _store_digest(aiaudit_home) == before
    result = engine.run(prepare_monitor(engine, tmp_path / "audit.yaml", window, audit.audit_id))
    assert result.window.baseline_signed_off is False and result.window.baseline_audit_id == audit.audit_id


def test_plain_audits_never_run_the_monitoring_check(credit_audit):
    assert "monitoring" not in credit_audit.checks


def test_false_alarms_are_controlled_and_planted_shifts_are_found():
    """Independent draws with a known truth (benchmarks/monitoring_sim.py; the full study with 200 windows per
    scenario is benchmarks/bench_monitoring.py): 20 windows from the baseline's distribution raise at most a few
    alarms (expected 1 at alpha 0.05), and a covariate shift and a concept shift are found in nearly all."""
    from benchmarks.monitoring_sim import Shift, Simulation, draw, fit_model
    sim = Simulation(fit_model(), {"n_boot": 200})
    def alarms(shift: Shift, metric: str | None, runs: int) -> int:
        hits = 0
        for r in range(runs):
            rng = np.random.default_rng(500 + r)
            found = [f for f in sim.run(draw(1000, rng), draw(1000, rng, shift), seed=r).findings
                     if f.status.value != "pass" and (metric is None or f.metric == metric)]
            hits += bool(found)
        return hits
    assert alarms(Shift(), None, 20) <= 3
    assert alarms(Shift(covariate=0.3), "monitoring.feature_psi", 6) >= 5
    assert alarms(Shift(concept=-0.8), "monitoring.realised_auc_change", 6) >= 5


def test_the_app_shows_the_trend_and_the_open_breaches(monitored, windows):
    """The review app's monitoring page, driven through Streamlit's AppTest on the same store."""
    from streamlit.testing.v1 import AppTest
    from audit.monitoring import trend
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120).run()
    at.text_input(key="signin_user").input("mona")
    at.text_input(key="signin_password").input("correct horse battery")
    at = at.button(key="signin_submit").click().run()
    at = at.sidebar.radio(key="page").set_value("monitoring").run()
    assert not at.exception
    at = at.selectbox(key="mon_model").set_value(MODEL).run()
    table, breaches = (d.value for d in at.dataframe)  # the windows, then the open breaches
    assert list(table["window"]) == [1, 2] and list(table["status"]) == ["passed", "failed"]
    rows = trend(monitored.engine, MODEL)
    assert {r["window"] for r in rows} == {1, 2}
    domain = {r["window"]: r for r in rows if r["metric"] == "monitoring.domain_auc"}
    assert domain[2]["value"] > domain[2]["threshold"] > domain[1]["value"] and domain[1]["baseline"] == 0.5
    charts = [e for e in _walk(at.main) if type(e).__name__ == "UnknownElement" and "vega" in e.type]
    assert len(charts) == len({r["metric"] for r in rows})
    shifted_open = {f["id"] for f in windows.shifted_json["findings"] if f["status"] in ("fail", "warn")}
    assert set(breaches["finding"]) >= shifted_open and len(shifted_open) >= 5
    assert at.button(key="mon_open").label == "Open audit"


def _walk(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)


def test_the_monitoring_plan_fills_annex_iv_and_stands_alone(monitored, windows, tmp_path):
    """The plan lists the thresholds the windows applied and every window, in both languages and all formats, with
    the windows' monitor.json hashes in the manifest: editing one breaks verification."""
    from audit.checks.monitoring import MonitoringConfig
    from audit.documents import FORMATS, render_documents, verify_document
    engine, aid = monitored.engine, monitored.audit.audit_id
    paths = render_documents(engine, aid, ["pmm-plan", "annex-iv"], list(FORMATS), ["en", "ko"], tmp_path)
    assert len(paths) == 16 and all(verify_document(p, engine).ok for p in paths)
    window_ids = [windows.stable_json["audit_id"], windows.shifted_json["audit_id"]]
    applied = windows.shifted_json["checks"]["monitoring"]["details"]["settings"]
    assert set(applied) == set(MonitoringConfig.model_fields)
    for name in (f"{aid}_pmm-plan_en.md", f"{aid}_annex-iv_en.md", f"{aid}_pmm-plan_ko.md"):
        text = (tmp_path / name).read_text()
        assert all(w in text for w in window_ids), name
        assert "max\\_domain\\_auc" in text and f"| {applied['max_domain_auc']:.4f} |" in text
    en = (tmp_path / f"{aid}_pmm-plan_en.md").read_text()
    assert "As applied to the newest window" in en and "The newest window (#2) has" in en
    assert "모니터링된 구간" in (tmp_path / f"{aid}_pmm-plan_ko.md").read_text()
    shifted = engine.audit_dir(windows.shifted_json["audit_id"]) / "audit.json"
    original = shifted.read_bytes()
    try:
        shifted.write_bytes(original.replace(b'"rows": 600', b'"rows": 601', 1))
        report = verify_document(tmp_path / f"{aid}_pmm-plan_en.pdf", engine)
        assert [i.name for i in report.mismatches] == ["monitoring windows"]
        assert "monitor.json changed" in report.mismatches[0].detail
    finally:
        shifted.write_bytes(original)


def test_the_label_free_estimate_and_its_draws_equal_the_reference_computations():
    """realised_draws' one-pass matrix product gives, per drawn label set, scikit-learn's AUC and accuracy; the
    per-feature drift test is scipy's KS; the expected AUC is the mean realised AUC under calibration."""
    from scipy.stats import ks_2samp
    from sklearn.metrics import accuracy_score, roc_auc_score
    from audit.metrics.drift import feature_drift
    from audit.metrics.estimation import expected_auc, realised_draws
    rng = np.random.default_rng(3)
    p = 1 / (1 + np.exp(-rng.normal(-0.4, 1.6, 4000)))
    aucs, accs = realised_draws(p, np.random.default_rng(7), 3)
    draws = np.random.default_rng(7).random((3, len(p)), dtype=np.float32) < p.astype(np.float32)
    for y, auc, acc in zip(draws, aucs, accs):
        assert auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert acc == pytest.approx(accuracy_score(y, p >= 0.5), abs=1e-12)
    many, _ = realised_draws(p, np.random.default_rng(8), 2000)
    assert expected_auc(p) == pytest.approx(many.mean(), abs=0.002)
    base, win = pd.Series(rng.normal(0, 1, 3000)), pd.Series(rng.normal(0.2, 1, 2000))
    d = feature_drift(base, win, True, np.random.default_rng(0))
    assert d.p == pytest.approx(min(1.0, 2 * ks_2samp(base, win).pvalue))


@pytest.fixture(scope="module")
def large_window(monitored):
    """The shifted window resampled to 60,000 rows, as Parquet in row groups of 8,000 (several Dask partitions)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    w = pd.read_csv(WINDOWS / "credit-window-shifted.csv.gz")
    big = w.sample(60_000, replace=True, random_state=1).reset_index(drop=True)
    rng = np.random.default_rng(2)
    big["credit_amount"] = big["credit_amount"] + rng.integers(-50, 50, len(big))
    path = monitored.tmp / "large-window.parquet"
    pq.write_table(pa.Table.from_pandas(big, preserve_index=False), path, row_group_size=8_000)
    return path


def _by_id(result):
    return {f.id: f for f in result.findings}


def test_a_streamed_window_counts_exactly_what_memory_counts_and_dask_gives_identical_findings(monitored, large_window):
    from audit.monitoring import Streaming, prepare_monitor
    engine = monitored.engine
    runs = {}
    for name, streaming in [("memory", None), ("local", Streaming("local", chunk_rows=7_000)),
                            ("dask", Streaming("dask"))]:
        prepared = prepare_monitor(engine, monitored.spec, large_window, monitored.audit.audit_id, streaming=streaming)
        runs[name] = engine.run(prepared)
    memory, local, dask = (_by_id(runs[k]) for k in ("memory", "local", "dask"))
    assert runs["local"].dataset.rows == runs["dask"].dataset.rows == 60_000
    assert runs["local"].dataset.sample["backend"] == "local" and runs["local"].dataset.sample["chunks"] == 9
    assert runs["dask"].dataset.sample["chunks"] > 1
    assert local.keys() == dask.keys() == memory.keys()
    for fid, f in local.items():  # the two backends: the same numbers, bit for bit
        g = dask[fid]
        assert (f.status, f.value, f.ci, f.data.get("p_value")) == (g.status, g.value, g.ci, g.data.get("p_value")), fid
    counted = ("monitoring.feature_psi", "monitoring.prediction_psi", "monitoring.positive_rate_change",
               "monitoring.label_rate_change", "monitoring.realised_accuracy_change", "monitoring.selection_rate_change",
               "monitoring.tpr_change")
    compared = 0
    for fid, f in memory.items():  # counts are exact: streaming changes nothing but the sketches
        if f.metric in counted or f.metric.startswith("monitoring.population_shift"):
            g = local[fid]
            assert f.value == pytest.approx(g.value, abs=1e-12) and f.data["p_value"] == pytest.approx(
                g.data["p_value"], rel=1e-9, abs=1e-300), fid
            compared += 1
    assert compared >= 25
    auc_m, auc_s = memory["monitoring:monitoring.realised_auc_change"], local["monitoring:monitoring.realised_auc_change"]
    assert "within" in auc_s.detail and abs(auc_m.value - auc_s.value) < 1e-3


def test_a_bad_row_deep_in_a_streamed_window_is_refused_with_nothing_written(monitored, aiaudit_home):
    w = pd.read_csv(WINDOWS / "credit-window-shifted.csv.gz")
    big = w.sample(30_000, replace=True, random_state=3).reset_index(drop=True)
    big["credit_amount"] = big["credit_amount"].astype(object)
    big.loc[25_000, "credit_amount"] = "n/a EUR"
    path = monitored.tmp / "bad-deep.csv"
    big.to_csv(path, index=False)
    before = _store_digest(aiaudit_home)
    proc = run_cli("monitor", str(monitored.spec), "--window", str(path), "--baseline", monitored.audit.audit_id,
                   "--stream", "--chunk-rows", "5000", "--out", str(monitored.tmp / "never"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "credit_amount" in proc.stderr
    assert _store_digest(aiaudit_home) == before and not (monitored.tmp / "never").exists()


def test_the_sparse_chi_square_on_a_huge_window_is_the_permutation_test_drawn_from_margins():
    """Above 100,000 rows the exact-conditional test draws tables from the margins (memory by cells, not rows);
    it estimates the same p-value as scipy's permutation version."""
    from scipy import stats
    from audit.metrics.data_quality import conditional_chi2_p
    table = np.array([[2, 30, 60, 1], [10, 140, 260, 9]])
    scipy_p = stats.chi2_contingency(table, correction=False,
                                     method=stats.PermutationMethod(n_resamples=20_000, random_state=0)).pvalue
    ours = conditional_chi2_p(table, np.random.default_rng(0), 20_000)
    assert abs(ours - scipy_p) < 4 * np.sqrt(scipy_p * (1 - scipy_p) / 20_000) + 1e-3
    huge = np.array([[1, 300, 699], [2_000, 3_000_000, 6_997_000]])
    assert 0 < conditional_chi2_p(huge, np.random.default_rng(0)) <= 1


def test_a_breach_can_trigger_a_reaudit_linked_in_the_ledger(monitored, aiaudit_home, tmp_path, demo_models):
    from audit.records import Records
    other = tmp_path / "other.yaml"
    spec = yaml.safe_load(monitored.spec.read_text())
    other.write_text(yaml.safe_dump({**spec, "model": "models:/german-credit-scorecard@candidate"}))
    before = _store_digest(aiaudit_home)
    refused = run_cli("monitor", str(monitored.spec), "--window", str(WINDOWS / "credit-window-shifted.csv.gz"),
                      "--baseline", monitored.audit.audit_id, "--reaudit-on-breach", str(other))
    assert refused.returncode == 2 and "not the monitored" in refused.stderr and _store_digest(aiaudit_home) == before
    proc = run_cli("monitor", str(monitored.spec), "--window", str(WINDOWS / "credit-window-shifted.csv.gz"),
                   "--baseline", monitored.audit.audit_id, "--reaudit-on-breach", str(monitored.spec))
    assert proc.returncode == 1, proc.stderr
    records = Records(monitored.engine.settings.records_db)
    window_id = records.list_audits(MODEL, limit=1, kind="monitor")[0]["audit_id"]
    events = {e.event: e for e in records.entries(window_id)}
    new_id = events["monitor.reaudit_completed"].payload["audit"]
    assert events["monitor.reaudit_triggered"].payload["breaches"]
    assert records.get_audit(new_id)["kind"] == "audit" and f"re-audit {new_id}" in proc.stdout
    assert [e.payload["window"] for e in records.entries(new_id) if e.event == "audit.triggered_by_window"] == [window_id]
    stable = run_cli("monitor", str(monitored.spec), "--window", str(WINDOWS / "credit-window-stable.csv.gz"),
                     "--baseline", monitored.audit.audit_id, "--reaudit-on-breach", str(monitored.spec))
    assert stable.returncode == 0 and "re-audit" not in stable.stdout
