"""Shared fixtures: one real MLflow store (SQLite) per test session, with the demo models registered."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
    uris = register_demo_models(registry, progress=lambda m: None)
    return {uri.split("/")[1]: uri for uri in uris}


@pytest.fixture(scope="session")
def engine(settings, demo_models):
    from audit.engine import AuditEngine
    return AuditEngine(settings)


@pytest.fixture(scope="session")
def credit_audit(engine):
    """The example credit audit, run once for every test that reads its result."""
    return engine.run(engine.prepare(ROOT / "examples" / "credit" / "audit.yaml"))


@pytest.fixture(scope="session")
def adult_audit(engine):
    return engine.run(engine.prepare(ROOT / "examples" / "adult" / "audit.yaml"))


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
