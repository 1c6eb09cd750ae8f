"""Turning an interval and a declared threshold into a finding status."""
from __future__ import annotations

import numpy as np


def interval_status(ci: tuple[float, float], threshold: float, higher_is_better: bool) -> str:
    """`fail` only when the whole interval is on the wrong side, `warn` when it straddles."""
    lo, hi = ci
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "warn"
    if higher_is_better:
        return "pass" if lo >= threshold else ("fail" if hi < threshold else "warn")
    return "pass" if hi <= threshold else ("fail" if lo > threshold else "warn")
