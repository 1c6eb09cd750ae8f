"""Offline, CPU-bound settings for every library that could reach the network (HF Hub, wandb).

OMP_WAIT_POLICY=PASSIVE matters on a shared machine: with the default (active) policy, OpenMP
threads spin at every barrier. Measured here on 2 cores for one training step of the bundled LM:
at load average 2, 2 threads took 0.96 s wall / 1.08 s CPU with active waiting and 0.19 s / 0.30 s
with passive waiting (1 thread: 0.29 s / 0.29 s); at load 12 active waiting was ~15x slower still.
The variable only counts if set before the first OpenMP runtime is loaded (torch, scikit-learn,
XGBoost and LightGBM each bring one). When a runtime was already loaded without it, torch is
limited to one thread, which cannot spin.
"""
from __future__ import annotations

import os

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "disabled",
               "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false"}


def _openmp_loaded() -> bool:
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            return any("libgomp" in line or "libiomp" in line for line in f)
    except OSError:  # not Linux: assume the worst only if torch is already imported
        import sys
        return "torch" in sys.modules


_SPINNING = os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE" and _openmp_loaded()
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def default_threads() -> int:
    """`AIAUDIT_TORCH_THREADS` if set; else 2, or 1 when an OpenMP runtime already spins."""
    if os.environ.get("AIAUDIT_TORCH_THREADS"):
        return max(1, int(os.environ["AIAUDIT_TORCH_THREADS"]))
    return 1 if _SPINNING else 2


def offline(threads: int | None = None) -> None:
    """Set before transformers / sae_lens are imported; safe to call repeatedly."""
    os.environ.update(OFFLINE_ENV)
    import sys
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None:  # imported earlier: it read its offline flag from the environment then
        hub.HF_HUB_OFFLINE = True
    import torch
    n = threads or default_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
