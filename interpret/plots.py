"""Evidence figures (PNG, matplotlib Agg): global bar, beeswarm, dependence, waterfall, per-group and deletion.

Each draws into `path`: a file path or a binary buffer."""
from __future__ import annotations

from pathlib import Path
from typing import IO, Any, Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

DPI = 110
# zlib level 1 instead of 6: a quarter of the PNG encoding time for files about 15% larger
PNG = {"format": "png", "pil_kwargs": {"compress_level": 1}}
Target = Path | IO[bytes]


def label_inches(labels: Sequence[Any], fontsize: float) -> float:
    """Width the longest label needs, plus tick padding (an estimate: tight_layout costs a second draw)."""
    chars = max((len(str(lab)) for lab in labels), default=0)
    return 0.56 * fontsize / 72 * chars + 0.3


def fit_left(fig: Figure, labels: Sequence[Any], fontsize: float, *, top: float = 0.45, bottom: float = 0.55,
             **kw: float) -> None:
    """Margins in inches, the left one wide enough for `labels`."""
    w, h = fig.get_figwidth(), fig.get_figheight()
    fig.subplots_adjust(left=min(0.6, label_inches(labels, fontsize) / w), right=0.97, top=1 - top / h,
                        bottom=bottom / h, **kw)


def _save(fig: Figure, path: Target, tight: bool = True) -> Target:
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=DPI, **PNG)
    return path


def global_bar(table: Sequence[dict[str, Any]], path: Target, *, scale: str, max_display: int = 15) -> Target:
    rows = list(table)[:max_display][::-1]
    fig = Figure(figsize=(7, 0.35 * len(rows) + 1.4))
    fit_left(fig, [r["feature"] for r in rows], 10, bottom=0.6)
    ax = fig.subplots()
    y = np.arange(len(rows))
    vals, lo, hi = (np.array([r[k] for r in rows], dtype=float) for k in ("mean_abs", "ci_low", "ci_high"))
    err = np.nan_to_num(np.clip(np.array([vals - lo, hi - vals]), 0, None))  # a missing bound: no bar
    ax.barh(y, vals, xerr=err, color="#3b6ea8", ecolor="#333333", capsize=2)
    ax.set_yticks(y, [r["feature"] for r in rows])
    ax.set_xlabel(f"mean |SHAP| ({scale}), 95% bootstrap CI")
    ax.set_title("Global feature importance", y=1.0)
    return _save(fig, path, tight=False)


def group_bars(groups: dict[str, list[dict[str, Any]]], order: list[str], path: Target, *, attribute: str,
               scale: str, max_display: int = 10) -> Target:
    feats = order[:max_display][::-1]
    names = list(groups)
    fig = Figure(figsize=(7.5, 0.45 * len(feats) * max(1, len(names)) ** 0.5 + 1.6))
    ax = fig.subplots()
    height = 0.8 / max(len(names), 1)
    y = np.arange(len(feats))
    for i, g in enumerate(names):
        by = {r["feature"]: r for r in groups[g]}
        vals = np.array([by[f]["mean_abs"] if f in by else 0.0 for f in feats])
        ax.barh(y + i * height - 0.4 + height / 2, vals, height=height, label=str(g)[:30])
    ax.set_yticks(y, feats)
    ax.set_xlabel(f"mean |SHAP| ({scale})")
    ax.set_title(f"Feature importance by {attribute}", y=1.0)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def beeswarm(values: np.ndarray, data: np.ndarray, features: list[str], path: Target, *, max_display: int = 15) -> Target:
    import matplotlib.pyplot as plt
    import shap
    values, data = np.asarray(values, dtype=float), np.asarray(data, dtype=float)
    exp = shap.Explanation(values=values, base_values=np.zeros(len(values)), data=data, feature_names=features)
    shap.plots.beeswarm(exp, max_display=max_display, show=False, plot_size=(8, 0.4 * min(max_display, len(features)) + 1.5),
                        color_bar_label="feature value (categories: code)")
    fig = plt.gcf()
    fig.savefig(path, dpi=DPI, bbox_inches="tight", **PNG)
    plt.close(fig)
    return path


def dependence(feature: str, x: Sequence[Any], phi: np.ndarray, path: Target, *, categorical: bool, scale: str) -> Target:
    phi = np.asarray(phi, dtype=float)
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    if categorical:
        labels = np.asarray([str(v) for v in x], dtype=object)
        cats = sorted(set(labels), key=lambda c: -np.mean(phi[labels == c]))[:20]
        pos = {c: i for i, c in enumerate(cats)}
        keep = np.array([lab in pos for lab in labels])
        xs = np.array([pos[lab] for lab in labels[keep]]) + np.random.default_rng(0).uniform(-0.25, 0.25, keep.sum())
        ax.scatter(xs, phi[keep], s=6, alpha=0.5, color="#3b6ea8")
        ax.set_xticks(range(len(cats)), [c[:24] for c in cats], rotation=45, ha="right", fontsize=7)
    else:
        ax.scatter(np.asarray(x, dtype=float), phi, s=6, alpha=0.5, color="#3b6ea8")
    ax.axhline(0, color="#999999", lw=0.8)
    ax.set_xlabel(feature)
    ax.set_ylabel(f"SHAP value ({scale})")
    ax.set_title(f"Dependence: {feature}", y=1.0)
    return _save(fig, path)


def waterfall(values: np.ndarray, base: float, shown: Sequence[str], features: list[str], path: Target, *,
              title: str, scale: str = "", max_display: int = 10) -> Target:
    """SHAP waterfall: from the expected output E[f(x)] to f(x), one bar per feature (largest on top)."""
    values = np.asarray(values, dtype=float)
    order = list(np.argsort(-np.abs(values), kind="stable"))
    head = order[:max_display - 1] if len(order) > max_display else order
    items = [(f"{features[i]} = {str(shown[i])[:28]}", values[i]) for i in head]
    rest = [i for i in order if i not in head]
    if rest:
        items.append((f"{len(rest)} other features", float(values[rest].sum())))
    items = items[::-1]  # bottom (smallest) to top (largest)
    height = 0.42 * len(items) + 1.6
    fig = Figure(figsize=(8, height))
    fig.subplots_adjust(left=0.34, right=0.97, top=1 - 0.45 / height, bottom=0.75 / height)
    ax = fig.subplots()
    cum = float(base) + np.concatenate([[0.0], np.cumsum([v for _, v in items])])
    lo, hi = float(cum.min()), float(cum.max())
    pad = 0.18 * max(hi - lo, 1e-9)
    ax.set_xlim(lo - pad, hi + pad)
    left = float(base)
    for y, (label, v) in enumerate(items):
        ax.barh(y, v, left=left, color="#d62728" if v > 0 else "#1f77b4", height=0.7)
        ax.text(left + v + (0.01 if v >= 0 else -0.01) * (hi - lo), y, f"{v:+.3g}",
                va="center", ha="left" if v >= 0 else "right", fontsize=7)
        left += v
    ax.axvline(float(base), color="#777777", ls="--", lw=0.8)
    ax.axvline(left, color="#333333", lw=0.8)
    ax.set_yticks(range(len(items)), [lab for lab, _ in items], fontsize=8)
    ax.set_xlabel(f"E[f(x)] = {float(base):.3g}  →  f(x) = {left:.3g}" + (f"  ({scale})" if scale else ""))
    ax.set_title(title, fontsize=9, y=1.0)
    return _save(fig, path, tight=False)


def deletion(result: dict[str, Any], path: Target, *, label: str = "SHAP order") -> Target:
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    k = np.arange(1, result["steps"] + 1)
    ax.plot(k, result["curve"], marker="o", label=f"{label} (AUC {result['auc']:.3g})")
    ax.plot(k, result["random_curve"], marker="s", label=f"random order (AUC {result['random_auc']:.3g})")
    ax.set_xlabel("features replaced by background values")
    ax.set_ylabel("|f(x) - f(x without top-k)|")
    ax.set_title("Deletion faithfulness", y=1.0)
    ax.legend(fontsize=8)
    return _save(fig, path)
