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
from contextlib import contextmanager

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
    if _PINNED:  # inside deterministic_torch(): its thread count holds until it exits
        return
    n = threads or default_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


_PINNED: list[int] = []
TRAINING_THREADS = 1
"""Intra-op threads while training the bundled LMs and SAEs. Fixed (not the machine's core count): with
2 threads the reduction order, and so the trained weights, differ from a 1-thread run, and on this
CPU a 1-thread step was no slower for these small models. With 1 thread nothing can spin (see above)."""


@contextmanager
def deterministic_torch(threads: int = TRAINING_THREADS):
    """Deterministic kernels and a fixed thread count for the duration of a training run, restored after.

    Measured on 2 cores (torch 2.13 CPU): 2 threads without deterministic algorithms gave a different
    model on every run of the same seeded configuration; with `use_deterministic_algorithms(True)` or
    with 1 thread the weights were bit-identical run to run. Uninitialised-memory filling (a debugging
    aid the flag turns on) is switched off: it costs time and changes no result. Yields the settings
    for the training record.
    """
    import torch
    import torch.utils.deterministic as tud

    saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(), tud.fill_uninitialized_memory)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    tud.fill_uninitialized_memory = False
    _PINNED.append(threads)
    try:
        yield {"threads": threads, "deterministic_algorithms": True, "torch": torch.__version__,
               "cpu_capability": _cpu_capability()}
    finally:
        _PINNED.pop()
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1], warn_only=saved[2])
        tud.fill_uninitialized_memory = saved[3]


def _cpu_capability() -> str | None:
    """The SIMD level torch dispatches to (e.g. AVX2, AVX512): kernels and so last bits can differ across it."""
    import torch
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # older torch builds
        return None
