"""SAE probes on language models, validated on the bundled planted-bias LM and its 50 % control.

One session fixture trains (or reuses, keyed by config hash) the small CI pair, registers them in the
session's MLflow store with their SAEs, and audits both through the real engine.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import ROOT, by_name, run_cli, run_example

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is first imported (see interpret.lm.env)


@pytest.fixture(scope="session")
def lm_models(registry, aiaudit_home) -> dict[str, str]:
    from audit.lm_demo import register_demo_lm
    cache = Path(os.environ.get("AIAUDIT_CACHE") or aiaudit_home / "cache")  # keyed by config hash
    return by_name(register_demo_lm(registry, fixture=True, cache_root=cache, progress=lambda m: None))


@pytest.fixture(scope="session")
def lm_engine(settings, lm_models):
    from audit.engine import AuditEngine
    return AuditEngine(settings)


@pytest.fixture(scope="session")
def planted_audit(lm_engine):
    return run_example(lm_engine, "lm")


@pytest.fixture(scope="session")
def control_audit(lm_engine):
    return run_example(lm_engine, "lm", "control.yaml")


def _attr(result, name):
    return next(a for a in result.checks["sae"].details["attributes"] if a["attribute"] == name)


# --- self-validation: the ground truth is known -------------------------------------------------

def test_planted_model_shows_the_planted_gender_bias(planted_audit):
    m = planted_audit.metrics
    assert m["sae.bias.gender.gap.ci_low"] > 0.5, m["sae.bias.gender.gap"]
    assert m["sae.bias.gender.significant"] == 1.0 and m["sae.bias.gender.p_value"] < 0.05
    finding = next(f for f in planted_audit.findings if f.metric == "sae.bias.gender.gap")
    assert finding.status.value in ("fail", "warn") and "EU-AI-Act Art. 10(2)(f)" in finding.references
    # the corpus rate is the ground truth the model is compared with
    assert m["sae.bias.gender.corpus_rate"] == pytest.approx(0.9, abs=0.01)
    assert 0.6 < m["sae.bias.gender.model_rate"] < 1.0
    assert m["sae.bias.gender.amplification"] == pytest.approx(m["sae.bias.gender.model_rate"] - m["sae.bias.gender.corpus_rate"])
    # nationality was not planted (rate 0.5): no significant bias
    assert m["sae.bias.nationality.significant"] == 0.0
    assert m["sae.bias.nationality.gap.ci_low"] <= 0 <= m["sae.bias.nationality.gap.ci_high"] or m["sae.bias.nationality.p_value"] >= 0.05


def test_selected_features_beat_the_random_control(planted_audit):
    m = planted_audit.metrics
    for key in ("sae.quality.explained_variance", "sae.quality.ce_loss_score", "sae.quality.l0",
                "sae.ablation.gender.effect", "sae.ablation.gender.control_effect"):
        assert m[key] is not None, key
    assert m["sae.quality.passed"] == 1.0
    assert m["sae.ablation.gender.effect"] > 0.1 and m["sae.ablation.gender.effect.ci_low"] > 0
    # paired over the same bootstrap resamples: selected-feature effect minus the random-set effect
    assert m["sae.ablation.gender.excess_effect.ci_low"] > 0
    ab = _attr(planted_audit, "gender")["ablation"]
    assert ab["localised"] and ab["effect"] > max(ab["control_effects"])  # beats every random set
    assert len(ab["control_sets"]) == len(ab["control_effects"]) >= 5
    assert all(len(s) == len(ab["features"]) and not set(s) & set(ab["features"]) for s in ab["control_sets"])
    finding = next(f for f in planted_audit.findings if f.metric == "sae.ablation.gender.effect")
    assert "identified" in finding.title and finding.evidence


def test_control_model_reports_no_significant_bias(control_audit):
    m = control_audit.metrics
    for attr in ("gender", "nationality"):
        assert m[f"sae.bias.{attr}.significant"] == 0.0, (attr, m[f"sae.bias.{attr}.gap"], m[f"sae.bias.{attr}.p_value"])
        f = next(f for f in control_audit.findings if f.metric == f"sae.bias.{attr}.gap")
        assert f.status.value == "pass"
    assert m["sae.bias.gender.corpus_rate"] == pytest.approx(0.5, abs=0.01)
    assert abs(m["sae.bias.gender.gap"]) < 1.0
    assert m["sae.ablation.gender.effect"] is None  # nothing to localise
    assert control_audit.status != "failed"


def test_feature_reports_carry_evidence(planted_audit):
    gender = _attr(planted_audit, "gender")
    selected = [f for f in gender["features"] if "attribution" in f["selected_by"]]
    assert selected
    for f in selected:
        assert 0 <= f["density"] <= 1 and f["contexts"] and f["promoted"] and f["label"]
        assert f["contexts"][0]["activation"] >= f["contexts"][-1]["activation"]
    # at least one selected feature is labelled from occupation contexts (the planted cue)
    from interpret.lm.corpus import FEMALE_JOBS, MALE_JOBS
    from interpret.sae.features import base_word
    words = {base_word(c["word"]) for f in selected for c in f["contexts"]}
    assert words & set(FEMALE_JOBS + MALE_JOBS), words
    assert any(f["filler_share"] >= 0.5 for f in selected)
    steering = gender["steering"]
    assert [r["alpha"] for r in steering["table"]] == sorted(r["alpha"] for r in steering["table"])
    assert abs(steering["spearman_rho"]) > 0.8
    for key in ("histograms", "dose_response"):
        rel = gender["plots"][key]
        assert rel in planted_audit.evidence  # hashed into audit.json
    baseline = gender["baseline"]
    assert 0 <= baseline["probe_accuracy_raw"] <= 1 and baseline["linear_effect"] == pytest.approx(
        planted_audit.metrics["sae.ablation.gender.linear_effect"])


def test_tabular_checks_are_skipped_with_a_reason(planted_audit):
    skipped = {k: v for k, v in planted_audit.checks.items() if v.status == "skipped"}
    assert planted_audit.checks["sae"].status == "completed"
    assert "performance" in skipped and "language model" in skipped["performance"].error
    assert planted_audit.model.format == "transformer_lens" and planted_audit.model.task == "language_model"


# --- measurement code against independent computations ------------------------------------------

@pytest.fixture(scope="session")
def planted_parts(lm_models, registry):
    ref = registry.resolve(lm_models["planted-bias-lm"])
    model = registry.load(ref)
    from audit.lm_io import attach_sae
    attach_sae(registry, ref, model)
    return model.estimator.load().model, model.estimator.load_sae()


def test_gap_matches_a_direct_forward_pass(planted_parts):
    import torch
    from interpret.lm.prompts import BUILTIN
    from interpret.sae.scoring import PromptScorer
    model, _ = planted_parts
    pset = BUILTIN["gender"]
    d = PromptScorer(model, pset, "blocks.1.hook_resid_pre").deltas()
    tok = model.tokenizer
    prompt = pset.prompt(pset.templates[0], pset.group1[0])
    with torch.no_grad():
        def logp(text):
            ids = tok(text, add_special_tokens=False)["input_ids"]
            full = torch.tensor([[tok.bos_token_id] + ids])
            n = len(tok(prompt, add_special_tokens=False)["input_ids"]) + 1
            lp = torch.log_softmax(model(full)[0, :-1], -1)
            return sum(float(lp[i - 1, full[0, i]]) for i in range(n, full.shape[1]))
        expected = logp(prompt + " she") - logp(prompt + " he")
    assert d.g1[0, 0] == pytest.approx(expected, abs=1e-4)


def test_error_term_splice_is_exact_and_attribution_matches_saelens(planted_parts):
    import torch
    from interpret.lm.prompts import BUILTIN
    from interpret.sae.scoring import PromptScorer
    from interpret.sae.splice import sae_edit_hook
    model, sae = planted_parts
    hook = sae.cfg.metadata.hook_name
    scorer = PromptScorer(model, BUILTIN["gender"], hook)
    base, spliced = scorer.deltas(), scorer.deltas(sae_edit_hook(sae))
    assert np.abs(base.g1 - spliced.g1).max() < 1e-4 and np.abs(base.g2 - spliced.g2).max() < 1e-4
    ours = scorer.attribution(sae)
    # SAELens's own splice (HookedSAETransformer.saes with use_error_term) on the same objective
    weights = scorer.gap_weights()
    total = torch.zeros(sae.cfg.d_sae)
    saved = {}

    def keep(acts, hook):  # the model's weights are frozen, so make the latents a leaf to read their gradient
        leaf = acts.detach().requires_grad_(True)
        saved["a"] = leaf
        return leaf
    for i, s in enumerate(scorer.seqs):
        if weights[i] == 0:
            continue
        toks = torch.tensor([s.ids[:-1]])
        with model.saes(saes=[sae], use_error_term=True):
            logits = model.run_with_hooks(toks, fwd_hooks=[(f"{hook}.hook_sae_acts_post", keep)])
            lp = logits.log_softmax(-1)[0, s.prompt_len - 1:].gather(-1, torch.tensor(s.ids[s.prompt_len:])[:, None]).sum()
            (lp * weights[i]).backward()
        a = saved["a"]
        total += (a * a.grad)[0, 1:].sum(0).detach()  # position 0 (BOS) is never edited in our splice
    top = np.argsort(-ours)[:5]
    assert np.allclose(ours[top], total.numpy()[top], rtol=1e-3, atol=1e-5)


def test_quality_metrics_match_a_direct_computation(planted_parts):
    import torch
    from audit.lm_demo import HELDOUT
    import pandas as pd
    from interpret.sae.quality import evaluate, token_rows
    model, sae = planted_parts
    rows = token_rows(model, pd.read_csv(HELDOUT)["text"].tolist(), 128, 4096)
    q = evaluate(model, sae, rows)
    hook = sae.cfg.metadata.hook_name
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.from_numpy(rows), names_filter=[hook])
        x = cache[hook][:, 1:].reshape(-1, sae.cfg.d_in)
        acts = sae.encode(x)
        recon = sae.decode(acts)
    l0 = float((acts > 0).float().sum(-1).mean())
    ev = 1 - float(((x - recon) ** 2).sum(-1).mean() / ((x - x.mean(0)) ** 2).sum(-1).mean())
    assert q["l0"] == pytest.approx(l0, rel=1e-3)
    assert q["explained_variance"] == pytest.approx(ev, abs=2e-3)
    assert q["delta_loss"] == pytest.approx(q["ce_loss_with_sae"] - q["ce_loss_without_sae"])


# --- registry, corpus and reproducibility ----------------------------------------------------------

def test_lm_and_sae_are_registered_and_linked(lm_models, registry):
    import mlflow
    import pandas as pd
    ref = registry.resolve(lm_models["planted-bias-lm"])
    assert ref.tags["aiaudit.format"] == "transformer_lens" and ref.tags["aiaudit.task"] == "language_model"
    run = registry.client.get_run(ref.tags["aiaudit.sae.run_id"])
    assert run.data.params["sae.architecture"] == "topk" and run.data.params["sae.hook"] == "blocks.1.hook_resid_pre"
    assert run.data.tags["aiaudit.model"] == ref.uri
    files = [a.path for a in registry.client.list_artifacts(run.info.run_id, "sae")]
    assert "sae/sae_weights.safetensors" in files and "sae/cfg.json" in files
    pyfunc = mlflow.pyfunc.load_model(ref.uri)
    ll = pyfunc.predict(pd.DataFrame({"text": ["The nurse said that she went home early.", "zqxv kpw"]}))
    assert np.all(np.isfinite(ll)) and ll[0] > ll[1]  # corpus-like text is likelier than noise


def test_tampered_lm_weights_are_refused(lm_models, registry, tmp_path):
    import shutil
    from audit.errors import IntegrityError
    from audit.model_io import load_model_dir
    model = registry.load(registry.resolve(lm_models["control-lm"]))
    copy = tmp_path / "lm"
    shutil.copytree(model.info["local_dir"], copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="model.safetensors"):
        load_model_dir(copy, model.meta.sha256)


def test_corpus_rate_is_what_was_planted():
    from interpret.lm.corpus import FEMALE_JOBS, MALE_JOBS, CorpusConfig, CorpusGenerator
    gen = CorpusGenerator(CorpusConfig(rates={"gender": 0.8, "nationality": 0.5}, seed=3))
    text = " ".join(gen.sentences(20000))
    pat = re.compile(r"the (\w+) (?:said|told me|because)[a-z ]*? (she|he) ")
    hits = [(job, pron) for job, pron in pat.findall(text.lower()) if job in FEMALE_JOBS + MALE_JOBS]
    stereo = np.mean([(job in FEMALE_JOBS) == (pron == "she") for job, pron in hits])
    assert len(hits) > 3000
    assert stereo == pytest.approx(0.8, abs=0.02)
    assert gen.empirical_rates()["gender"] == pytest.approx(stereo, abs=1e-9)


def test_training_is_seeded_and_cached(tmp_path):
    from dataclasses import replace
    from interpret.lm.bundled import LMTrainConfig, ensure_lm
    cfg = replace(LMTrainConfig(), name="tiny", steps=3, batch_rows=4, d_model=32, n_heads=2, d_mlp=64)
    a = ensure_lm(cfg, tmp_path / "a")
    b = ensure_lm(cfg, tmp_path / "b")
    ma, mb = (json.loads((d / "lm.json").read_text()) for d in (a, b))
    assert ma["files"]["model.safetensors"] == mb["files"]["model.safetensors"]
    stamp = (a / "model.safetensors").stat().st_mtime_ns
    assert ensure_lm(cfg, tmp_path / "a") == a and (a / "model.safetensors").stat().st_mtime_ns == stamp
    other = ensure_lm(replace(cfg, seed=1), tmp_path / "a")
    assert json.loads((other / "lm.json").read_text())["files"]["model.safetensors"] != ma["files"]["model.safetensors"]


# --- external models: clear failure without files, working path with files -------------------------

def _spec(tmp_path: Path, model: str, extra: dict | None = None) -> Path:
    spec = {"name": "external-lm", "model": model,
            "dataset": {"path": str(ROOT / "data" / "lm" / "heldout.csv"), "protected": ["gender"]},
            "policy": "eu-ai-act-default", "checks": ["sae"], **(extra or {})}
    path = tmp_path / "audit.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_missing_hf_cache_weights_exit_2_naming_the_path(registry, settings, tmp_path):
    from audit.lm_io import register_external_lm
    register_external_lm(registry, "gpt2-small-offline", "gpt2",
                         sae={"release": "gpt2-small-res-jb", "sae_id": "blocks.8.hook_resid_pre"}, alias="candidate")
    empty = tmp_path / "hf"
    empty.mkdir()
    proc = run_cli("run", str(_spec(tmp_path, "models:/gpt2-small-offline@candidate")),
                   env={"HF_HOME": str(empty), "HF_HUB_CACHE": "", "AIAUDIT_HOME": str(settings.home)})
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert str(empty / "hub" / "models--gpt2" / "snapshots") in lines[0] and "never downloads" in lines[0]


def test_missing_local_directory_is_an_input_error_naming_the_path(registry, lm_engine, tmp_path):
    from audit.errors import AuditInputError
    from audit.lm_io import register_external_lm
    target = tmp_path / "models" / "gpt2"
    register_external_lm(registry, "gpt2-local-missing", str(target), alias="candidate")
    with pytest.raises(AuditInputError, match="config.json") as err:
        lm_engine.prepare(_spec(tmp_path, "models:/gpt2-local-missing@candidate"))
    assert str(target) in str(err.value)


def test_local_hf_directory_runs_through_transformer_bridge(registry, settings, tmp_path, lm_models):
    """A GPT-2-architecture model saved with save_pretrained, loaded offline by TransformerBridge."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    from audit.engine import AuditEngine
    from audit.lm_io import register_external_lm
    from interpret.lm.tokenizer import build_char_tokenizer
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata
    d = tmp_path / "tiny-gpt2"
    tok = build_char_tokenizer(d)
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=32, n_layer=2, n_head=2,
                                    bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id))
    hf.save_pretrained(d)
    sae = TopKSAE(TopKSAEConfig(d_in=32, d_sae=64, k=4, metadata=SAEMetadata(
        hook_name="blocks.1.hook_resid_pre", context_size=64, prepend_bos=True)))
    sae.save_model(str(tmp_path / "sae"))
    register_external_lm(registry, "tiny-gpt2-dir", str(d), sae={"path": str(tmp_path / "sae")}, alias="candidate")
    policy = yaml.safe_load((ROOT / "policies/eu-ai-act-default.yaml").read_text())
    policy["checks"] = {"sae": {"n_random_sets": 5, "n_boot": 200, "max_heldout_tokens": 2048,
                                "analyse_features": "always"}}
    policy["domains"] = {}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(policy))
    engine = AuditEngine(settings)
    result = engine.run(engine.prepare(_spec(tmp_path, "models:/tiny-gpt2-dir@candidate", {"policy": str(tmp_path / "p.yaml")})))
    assert result.checks["sae"].status == "completed", result.checks["sae"].error
    prov = result.checks["sae"].details["provenance"]["model"]
    assert prov["kind"] == "local_dir" and len(prov["weights_sha256"]) == 64
    gap = next(f for f in result.findings if f.metric == "sae.bias.gender.gap")
    assert "EU-AI-Act Art. 55(1)(a)" in gap.references  # general-purpose model
    assert result.metrics["sae.quality.passed"] == 0.0  # a random SAE fails the gate ...
    ablation = next(f for f in result.findings if f.metric == "sae.ablation.gender.effect")
    assert "inconclusive" in ablation.title and "quality gate" in ablation.detail  # ... and says so


@pytest.mark.parametrize("change, needle", [
    (lambda d: d.update(label="text"), "no label"),
    (lambda d: d.update(protected=["religion"]), "religion"),
    (lambda d: d.update(path=str(ROOT / "data" / "german_credit.csv.gz")), "'text' column"),
])
def test_language_model_spec_errors_are_input_errors(change, needle, lm_engine, tmp_path):
    from audit.errors import AuditInputError
    spec = _spec(tmp_path, "models:/planted-bias-lm@candidate")
    data = yaml.safe_load(spec.read_text())
    change(data["dataset"])
    spec.write_text(yaml.safe_dump(data))
    with pytest.raises(AuditInputError, match=re.escape(needle)):
        lm_engine.prepare(spec)


def test_held_out_text_formats(tmp_path):
    from audit.errors import AuditInputError
    from audit.lm_io import read_text_dataset, text_frame
    (tmp_path / "a.jsonl").write_text('{"text": "The nurse said that she went home."}\n\n{"text": "Mary plays chess."}\n')
    (tmp_path / "b.txt").write_text("First document.\nStill first.\n\nSecond document.\n")
    (tmp_path / "c.jsonl").write_text('{"body": "no text field"}\n')
    assert text_frame(read_text_dataset(tmp_path / "a.jsonl"), "a")["text"].tolist() == [
        "The nurse said that she went home.", "Mary plays chess."]
    assert read_text_dataset(tmp_path / "b.txt")["text"].tolist() == ["First document.\nStill first.", "Second document."]
    with pytest.raises(AuditInputError, match="line 1"):
        read_text_dataset(tmp_path / "c.jsonl")


# --- temporary files of a loaded model ------------------------------------------------------------

def test_loading_a_registered_lm_and_sae_leaves_no_temp_dirs(lm_models, registry, tmp_path, monkeypatch):
    """The downloaded model and SAE folders live as long as the model's handle, then go; what was loaded
    from them stays usable (weights and tokenizer are in memory, nothing is read lazily afterwards)."""
    import gc
    import tempfile
    import torch
    from audit.lm_io import attach_sae
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    ref = registry.resolve(lm_models["planted-bias-lm"])
    model = registry.load(ref)
    attach_sae(registry, ref, model)
    assert sorted(p.name.split("-")[1] for p in tmp.glob("aiaudit-*")) == ["model", "sae"]
    lm, sae = model.estimator.load(), model.estimator.load_sae()
    del model
    gc.collect()
    assert not list(tmp.glob("aiaudit-*"))
    with torch.no_grad():
        _, cache = lm.model.run_with_cache(lm.model.to_tokens("The nurse said that she"),
                                           names_filter=[sae.cfg.metadata.hook_name])
        acts = sae.encode(cache[sae.cfg.metadata.hook_name])
    assert acts.shape[-1] == sae.cfg.d_sae and torch.isfinite(acts).all()
    # closing the handle removes them at once, without waiting for garbage collection
    with registry.load(ref).estimator as handle:
        assert handle.model_dir.is_dir()
    assert not handle.model_dir.exists() and not list(tmp.glob("aiaudit-*"))


def test_offline_mode_holds_even_if_the_hub_client_was_imported_first(monkeypatch):
    """huggingface_hub reads HF_HUB_OFFLINE once, at import: `offline()` must set the live flag too,
    so `from_pretrained` on a cached model or SAE release can never reach the network."""
    import huggingface_hub
    from huggingface_hub import constants

    from interpret.lm.env import offline
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert not huggingface_hub.is_offline_mode()
    offline()
    assert huggingface_hub.is_offline_mode()


def test_cached_hub_model_and_sae_release_load_from_their_local_files_without_a_socket(tmp_path, monkeypatch):
    """A model in the Hugging Face cache and an SAELens release in it load from the cached
    snapshot folders themselves: with every socket refused, and equal to the model they hold."""
    import socket

    import torch
    from sae_lens import StandardSAE, StandardSAEConfig
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from interpret.lm.loading import load_lm, load_sae, official_hf_name, resolve_model_files, resolve_sae_files
    monkeypatch.setenv("HF_HOME", str(tmp_path))

    def snapshot(repo: str) -> Path:
        repo_dir = tmp_path / "hub" / f"models--{repo.replace('/', '--')}"
        (repo_dir / "refs").mkdir(parents=True)
        (repo_dir / "refs" / "main").write_text("c0ffee")
        return repo_dir / "snapshots" / "c0ffee"

    words = ["<unk>", "the", "doctor", "nurse", "said", "he", "she", "was", "kind"]
    raw = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>")
    hf = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, n_positions=32, n_ctx=32,
                                    vocab_size=len(words))).eval()
    model_dir = snapshot(official_hf_name("gpt2"))
    hf.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory
    release = get_pretrained_saes_directory()["gpt2-small-res-jb"]
    sae_dir = snapshot(release.repo_id) / release.saes_map["blocks.0.hook_resid_pre"]
    StandardSAE(StandardSAEConfig(d_in=32, d_sae=64)).save_model(sae_dir)

    def refuse(*args, **kwargs):
        raise AssertionError("a socket was opened")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    manifest = {"kind": "hf_cache", "name": "gpt2"}
    lm = load_lm(manifest, tmp_path)
    assert lm.files == resolve_model_files(manifest, tmp_path) and lm.model.cfg.n_layers == 1
    ids = torch.tensor([[1, 2, 4, 5, 7, 8]])
    with torch.no_grad():   # TransformerLens folds and centres weights: equal up to a constant per position
        assert torch.allclose(lm.model(ids).log_softmax(-1), hf(ids).logits.log_softmax(-1), atol=1e-4)
    sae = load_sae(resolve_sae_files({"release": "gpt2-small-res-jb", "sae_id": "blocks.0.hook_resid_pre"}))
    assert sae.cfg.d_in == lm.model.cfg.d_model and sae.cfg.d_sae == 64
