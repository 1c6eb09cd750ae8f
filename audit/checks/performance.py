"""Predictive performance with bootstrap confidence intervals (EU AI Act Art. 15(1), (3); 13(3)(b)(ii))."""
from __future__ import annotations

import numpy as np
from pydantic import Field

from risk.catalogue import citations

from ..findings import Finding, Severity, Status
from ..metrics.intervals import BIAS_CORRECTED, PERCENTILE, bootstrap_interval, interval_status
from ..metrics.score_histogram import ScoreHistogram
from ..metrics.performance import (BIASED_UPWARDS, HIGHER_IS_BETTER, binary_metrics, binary_replicates, calibration_cells,
                                   ece_if_calibrated, multiclass_metrics, regression_metrics, resample_counts)
from .base import AuditContext, Check, CheckConfig, CheckResult

REFERENCES = list(citations("performance").values())
TITLES = {"accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy", "roc_auc": "ROC AUC",
          "log_loss": "Log loss", "brier": "Brier score", "ece": "Expected calibration error",
          "mae": "Mean absolute error", "rmse": "Root mean squared error", "r2": "R²"}


class PerformanceConfig(CheckConfig):
    n_boot: int = Field(500, ge=50, le=20_000, description="Bootstrap replicates for the CIs.")
    confidence: float = Field(0.95, gt=0.5, lt=1)
    thresholds: dict[str, float] = Field(default_factory=dict, description="Provider-declared bounds, e.g. roc_auc: 0.7 (minimum) or ece: 0.05 (maximum).")
    severity: Severity = Severity.high


def _metric_fn(ctx: AuditContext):
    y = ctx.data.y
    preds = ctx.predictions
    task = ctx.model.task
    if task == "binary":
        yt, score, yp = ctx.y_true_bin(), preds.score, preds.y_pred_bin
        return lambda idx: binary_metrics(yt[idx], score[idx], yp[idx]), len(yt)
    if task == "multiclass":
        lookup = {str(c): i for i, c in enumerate(preds.classes)}
        y_idx = y.astype(str).map(lookup)
        if y_idx.isna().any():
            unknown = sorted(set(y.astype(str)) - set(lookup))[:3]
            raise ValueError(f"label values {unknown} are not model classes {list(lookup)}")
        y_idx = y_idx.to_numpy().astype(int)
        return lambda idx: multiclass_metrics(y_idx[idx], preds.proba[idx]), len(y_idx)
    yv = y.to_numpy(dtype=float)
    return lambda idx: regression_metrics(yv[idx], preds.y_pred[idx]), len(yv)


ROW_BOOTSTRAP_MAX = 100_000


def _histogram(ctx: AuditContext, cfg: PerformanceConfig) -> tuple[dict[str, float], dict[str, np.ndarray], int]:
    """Point estimates and replicates from a score histogram (multinomial over its cells).

    The histogram comes from the streamed population, or is built here for large in-memory data."""
    if ctx.population is not None:
        hist = ctx.population.partial.histogram
    else:
        hist = ScoreHistogram.from_arrays(ctx.y_true_bin(), ctx.predictions.score, ctx.predictions.y_pred_bin)
    point = hist.metrics()
    rng = ctx.rng("performance")
    flat = hist.counts.ravel()
    draws = rng.multinomial(hist.n, flat / flat.sum(), size=cfg.n_boot).reshape((cfg.n_boot,) + hist.counts.shape)
    samples = {k: v for k, v in hist.replicate(draws).items()}
    return point, samples, hist.n


def _in_memory(ctx: AuditContext, cfg: PerformanceConfig) -> tuple[dict[str, float], dict[str, np.ndarray], int]:
    fn, n = _metric_fn(ctx)
    point = fn(np.arange(n))
    rng = ctx.rng("performance")
    ctx.progress(f"performance: {cfg.n_boot} bootstrap replicates over {n} rows")
    if ctx.model.task == "binary":
        return point, _binary_row_bootstrap(ctx, cfg, rng, n), n
    draws = [fn(rng.integers(0, n, size=n)) for _ in range(cfg.n_boot)]
    return point, {k: np.array([d[k] for d in draws]) for k in point}, n


CELLS_PER_BLOCK = 4_000_000  # replicates x rows held at once


def _binary_row_bootstrap(ctx: AuditContext, cfg: PerformanceConfig, rng: np.random.Generator,
                          n: int) -> dict[str, np.ndarray]:
    """The row bootstrap as resample counts, in blocks of replicates to bound memory."""
    yt, preds = ctx.y_true_bin(), ctx.predictions
    block = max(1, CELLS_PER_BLOCK // n)
    parts = [binary_replicates(resample_counts(rng, n, min(block, cfg.n_boot - start)), yt, preds.score,
                               preds.y_pred_bin)
             for start in range(0, cfg.n_boot, block)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _calibration_p_value(ctx: AuditContext, cfg: PerformanceConfig, ece: float) -> float | None:
    """P-value of "the model is perfectly calibrated" for the observed ECE (consistency resampling)."""
    if ctx.population is not None:
        hist = ctx.population.partial.histogram
        counts, sums = hist.counts.sum(axis=(0, 1)).astype(float), hist.score_sum.sum(axis=(0, 1))
    elif ctx.model.task == "binary":
        counts, sums = calibration_cells(ctx.predictions.score)
    elif ctx.model.task == "multiclass":
        counts, sums = calibration_cells(np.asarray(ctx.predictions.proba).max(axis=1))
    else:
        return None
    null = ece_if_calibrated(counts, sums, ctx.rng("performance.calibration"), cfg.n_boot)
    return float((1 + (null >= ece - 1e-12).sum()) / (1 + len(null)))


def run(ctx: AuditContext, cfg: PerformanceConfig) -> CheckResult:
    binned = ctx.population is not None or (ctx.model.task == "binary" and len(ctx.data.frame) > ROW_BOOTSTRAP_MAX)
    point, replicates, n = (_histogram if binned else _in_memory)(ctx, cfg)
    auc_bound = point.pop("roc_auc_error_bound", None)
    result = CheckResult()
    table = []
    for name, value in point.items():
        samples = replicates[name]
        samples = samples[np.isfinite(samples)]
        biased = name in BIASED_UPWARDS
        zero_p = _calibration_p_value(ctx, cfg, value) if name == "ece" and np.isfinite(value) else None
        ci = (bootstrap_interval(value, samples, cfg.confidence, biased, zero_p)
              if samples.size and np.isfinite(value) else None)
        key = f"performance.{name}"
        result.metrics[key] = value if np.isfinite(value) else None
        if ci:
            result.metrics[f"{key}.ci_low"], result.metrics[f"{key}.ci_high"] = ci
        threshold = cfg.thresholds.get(name)
        hib = HIGHER_IS_BETTER[name]
        if threshold is None:
            status, severity = Status.passed, Severity.info
            detail = f"{TITLES[name]} {value:.4f}" + (f" (95% CI {ci[0]:.4f}–{ci[1]:.4f})" if ci else "") + "; no declared threshold."
        else:
            status = Status(interval_status(ci or (value, value), threshold, hib))
            severity = cfg.severity if status != Status.passed else Severity.info
            bound = "at least" if hib else "at most"
            detail = (f"{TITLES[name]} {value:.4f}, CI {ci[0]:.4f}–{ci[1]:.4f}; the policy requires {bound} {threshold}."
                      if ci else f"{TITLES[name]} {value:.4f}; the policy requires {bound} {threshold}.")
        result.findings.append(Finding.make("performance", f"{TITLES[name]}", status=status, severity=severity,
                                            metric=key, value=value, threshold=threshold, ci=ci,
                                            references=REFERENCES, detail=detail,
                                            data={"higher_is_better": hib, "n": n, "n_boot": cfg.n_boot,
                                                  "ci_method": BIAS_CORRECTED if biased else PERCENTILE,
                                                  **({"p_calibrated": zero_p} if zero_p is not None else {})}))
        table.append({"metric": name, "value": value, "ci_low": ci[0] if ci else None, "ci_high": ci[1] if ci else None,
                      "threshold": threshold})
    result.details = {"task": ctx.model.task, "rows": n, "n_boot": cfg.n_boot, "confidence": cfg.confidence,
                      "positive_label": ctx.positive_label, "table": table,
                      "method": ("multinomial bootstrap over a (label x prediction x 10,000 score bins) table of every row; "
                                 f"ROC AUC exact to within {auc_bound:.2e}" if binned else "row bootstrap")}
    if auc_bound is not None:
        result.metrics["performance.roc_auc.error_bound"] = auc_bound
    return result


CHECK = Check(name="performance", run=run, config=PerformanceConfig,
              references=tuple(REFERENCES), requires=frozenset({"tabular", "labels"}))
