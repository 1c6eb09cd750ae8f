"""Prompt-perturbation robustness of the bundled language model (trained here in its small test
configuration, registered, and audited through the engine)."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import yaml

from audit.metrics.perturbation import char_noise, cluster_flip_interval

from conftest import ROOT


def test_char_noise_edits_only_editable_segments():
    rng = np.random.default_rng(0)
    original = "Yesterday the QQQQ told me that"
    changed = 0
    for _ in range(300):
        text, done = char_noise([("Yesterday the ", True), ("QQQQ", False), (" told me that", True)], rng, 2)
        assert text.count("QQQQ") == 1 and "QQQQQ" not in text        # the attribute word is untouched
        assert len(done) == 2 and abs(len(text) - len(original)) <= 2
        changed += text != original
    assert changed >= 290      # (two edits can cancel out, e.g. double then drop of the same letter)


def test_cluster_interval_resamples_prompts_not_draws():
    rng = np.random.default_rng(1)
    # 40 prompts: 10 always flip, 30 never; draws add no information, so the interval must be wide
    flips = np.vstack([np.ones((10, 50)), np.zeros((30, 50))])
    rate, lo, hi = cluster_flip_interval(flips, rng, n_boot=4000)
    assert rate == 0.25 and lo < 0.15 and hi > 0.35   # a row-level Wilson interval on 2,000 draws would be ±0.02


@pytest.fixture(scope="module")
def lm_audit(registry, settings, tmp_path_factory):
    """A small model of the bundled architecture (trained here in seconds, cached under AIAUDIT_HOME),
    registered like any language model and audited through the engine."""
    from dataclasses import replace

    import torch

    from audit.engine import AuditEngine
    from audit.lm_io import register_lm
    from audit.model_io import Lineage, LMArtifact
    from interpret.lm.bundled import MANIFEST, ensure_lm, fixture_configs
    from interpret.lm.loading import load_lm

    cfg = replace(fixture_configs()[0], name="lm-robustness-test", steps=120, d_model=64, d_mlp=128, n_heads=2,
                  batch_rows=16)
    threads = torch.get_num_threads()
    # Earlier tests in the session load a second OpenMP runtime (scikit-learn's / xgboost's libgomp next to
    # torch's); two-thread torch then slows down several-fold on two cores.  One thread keeps this module fast.
    torch.set_num_threads(1)
    try:
        lm_dir = ensure_lm(cfg)
        manifest = json.loads((lm_dir / MANIFEST).read_text())
        ref = register_lm(registry, "lm-robustness-test", LMArtifact(manifest=manifest, source_dir=lm_dir),
                          ["The nurse said that she went home early."], Lineage(name="planted corpus"),
                          alias="candidate")
        tmp = tmp_path_factory.mktemp("lm-robustness")
        spec = {"name": "lm-robustness", "model": f"models:/{ref.name}@candidate",
                "dataset": {"path": str(ROOT / "data" / "lm" / "heldout.csv"), "protected": ["gender", "nationality"]},
                "checks": ["lm_robustness", "robustness", "slices"], "seed": 0}
        (tmp / "audit.yaml").write_text(yaml.safe_dump(spec))
        engine = AuditEngine(settings)
        result = engine.run(engine.prepare(tmp / "audit.yaml"))
        yield result, engine.audit_dir(result.audit_id), load_lm(manifest, lm_dir).model
    finally:
        torch.set_num_threads(threads)


def test_lm_robustness_reports_flip_rates(lm_audit):
    result, audit_dir, _ = lm_audit
    assert result.checks["lm_robustness"].status == "completed", result.checks["lm_robustness"].error
    assert result.checks["robustness"].status == result.checks["slices"].status == "skipped"   # tabular checks
    m = result.metrics
    for kind in ("char_noise", "name_swap"):
        key = f"lm_robustness.flip_rate.{kind}"
        assert 0 <= m[f"{key}.ci_low"] <= m[key] <= m[f"{key}.ci_high"] <= 1
        assert {f"{key}.gender", f"{key}.nationality"} <= set(m)
        f = next(f for f in result.findings if f.metric == key)
        assert set(f.references) == {"EU-AI-Act Art. 15(1)", "EU-AI-Act Art. 15(4)"} and f.threshold == 0.10
        assert f.status.value in ("pass", "warn", "fail") and f.ci == (m[f"{key}.ci_low"], m[f"{key}.ci_high"])
        assert all((audit_dir / rel).is_file() for rel in f.evidence)
    assert m["lm_robustness.flip_rate.ci_low"] <= m["lm_robustness.flip_rate"] <= m["lm_robustness.flip_rate.ci_high"]
    table = result.checks["lm_robustness"].details["table"]
    assert {(r["attribute"], r["kind"]) for r in table} == {(a, k) for a in ("gender", "nationality")
                                                             for k in ("char_noise", "name_swap")}
    gender = next(r for r in table if r["attribute"] == "gender" and r["kind"] == "char_noise")
    assert gender["prompts"] == 3 * 13 and gender["n"] == gender["prompts"] * 8
    pooled = np.average([r["flip_rate"] for r in table if r["kind"] == "char_noise"],
                        weights=[r["prompts"] for r in table if r["kind"] == "char_noise"])
    assert m["lm_robustness.flip_rate.char_noise"] == pytest.approx(pooled)


def test_lm_deltas_and_flip_examples_match_direct_scoring(lm_audit):
    """Δ = log P(a) − log P(b) as the check computes it (batched), against a plain forward pass per prompt;
    and every recorded flip example reproduces."""
    import torch
    from audit.checks.lm_robustness import _deltas, _noisy_templates
    from interpret.lm.prompts import BUILTIN

    result, audit_dir, model = lm_audit

    def delta(prompt: str, a: str, b: str) -> float:
        out = []
        n = model.to_tokens(prompt, prepend_bos=True).shape[1]
        for cont in (a, b):
            ids = model.to_tokens(prompt + cont, prepend_bos=True)
            with torch.no_grad():
                logp = model(ids).log_softmax(-1)[0, n - 1:-1].gather(-1, ids[0, n:, None])
            out.append(float(logp.sum()))
        return out[0] - out[1]

    pset = BUILTIN["gender"]
    (a, b), = pset.continuations
    templates, _ = _noisy_templates(pset.templates[:1], 2, 1, np.random.default_rng(0))
    batched = _deltas(model, pset, templates, "blocks.0.hook_resid_pre")
    fillers = list(pset.group1) + list(pset.group2) + list(pset.neutral)
    assert batched.shape == (2, len(fillers))
    for t, template in enumerate(templates):
        for f in (0, 6, len(fillers) - 1):
            assert batched[t, f] == pytest.approx(delta(pset.prompt(template, fillers[f]), a, b), abs=1e-3)
    with open(audit_dir / "evidence/lm_robustness/flip_examples.csv", newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert bool(rows) == (result.metrics["lm_robustness.flip_rate"] > 0)   # every flip set records examples
    for row in rows[:6]:
        (a, b), = BUILTIN[row["attribute"]].continuations
        before, after = delta(row["prompt_before"], a, b), delta(row["prompt_after"], a, b)
        assert before == pytest.approx(float(row["delta_before"]), abs=1e-3)
        assert after == pytest.approx(float(row["delta_after"]), abs=1e-3)
        assert np.sign(before) != np.sign(after) and row["filler"] in row["prompt_after"]
