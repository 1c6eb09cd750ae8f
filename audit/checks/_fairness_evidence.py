"""Evidence for the fairness check: per-group tables (CSV + JSON, small cells suppressed) and PNG charts."""
from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from ..csvsafe import write_csv
from ..metrics import fairness as fm
from ..metrics import fairness_inference as fi

if TYPE_CHECKING:  # pragma: no cover
    from .base import AuditContext
    from .fairness import Analysis, FairnessConfig

NAME = "fairness"
MAX_CHART_GROUPS = 30
RATE_TITLES = {"selection_rate": "Selection rate", "tpr": "True positive rate", "fpr": "False positive rate",
               "fnr": "False negative rate", "precision": "Precision", "accuracy": "Accuracy", "base_rate": "Base rate",
               "mean_prediction": "Mean prediction", "mae": "Mean absolute error"}


def _num(x: Any) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80] or "attribute"


def band_status(lo: float, hi: float, r: float) -> str:
    """Ratio interval vs the symmetric band [r, 1/r]: pass inside, fail wholly outside, warn straddling."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "warn"
    if lo >= r and hi <= 1 / r:
        return "pass"
    return "fail" if hi < r or lo > 1 / r else "warn"


def group_rows(an: "Analysis", obs, ci, classes, positions, cfg: "FairnessConfig") -> list[dict]:
    rows = []
    for pos in positions:
        cls = classes[pos]
        for i, g in enumerate(an.groups):
            row: dict[str, Any] = {"group": g, "n": int(an.n[i]), "reference": i == an.ref,
                                   "suppressed": not bool(an.eligible[i])}
            if len(positions) > 1:
                row = {"class": cls, **row}
            for c in ("positives", "negatives", "predicted_positives"):
                v = obs[(cls, f"group.{c}")][i]
                row[c] = int(v) if an.eligible[i] and np.isfinite(v) else None
            for r in fm.RATES:
                ok = an.eligible[i]
                row[r] = _num(obs[(cls, f"group.{r}")][i]) if ok else None
                row[f"{r}_ci_low"] = _num(ci[(cls, f"group.{r}")][0][i]) if ok else None
                row[f"{r}_ci_high"] = _num(ci[(cls, f"group.{r}")][1][i]) if ok else None
            rows.append(row)
    return rows


def reference_rows(an: "Analysis", obs, ci, classes, positions, cfg: "FairnessConfig") -> list[dict]:
    rows = []
    for pos in positions:
        cls = classes[pos]
        for i, g in enumerate(an.groups):
            if not an.eligible[i] or i == an.ref:
                continue
            for r in ("selection_rate", "tpr", "fpr", "precision"):
                d, q = obs[(cls, f"ref_difference.{r}")][i], obs[(cls, f"ref_ratio.{r}")][i]
                if not (np.isfinite(d) or np.isfinite(q)):
                    continue
                dlo, dhi = ci[(cls, f"ref_difference.{r}")][0][i], ci[(cls, f"ref_difference.{r}")][1][i]
                qlo, qhi = ci[(cls, f"ref_ratio.{r}")][0][i], ci[(cls, f"ref_ratio.{r}")][1][i]
                thr = cfg.difference_threshold
                dstat = ("pass" if max(abs(dlo), abs(dhi)) <= thr else
                         "fail" if (dlo > thr or dhi < -thr) else "warn") if np.isfinite(dlo) and np.isfinite(dhi) else "warn"
                rows.append({**({"class": cls} if len(positions) > 1 else {}), "group": g,
                             "reference": an.groups[an.ref], "rate": r, "difference": _num(d), "difference_ci_low": _num(dlo),
                             "difference_ci_high": _num(dhi), "difference_status": dstat, "ratio": _num(q),
                             "ratio_ci_low": _num(qlo), "ratio_ci_high": _num(qhi),
                             "ratio_status": band_status(qlo, qhi, cfg.ratio_threshold), "signed": True,
                             "significant": bool(dlo > 0 or dhi < 0 or qlo > 1 or qhi < 1)})
    return rows


def regression_rows(an: "Analysis", obs, ci, cfg: "FairnessConfig") -> list[dict]:
    rows = []
    for i, g in enumerate(an.groups):
        ok = bool(an.eligible[i])
        row: dict[str, Any] = {"group": g, "n": int(an.n[i]), "reference": i == an.ref, "suppressed": not ok}
        for m in ("mean_prediction", "mae"):
            row[m] = _num(obs[f"group.{m}"][i]) if ok else None
            row[f"{m}_ci_low"] = _num(ci[f"group.{m}"][0][i]) if ok else None
            row[f"{m}_ci_high"] = _num(ci[f"group.{m}"][1][i]) if ok else None
        rows.append(row)
    return rows


def write_tables(ctx: "AuditContext", reports: list[dict], cfg: "FairnessConfig") -> dict[str, str]:
    """One per-group table for all attributes; groups below the minimum show n as '<min' and no metrics."""
    rows = []
    for rep in reports:
        for r in rep["groups"]:
            row = {"attribute": rep["attribute"], **r}
            if r["suppressed"]:
                row["n"] = f"<{cfg.min_group_size}"
            rows.append(row)
    csv_path, csv_rel = ctx.evidence_path(NAME, "group_metrics.csv")
    json_path, json_rel = ctx.evidence_path(NAME, "group_metrics.json")
    write_csv(csv_path, rows)
    json_path.write_text(json.dumps({"min_group_size": cfg.min_group_size, "confidence": cfg.confidence,
                                     "interval": fi.CI_METHODS["rate"], "rows": rows}, indent=2))
    return {"csv": csv_rel, "json": json_rel}


def _plot(ctx: "AuditContext", an: "Analysis", panels: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
          cfg: "FairnessConfig", extra_title: str = "") -> str | None:
    """The per-group chart, saved as data (`audit.figures`); small groups are marked, not drawn."""
    if not panels:
        return None
    order = np.argsort(-an.n)[:MAX_CHART_GROUPS]
    return ctx.figure(NAME, _slug(an.name), "fairness.groups", attribute=an.name, groups=[str(an.groups[i]) for i in order],
                      n=[int(an.n[i]) for i in order], eligible=[bool(an.eligible[i]) for i in order],
                      reference=[bool(i == an.ref) for i in order],
                      panels=[{"title": t, "value": v[order], "ci_low": lo[order], "ci_high": hi[order]}
                              for t, v, lo, hi in panels],
                      min_group_size=cfg.min_group_size, confidence=cfg.confidence, extra_title=extra_title)


def draw_groups(path, *, attribute: str, groups: list[str], n: list[int], eligible: list[bool], reference: list[bool],
                panels: list[dict], min_group_size: int, confidence: float, extra_title: str = "") -> None:
    """Bars per group with CI error bars; group sizes under the labels."""
    from matplotlib.figure import Figure

    from interpret.plots import PNG

    ok = np.array(eligible, dtype=bool)
    labels = [f"{g}\nn={k:,}" if e else f"{g}\nn<{min_group_size}" for g, k, e in zip(groups, n, eligible)]
    x = np.arange(len(groups))
    rotated = len(groups) > 6
    fig = Figure(figsize=(max(6.0, 0.9 * len(groups) + 2), 2.1 * len(panels) + 0.8))
    # margins before the axes exist: adjusting them afterwards re-lays out every artist
    fig.subplots_adjust(left=0.08, right=0.98, top=1 - 0.95 / fig.get_figheight(),
                        bottom=(1.1 if rotated else 0.6) / fig.get_figheight(), hspace=0.45)
    axes = fig.subplots(len(panels), 1, squeeze=False, sharex=True)  # group labels once, under the last panel
    for ax, panel in zip(axes[:, 0], panels):
        v, lo, hi = (np.asarray(panel[k], dtype=float) for k in ("value", "ci_low", "ci_high"))
        vals = np.where(ok, v, np.nan)
        err = np.vstack([vals - lo, hi - vals])
        err = np.where(np.isfinite(err), np.clip(err, 0, None), 0)
        colors = ["#1f4e79" if r else "#5b9bd5" for r in reference]
        ax.bar(x, np.nan_to_num(vals), yerr=err, color=colors, capsize=3, ecolor="#333333")
        for xi in x[~ok]:
            ax.text(xi, 0, "insufficient\ndata", ha="center", va="bottom", fontsize=7, color="#a00000")
        ax.set_title(panel["title"], fontsize=10, y=1.0)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[:-1, 0]:
        ax.xaxis.set_visible(False)  # no tick objects to build for labels that are not shown
    axes[-1, 0].set_xticks(x, labels, fontsize=7, rotation=30 if rotated else 0, ha="right" if rotated else "center")
    fig.suptitle(f"{attribute}{extra_title}\nper-group estimates, {confidence:.0%} intervals; "
                 f"dark bar = reference group", fontsize=9)
    fig.savefig(path, dpi=100, **PNG)


def chart_classification(ctx, an, obs, ci, classes, positions, labelled, cfg) -> str | None:
    if len(positions) == 1:
        cls = classes[positions[0]]
        rates = ("selection_rate", "tpr", "fpr", "precision") if labelled else ("selection_rate",)
        panels = [(RATE_TITLES[r], obs[(cls, f"group.{r}")], *ci[(cls, f"group.{r}")]) for r in rates]
        return _plot(ctx, an, panels, cfg, f" (positive class {cls})")
    panels = [(f"Selection rate of class {classes[p]}", obs[(classes[p], "group.selection_rate")],
               *ci[(classes[p], "group.selection_rate")]) for p in positions[:6]]
    return _plot(ctx, an, panels, cfg, " (one-vs-rest)")


def chart_regression(ctx, an, obs, ci, cfg) -> str | None:
    panels = [(RATE_TITLES[m], obs[f"group.{m}"], *ci[f"group.{m}"]) for m in ("mean_prediction", "mae")
              if np.isfinite(obs[f"group.{m}"]).any()]
    return _plot(ctx, an, panels, cfg)
