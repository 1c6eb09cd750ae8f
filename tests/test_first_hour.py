"""A new user's first hour (issue 20): inputs checked before anything is written, and output that reads at
80 columns, in a CI log, with a verdict that says what blocks release."""
from __future__ import annotations

import io
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from rich.console import Console

from conftest import ROOT, copy_example, run_cli


def _console(width: int = 80) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=width, force_terminal=False, color_system=None), buf


def test_rejected_run_on_an_empty_home_creates_nothing(tmp_path):
    spec = copy_example("credit", tmp_path / "work")
    home = tmp_path / "fresh-home"
    proc = run_cli("run", str(spec), env={"AIAUDIT_HOME": str(home)})
    assert proc.returncode == 2, proc.stderr
    assert "no model registry" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "INFO" not in proc.stderr
    assert not home.exists()


def test_explicitly_unknown_training_compute_is_accepted(tmp_path):
    card = yaml.safe_load((ROOT / "examples/cards/credit-scoring.yaml").read_text())
    card["gpai"] = {"is_gpai": None, "training_flop": None}
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(card))
    proc = run_cli("classify", str(path), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    card["gpai"]["training_flop"] = -1
    path.write_text(yaml.safe_dump(card))
    bad = run_cli("classify", str(path))
    assert bad.returncode == 2 and "training_flop" in bad.stderr


def test_a_directory_stands_for_its_audit_yaml(engine, tmp_path):
    spec = copy_example("credit", tmp_path)
    prepared = engine.prepare(spec.parent)
    assert prepared.spec.path.endswith("audit.yaml")
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    proc = run_cli("run", str(empty))
    assert proc.returncode == 2 and "without an audit.yaml" in proc.stderr


def test_exporting_several_documents_to_a_file_name_is_refused(credit_audit, tmp_path):
    target = tmp_path / "x.pdf"
    proc = run_cli("export", credit_audit.audit_id, "--doc", "all", "--out", str(target))
    assert proc.returncode == 2 and "must be a directory" in proc.stderr
    assert not target.exists()
    unknown = run_cli("export", "no-such-audit", "--doc", "annex-iv", "--out", str(tmp_path / "docs"))
    assert unknown.returncode == 2 and not (tmp_path / "docs").exists()


def test_summary_reads_at_80_columns_one_line_per_open_finding(credit_audit):
    from audit.terminal import print_summary
    console, buf = _console(80)
    print_summary(console, credit_audit)
    lines = buf.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    open_findings = [f for f in credit_audit.findings if f.status.value != "pass"]
    assert sum(bool(re.match(r"^(FAIL|WARN|ERROR) ", line)) for line in lines) == len(open_findings)
    passed = sum(f.status.value == "pass" for f in credit_audit.findings)
    assert any(line.startswith(f"PASS  {passed} findings") for line in lines)
    assert any(line.startswith("Verdict: ") for line in lines)


def test_show_gives_every_full_title(credit_audit):
    from audit.terminal import _title, print_summary
    console, buf = _console(80)
    print_summary(console, credit_audit, full=True)
    text = " ".join(buf.getvalue().split())
    assert max(len(line) for line in buf.getvalue().splitlines()) <= 80
    for f in credit_audit.findings:
        assert " ".join(_title(f).split()) in text, f.title


def test_verdict_names_what_blocks_release_and_who_acts(credit_audit):
    from audit.findings import Severity, Status
    from audit.terminal import verdict
    assert credit_audit.status == "needs_review"
    text = verdict(credit_audit)
    assert "No gate failed" in text and "reviewer records a disposition" in text
    first_warn = next(f for f in credit_audit.findings if f.status == Status.warn and f.severity.rank >= Severity.high.rank)
    failed = credit_audit.model_copy(update={
        "status": "failed", "exit_code": 1,
        "findings": [first_warn.model_copy(update={"status": Status.fail}) if f is first_warn else f
                     for f in credit_audit.findings]})
    blocked = verdict(failed)
    assert blocked.startswith("Release is blocked (exit 1): 1 finding(s) failed a gate") and first_warn.title in blocked
    passed = credit_audit.model_copy(update={
        "status": "passed", "findings": [f for f in credit_audit.findings if f.status == Status.passed]})
    assert verdict(passed).startswith("All gates passed")


def test_piped_run_prints_progress_lines_and_no_library_chatter(demo_models, tmp_path):
    spec = copy_example("credit", tmp_path)
    proc = run_cli("run", str(spec.parent))
    assert proc.returncode in (0, 1), proc.stderr
    progress = [line for line in proc.stderr.splitlines() if re.match(r"^\[\d+:\d\d\] ", line)]
    assert any("running fairness" in line for line in progress), proc.stderr
    assert "INFO" not in proc.stderr and "Traceback" not in proc.stderr
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80
    assert "Verdict:" in proc.stdout


def test_sigterm_interrupts_cleanly_and_the_crash_is_listed(demo_models, settings, tmp_path):
    """SIGTERM mid-audit: exit 130 with one line, no partial directory left, and `aiaudit ls` shows the
    audit as crashed (it used to vanish from the list)."""
    spec = copy_example("credit", tmp_path)
    exe = Path(sys.executable).parent / "aiaudit"
    proc = subprocess.Popen([str(exe), "run", str(spec)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(settings.audits_dir.glob(".partial-*")):
        time.sleep(0.05)
    assert any(settings.audits_dir.glob(".partial-*")), "the audit never started"
    proc.send_signal(signal.SIGTERM)  # at once: on a quiet machine the checks take about a second in all
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "internal error" not in stderr
    assert not list(settings.audits_dir.glob(".partial-*"))
    listed = run_cli("ls", "--json")
    assert '"status": "crashed"' in listed.stdout


def test_findings_without_a_value_say_why(engine):
    """compas is explained by path-dependent TreeSHAP, which has no background: the two background findings
    used to pass with an empty value and a title promising one."""
    from conftest import run_example
    result = run_example(engine, "compas")
    by_metric = {f.metric: f for f in result.findings if f.check == "explanations"}
    explainer = by_metric["explanations.shap.background_size"]
    sensitivity = by_metric["explanations.quality.background_rank_tau"]
    assert explainer.value is None and "needs no background" in explainer.title
    assert sensitivity.value is None and sensitivity.title.endswith("not applicable")


def test_help_shows_no_type_labels_on_plain_flags():
    for command in (["export"], ["run"], ["demo"], ["ledger", "verify"], []):
        proc = run_cli(*command, "--help")
        assert proc.returncode == 0 and "<bool>" not in proc.stdout, (command, proc.stdout)
    assert "[pdf|docx|html|md|all]" in run_cli("export", "--help").stdout


def test_classify_shortens_titles_at_word_boundaries():
    import json
    card = str(ROOT / "examples/cards/credit-scoring.yaml")
    titles = [o["title"] for o in json.loads(run_cli("classify", card, "--format", "json").stdout)["obligations"]]
    text = run_cli("classify", card).stdout
    long = [t for t in titles if len(t) > 64]
    assert long, "expected an obligation title longer than the column"
    for title in long:
        line = next(line for line in text.splitlines() if title[:30] in line)
        shown = line.split("…")[0].split(None, 2)[-1]  # drop the indent and the article label
        shown = shown[shown.index(title[:10]):]
        assert title.startswith(shown) and title[len(shown)] == " ", (shown, title)


def test_usage_errors_exit_2_not_internal_error():
    """typer ships its own copy of click, whose exceptions are not click's: usage errors used to be reported
    as `internal error: MissingParameter` with exit 3."""
    for args in (["run"], ["show"], ["export", "x", "--doc", "fria", "--no-such-option"]):
        proc = run_cli(*args)
        assert proc.returncode == 2 and "internal error" not in proc.stderr and "Usage:" in proc.stderr, (args, proc.stderr)
