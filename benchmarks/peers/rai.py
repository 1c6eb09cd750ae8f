"""The Responsible AI Toolbox peer from aiaudit's side: its virtual environment and a long-lived
`rai_job.py` process that computes one variant per request (so its timings can alternate with
aiaudit's under the same machine load).  Nothing here imports responsibleai."""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / "benchmarks" / ".venvs" / "rai"
JOB = Path(__file__).resolve().parent / "rai_job.py"
REQUIREMENTS = ["responsibleai==0.36.*", "scipy<1.15"]  # without the scipy pin responsibleai does not import


def peer_env() -> dict[str, str]:
    """The peer must not see aiaudit's packages: this repo's own `interpret` package would shadow
    interpret-core, so no PYTHONPATH, no user site, and the peer runs from a temporary directory."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "PYTHONNOUSERSITE": "1", "MPLBACKEND": "Agg"}


def ensure_venv(log: Callable[[str], None]) -> Path:
    """benchmarks/.venvs/rai with responsibleai and aiaudit's xgboost version; created on first use."""
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "import responsibleai, xgboost"]
    with tempfile.TemporaryDirectory() as cwd:
        if python.exists() and subprocess.run(probe, capture_output=True, cwd=cwd, env=peer_env()).returncode == 0:
            return python
        log(f"rai: creating {VENV.relative_to(ROOT)} (pip install {' '.join(REQUIREMENTS)}); this takes minutes")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, capture_output=True, timeout=600)
        try:
            xgb = f"xgboost=={metadata.version('xgboost')}"
        except metadata.PackageNotFoundError:
            xgb = "xgboost"
        proc = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS, xgb],
                              capture_output=True, text=True, timeout=2400, cwd=cwd, env=peer_env())
        if proc.returncode != 0:
            tail = [line for line in proc.stderr.strip().splitlines() if not line.startswith("WARNING")]
            raise RuntimeError("pip install failed: " + (tail or ["?"])[-1][:300])
        check = subprocess.run(probe, capture_output=True, text=True, cwd=cwd, env=peer_env())
        if check.returncode != 0:
            raise RuntimeError("responsibleai does not import: " + (check.stderr.strip().splitlines() or ["?"])[-1][:300])
    return python


class RaiServer:
    """`rai_job.py` in serve mode: trains the model once, then one `compute()` per request."""

    def __init__(self, python: Path, data: Path, workdir: Path, timeout: float) -> None:
        cfg = workdir / "rai.json"
        cfg.write_text(json.dumps({"data": str(data), "threads": 2, "serve": True}))
        self.stderr = workdir / "rai.stderr.log"
        self._err = open(self.stderr, "w")
        self.proc = subprocess.Popen([str(python), str(JOB), str(cfg)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, text=True, bufsize=1, cwd=workdir, env=peer_env())
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        try:
            self.head = self._expect("RAI_READY ", timeout)
        except BaseException:
            self.close()
            raise

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _expect(self, prefix: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise TimeoutError(f"responsibleai gave no {prefix.strip()} within {timeout:.0f} s") from None
            if line is None:
                tail = [ln for ln in self.stderr.read_text(errors="replace").splitlines() if ln.strip()]
                raise RuntimeError("rai_job ended: " + (tail[-1][:400] if tail else "no output"))
            if line.startswith(prefix):
                return json.loads(line[len(prefix):])

    def compute(self, variant: str, timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(variant + "\n")
        self.proc.stdin.flush()
        return self._expect("RAI_RESULT ", timeout)

    def close(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        self._err.close()
