"""Evidence plots: feature activation histograms and the steering dose-response curve (PNG)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..plots import DPI, PNG


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def feature_histograms(path: Path, features: list[dict[str, Any]], heldout_values: dict[int, np.ndarray],
                       prompt_max: dict[int, tuple[np.ndarray, np.ndarray]], group_names: tuple[str, str],
                       attribute: str) -> Path:
    """One panel per feature: activations on held-out text (grey) and per-prompt maxima by group."""
    plt = _plt()
    n = max(1, len(features))
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, feat in zip(axes.flat, features):
        f = feat["index"]
        vals = heldout_values.get(f, np.zeros(0))
        g1, g2 = prompt_max.get(f, (np.zeros(0), np.zeros(0)))
        top = max([1e-6, *(float(v.max()) for v in (vals, g1, g2) if v.size)])
        bins = np.linspace(0, top, 30)
        if vals.size:
            ax.hist(vals, bins=bins, density=True, color="0.7", label=f"held-out text (n={vals.size})")
        ax.hist(g1, bins=bins, density=True, alpha=0.6, color="tab:red", label=group_names[0][:28])
        ax.hist(g2, bins=bins, density=True, alpha=0.6, color="tab:blue", label=group_names[1][:28])
        ax.set_title(f"feature {f} ({feat.get('selected_by', '')})", fontsize=9, y=1.0)
        ax.set_xlabel("activation (non-zero)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(f"SAE feature activations, attribute '{attribute}'", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, **PNG)
    plt.close(fig)
    return path


def dose_response(path: Path, rows: list[dict[str, Any]], feature: int, attribute: str,
                  group_names: tuple[str, str], pair: str) -> Path:
    plt = _plt()
    a = np.array([r["alpha"] for r in rows])
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    for key, name, colour in (("mean_delta_group1", group_names[0], "tab:red"),
                              ("mean_delta_group2", group_names[1], "tab:blue"),
                              ("gap", "gap (group 1 − group 2)", "black")):
        y = np.array([r[key] for r in rows])
        ax.plot(a, y, marker="o", color=colour, label=name[:40])
        if key == "gap":
            lo = np.array([r["gap_ci_low"] for r in rows])
            hi = np.array([r["gap_ci_high"] for r in rows])
            ax.fill_between(a, lo, hi, color="0.8", alpha=0.6, label="95% CI of the gap")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xlabel(f"steering strength α (× mean activation of feature {feature})")
    ax.set_ylabel(f"log-odds {pair}")
    ax.set_title(f"Steering along feature {feature}: '{attribute}'", fontsize=10, y=1.0)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, **PNG)
    plt.close(fig)
    return path
