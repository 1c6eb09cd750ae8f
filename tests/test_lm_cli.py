"""`aiaudit register-lm`: register a language model from a local Hugging Face folder or a bundled LM folder,
with its SAE, through the real console script and the session's MLflow store."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import ROOT, run_cli


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny_hf(tmp_path_factory) -> Path:
    """A one-layer GPT-2 with a character tokenizer, written with save_pretrained (nothing downloaded)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    from interpret.lm.tokenizer import build_char_tokenizer
    d = tmp_path_factory.mktemp("hf") / "tiny-gpt2"
    tok = build_char_tokenizer(d)
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=32, n_layer=1, n_head=2,
                               bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def tiny_sae(tmp_path_factory) -> Path:
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata
    d = tmp_path_factory.mktemp("sae") / "sae"
    TopKSAE(TopKSAEConfig(d_in=32, d_sae=64, k=4, metadata=SAEMetadata(
        hook_name="blocks.0.hook_resid_pre", context_size=64, prepend_bos=True))).save_model(str(d))
    return d


def _store(settings) -> tuple[str, list[str]]:
    """The MLflow database's digest and every artifact file: what a refused registration must leave alone."""
    db = settings.home / "mlflow.db"
    files = sorted(str(p.relative_to(settings.home)) for p in settings.home.rglob("*") if p.is_file())
    return (_sha256(db) if db.is_file() else ""), files


def test_register_lm_registers_a_hugging_face_folder_with_its_sae(registry, settings, tiny_hf, tiny_sae):
    from audit.lm_io import SAE_SHA_TAG, attach_sae
    from audit.registry import SHA_TAG
    proc = run_cli("register-lm", str(tiny_hf), "--name", "tiny-gpt2-cli", "--sae", str(tiny_sae),
                   "--alias", "candidate", "--json", env={"AIAUDIT_HOME": str(settings.home)})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    ref = registry.resolve("models:/tiny-gpt2-cli@candidate")
    assert (out["model"], out["version"], out["kind"]) == (ref.uri, ref.version, "local_dir")
    assert out["sha256"] == ref.tags[SHA_TAG] and len(out["sha256"]) == 64
    assert out["weights_sha256"] == _sha256(tiny_hf / "model.safetensors")
    assert out["sae_sha256"] == ref.tags[SAE_SHA_TAG] == _sha256(tiny_sae / "sae_weights.safetensors")
    run = registry.client.get_run(out["sae_run_id"])
    assert run.data.params["sae.hook"] == "blocks.0.hook_resid_pre" and run.data.params["sae.architecture"] == "topk"
    # the registered version loads back: manifest points at the folder, the model scores text, the SAE loads
    model = registry.load(ref)
    handle = model.estimator
    assert model.meta.sha256 == out["sha256"] and handle.manifest["path"] == str(tiny_hf.resolve())
    attach_sae(registry, ref, model)
    handle.check_available()
    ll = handle.score_texts(["The nurse said that she went home.", "qq"])
    assert np.isfinite(ll[0]) and ll[0] < 0
    assert handle.load_sae().cfg.d_in == handle.load().model.cfg.d_model == 32
    handle.close()


@pytest.mark.parametrize("make, needle", [
    (lambda tmp, hf: tmp / "no-such-model", "model directory not found"),
    (lambda tmp, hf: tmp, "not a language-model directory"),
    (lambda tmp, hf: hf / "config.json", "not a directory"),
])
def test_register_lm_bad_path_exits_2_naming_it_and_leaves_the_store_alone(make, needle, registry, settings, tiny_hf,
                                                                           tmp_path):
    registry.list_versions()  # the store exists before the refused call
    path = make(tmp_path, tiny_hf)
    before = _store(settings)
    proc = run_cli("register-lm", str(path), "--name", "refused-lm", env={"AIAUDIT_HOME": str(settings.home)})
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(path) in lines[0] and needle in lines[0], proc.stderr
    assert _store(settings) == before
    assert not [v for v in registry.list_versions() if v.name == "refused-lm"]


def test_register_lm_refuses_what_the_probes_cannot_use(tiny_hf, tiny_sae, tmp_path):
    from audit.errors import AuditInputError
    from audit.lm_io import inspect_lm_dir
    masked = tmp_path / "bert"
    shutil.copytree(tiny_hf, masked)
    (masked / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertForMaskedLM"]}))
    with pytest.raises(AuditInputError, match="not a causal language model"):
        inspect_lm_dir(masked, name="bert")
    no_tokenizer = tmp_path / "no-tok"
    shutil.copytree(tiny_hf, no_tokenizer)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        (no_tokenizer / f).unlink()
    with pytest.raises(AuditInputError, match="tokenizer") as err:
        inspect_lm_dir(no_tokenizer, name="x")
    assert str(no_tokenizer) in str(err.value)
    wide = tmp_path / "wide-sae"
    from sae_lens import TopKSAE, TopKSAEConfig
    TopKSAE(TopKSAEConfig(d_in=48, d_sae=64, k=4)).save_model(str(wide))
    with pytest.raises(AuditInputError, match="48-wide activations but the model's residual stream is 32 wide"):
        inspect_lm_dir(tiny_hf, name="x", sae_dir=wide)


def test_audit_refuses_weights_changed_after_registration(registry, settings, tiny_hf, tmp_path):
    from audit.engine import AuditEngine
    from audit.errors import IntegrityError
    from audit.lm_io import inspect_lm_dir, register_lm_source
    folder = tmp_path / "moving"
    shutil.copytree(tiny_hf, folder)
    register_lm_source(registry, "tiny-gpt2-moving", inspect_lm_dir(folder, name="tiny-gpt2-moving"), alias="candidate")
    spec = {"name": "moving", "model": "models:/tiny-gpt2-moving@candidate", "checks": ["sae"],
            "dataset": {"path": str(ROOT / "data" / "lm" / "heldout.csv"), "protected": ["gender"]}}
    (tmp_path / "audit.yaml").write_text(yaml.safe_dump(spec))
    engine = AuditEngine(settings)
    engine.prepare(tmp_path / "audit.yaml")  # unchanged: accepted
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="changed since") as err:
        engine.prepare(tmp_path / "audit.yaml")
    assert str(weights) in str(err.value)


def test_register_lm_copies_a_bundled_lm_folder(registry, settings, tmp_path):
    from dataclasses import replace
    from audit.errors import AuditInputError
    from audit.lm_io import inspect_lm_dir
    from audit.registry import SHA_TAG
    from interpret.lm.bundled import LMTrainConfig, ensure_lm
    lm_dir = ensure_lm(replace(LMTrainConfig(), name="tiny-bundled", steps=3, batch_rows=4, d_model=32, n_heads=2,
                               d_mlp=64), tmp_path / "cache")
    proc = run_cli("register-lm", str(lm_dir), "--name", "tiny-bundled-cli", "--alias", "candidate",
                   env={"AIAUDIT_HOME": str(settings.home)})
    assert proc.returncode == 0, proc.stderr
    ref = registry.resolve("models:/tiny-bundled-cli@candidate")
    first, *rest = proc.stdout.splitlines()
    fields = dict(line.split(None, 1) for line in rest)
    assert first == f"registered {ref.uri} (@candidate)"
    assert fields == {"kind": "bundled", "files": "copied into the registry", "sha256": ref.tags[SHA_TAG],
                      "weights_sha256": _sha256(lm_dir / "model.safetensors")}
    model = registry.load(ref)
    local = Path(model.info["local_dir"])
    assert _sha256(local / "model.safetensors") == _sha256(lm_dir / "model.safetensors")  # copied, then verified
    assert model.estimator.manifest["kind"] == "bundled"
    model.estimator.close()
    assert not local.exists()
    # a folder whose files no longer match its own lm.json is refused before anything is written
    tampered = tmp_path / "tampered"
    shutil.copytree(lm_dir, tampered)
    (tampered / "tokenizer" / "tokenizer.json").write_text("{}")
    with pytest.raises(AuditInputError, match="tokenizer/tokenizer.json is missing or does not match"):
        inspect_lm_dir(tampered, name="x")


def test_register_lm_help_explains_sources_and_options():
    from typer.testing import CliRunner
    from audit.cli import app
    from audit.commands import register_all
    register_all(app)
    shown = CliRunner().invoke(app, ["register-lm", "--help"])
    assert shown.exit_code == 0, shown.output
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", shown.output).split())  # undo rich's wrapping and boxes
    for needle in ("save_pretrained", "lm.json", "--name", "--sae", "--hook", "--alias", "--example", "--json",
                   "nothing is downloaded", "refuses weights that changed since"):
        assert needle in text, needle
