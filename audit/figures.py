"""Evidence figures as data.

A check saves what a figure shows -- its kind and its numbers -- as `<name>.figure.json`
evidence, hashed with the rest of the audit.  The PNG is drawn from that file when someone looks
at it (the review app, an exported document), so an audit does not spend its time in matplotlib,
and every figure can be redrawn from, and checked against, the evidence it cites.
"""
from __future__ import annotations

import importlib
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

SUFFIX = ".figure.json"

# kind -> (module, function); each function draws into `path` (a file path or a binary buffer)
KINDS: dict[str, tuple[str, str]] = {
    "shap.global_bar": ("interpret.plots", "global_bar"),
    "shap.group_bars": ("interpret.plots", "group_bars"),
    "shap.beeswarm": ("interpret.plots", "beeswarm"),
    "shap.dependence": ("interpret.plots", "dependence"),
    "shap.waterfall": ("interpret.plots", "waterfall"),
    "explanations.deletion": ("interpret.plots", "deletion"),
    "fairness.groups": ("audit.checks._fairness_evidence", "draw_groups"),
    "slices.weak": ("audit.checks.slices", "draw_weak_slices"),
    "robustness.flips": ("audit.checks.robustness", "draw_flip_rates"),
}


def is_figure(rel: Any) -> bool:
    return isinstance(rel, str) and rel.endswith(SUFFIX)


def _plain(v: Any) -> Any:
    """JSON-safe: arrays to lists, non-finite floats to None (drawn as missing)."""
    if isinstance(v, np.ndarray) and v.dtype.kind == "f":
        out = v.astype(object)
        out[~np.isfinite(v)] = None
        return out.tolist()
    if hasattr(v, "tolist") and not isinstance(v, (str, bytes)):
        v = v.tolist()
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def save(path: Path, kind: str, /, **data: Any) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown figure kind {kind!r}")
    path.write_text(json.dumps({"kind": kind, "data": _plain(data)}, ensure_ascii=False, separators=(",", ":")))


def draw(spec: bytes | str | dict[str, Any]) -> bytes:
    """The PNG of a figure spec (the bytes of a `.figure.json` file, or the parsed object)."""
    obj = spec if isinstance(spec, dict) else json.loads(spec)
    kind = obj.get("kind")
    if kind not in KINDS:
        raise ValueError(f"unknown figure kind {kind!r}")
    module, name = KINDS[kind]
    fn = getattr(importlib.import_module(module), name)
    buf = io.BytesIO()
    fn(**obj.get("data", {}), path=buf)
    return buf.getvalue()
