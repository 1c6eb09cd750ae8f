"""Shared fixtures: one real MLflow store (SQLite) per test session, with the demo models registered."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # torch after sklearn/xgboost OpenMP: avoid spin-waiting
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


@pytest.fixture(scope="session")
def aiaudit_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("aiaudit-home")
    os.environ["AIAUDIT_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    return home


@pytest.fixture(scope="session")
def settings(aiaudit_home):
    from audit.config import Settings
    return Settings.from_env(aiaudit_home).ensure()


@pytest.fixture(scope="session")
def registry(settings):
    from audit.registry import Registry
    return Registry(settings)


@pytest.fixture(scope="session")
def demo_models(registry) -> dict[str, str]:
    """The three demo models, trained on the bundled data and registered with alias `candidate`."""
    from audit.demo import register_demo_models
    return by_name(register_demo_models(registry, progress=lambda m: None))


@pytest.fixture(scope="session")
def engine(settings, demo_models):
    from audit.engine import AuditEngine
    return AuditEngine(settings)


@pytest.fixture(scope="session")
def credit_audit(engine):
    """The example credit audit, run once for every test that reads its result."""
    return run_example(engine, "credit")


@pytest.fixture(scope="session")
def adult_audit(engine):
    return run_example(engine, "adult")


def by_name(uris: list[str]) -> dict[str, str]:
    """Registered model URIs (`models:/<name>@candidate`) keyed by model name."""
    return {uri.split("/")[1]: uri for uri in uris}


def run_example(engine, example: str, spec: str = "audit.yaml"):
    """Audit one of the shipped example specs, examples/<example>/<spec>."""
    return engine.run(engine.prepare(ROOT / "examples" / example / spec))


def run_synthetic_audit(settings, registry, tmp: Path, name: str, model, train, data, check: str,
                        protected: list[str], policy_update: dict | None = None):
    """Register `model` (fitted on `train`) as `<name>@candidate` and audit `data` (with `label` and
    `split` columns) with `check` alone under the default policy without domain overrides, plus
    `policy_update` merged into that check's settings.  Returns (result, audit_dir)."""
    from audit.engine import AuditEngine
    from audit.model_io import Lineage
    ref = registry.register(model, train, name, Lineage(name="synthetic", rows=len(train)))
    registry.set_alias(ref.name, ref.version, "candidate")
    data.to_csv(tmp / "data.csv", index=False)
    policy = yaml.safe_load((ROOT / "policies/eu-ai-act-default.yaml").read_text())
    policy["domains"] = {}
    if policy_update:
        policy["checks"][check].update(policy_update)
    (tmp / "policy.yaml").write_text(yaml.safe_dump(policy))
    spec = {"name": name, "model": f"models:/{name}@candidate",
            "dataset": {"path": "data.csv", "label": "label", "positive_label": 1, "split_column": "split",
                        "protected": protected},
            "policy": "policy.yaml", "checks": [check], "seed": 0}
    (tmp / "audit.yaml").write_text(yaml.safe_dump(spec))
    engine = AuditEngine(settings)
    result = engine.run(engine.prepare(tmp / "audit.yaml"))
    return result, engine.audit_dir(result.audit_id)


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the real `aiaudit` console script in a subprocess."""
    exe = Path(sys.executable).parent / "aiaudit"
    return subprocess.run([str(exe), *args], cwd=cwd or ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def copy_example(name: str, dest: Path) -> Path:
    """Copy an example spec next to a copy of the data it points at, for tests that edit specs."""
    src = ROOT / "examples" / name
    shutil.copytree(src, dest / "examples" / name)
    shutil.copytree(ROOT / "examples" / "cards", dest / "examples" / "cards", dirs_exist_ok=True)
    (dest / "data").mkdir(exist_ok=True)
    for f in (ROOT / "data").glob("*.csv.gz"):
        shutil.copy(f, dest / "data" / f.name)
    return dest / "examples" / name / "audit.yaml"


def example_for_checks(name: str, dest: Path, checks: list[str], keep_card: bool = True) -> Path:
    """copy_example with the spec restricted to `checks`; keep_card=False drops the system card
    (a card adds the checks its risk tier requires)."""
    spec_path = copy_example(name, dest)
    spec = yaml.safe_load(spec_path.read_text())
    spec["checks"] = checks
    if not keep_card:
        spec.pop("system_card", None)
    spec_path.write_text(yaml.safe_dump(spec))
    return spec_path
