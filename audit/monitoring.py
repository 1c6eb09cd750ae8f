"""`aiaudit monitor`: a window of production data, validated against its baseline audit before anything is written.

The baseline is the model version's newest signed-off audit, or the audit named with `--baseline` (recorded as
not signed off when it has no active sign-off). Its data are read again from the spec's dataset, which must be
the file it audited (same SHA-256). The window is then one more audit in the store (`kind: monitor`) running
the `monitoring` check: the same finding schema, ledger entries, MLflow run (its metrics at step = the window's
number), review workflow and exit codes as any audit.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from .checks import AuditContext, available_checks
from .checks.base import AuditData
from .datasets import describe, read_table
from .engine import AuditEngine, PreparedAudit
from .errors import AuditInputError
from .model_io import sha256_file
from .policy import load_policy
from .result import AuditResult, WindowInfo
from .review import get_signoff
from .spec import load_spec
from .validation import validate_data

CHECK = "monitoring"
TIMESTAMP = "timestamp"  # the column read as the window's time when --timestamp is not given


@dataclass
class Baseline:
    audit_id: str
    signed_off: bool
    result: AuditResult
    data: AuditData


def _baseline_row(engine: AuditEngine, name: str, version: str, audit_id: str | None) -> tuple[dict[str, Any], bool]:
    records = engine.records
    if audit_id:
        row = records.get_audit(audit_id)
        if row is None:
            raise AuditInputError("no such audit", source=audit_id)
        if (row["model_name"], row["model_version"]) != (name, version):
            raise AuditInputError(f"audit {audit_id} is of {row['model_name']} version {row['model_version']}, not "
                                  f"{name} version {version}", source="--baseline")
        if row["kind"] != "audit":
            raise AuditInputError(f"{audit_id} is a monitoring window, not an audit", source="--baseline")
        return row, get_signoff(records, audit_id) is not None
    for row in records.list_audits(name, limit=10_000, kind="audit"):
        if row["model_version"] == version and get_signoff(records, row["audit_id"]):
            return row, True
    raise AuditInputError(f"{name} version {version} has no signed-off audit to compare with; sign one off in the "
                          "review app, or name one with --baseline AUDIT_ID (recorded as not signed off)", source="--baseline")


def _timestamps(window: pd.DataFrame, column: str | None, src: str) -> tuple[str | None, str | None, str | None]:
    from .scale.window import timestamp_range
    if column is None:
        if TIMESTAMP not in window:
            return None, None, None
        column = TIMESTAMP
    if column not in window:
        raise AuditInputError(f"timestamp column '{column}' is not in the window", source=src)
    try:
        span = timestamp_range(window, column)
    except AuditInputError as e:
        raise AuditInputError(str(e), source=src) from None
    if span is None:
        raise AuditInputError(f"timestamp column '{column}' has no values", source=src)
    return column, *(_iso(t) for t in span)


def _iso(t: Any) -> str:
    return t.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Streaming:
    """How to read a window too large for memory: `aiaudit monitor --stream [--backend dask]`."""

    backend: str = "local"
    scheduler: str | None = None
    chunk_rows: int = 200_000


def prepare_monitor(engine: AuditEngine, spec_path: str | Path, window_path: str | Path, baseline_id: str | None = None,
                    timestamp: str | None = None, trust_model: bool = False,
                    streaming: Streaming | None = None) -> PreparedAudit:
    """Everything validated, nothing written: the window audit, ready for `AuditEngine.run`. A window above the
    policy's `limits.max_rows_in_memory` (or with `streaming`) is counted chunk by chunk here, before the store is
    touched, so a bad row anywhere in it is still a bad input with nothing written."""
    from .scale.sources import count_rows, iter_chunks
    spec = load_spec(spec_path)
    policy = load_policy(spec.spec.policy, Path(spec.base_dir))
    ref = engine.registry.resolve(spec.spec.model)
    model = engine.registry.load(ref, trust=trust_model)
    if model.task == "language_model":
        raise AuditInputError("monitoring windows are for tabular models", source=spec.spec.model)
    if not engine.settings.records_db.is_file():
        raise AuditInputError(f"the store has no audits; audit {ref.uri} first", source="--baseline")
    row, signed_off = _baseline_row(engine, ref.name, ref.version, baseline_id)
    baseline = engine.load_result(row["audit_id"])
    if baseline.dataset.sample is not None:
        raise AuditInputError(f"baseline audit {row['audit_id']} streamed its data; monitoring needs an in-memory "
                              "baseline", source="--baseline")
    base_path = spec.resolve(spec.spec.dataset.path)
    if sha256_file(base_path) != baseline.dataset.sha256:
        raise AuditInputError(f"is not the file audit {row['audit_id']} audited (SHA-256 differs); monitor with the "
                              "spec and data of the baseline audit", source=str(base_path))
    base_data = validate_data(read_table(base_path, max_rows=policy.pack.limits.max_rows), spec, model)

    window_path = Path(window_path).resolve()
    src = str(window_path)
    limits = policy.pack.limits
    if streaming is None and (count_rows(window_path) or 0) > limits.max_rows_in_memory:
        streaming = Streaming()
    frame = (next(iter_chunks(window_path, None, 50_000), pd.DataFrame()) if streaming
             else read_table(window_path, max_rows=limits.max_rows))
    ts_column, start, end = _timestamps(frame, timestamp, src)
    ds = spec.spec.dataset
    window_ds = ds.model_copy(update={
        "path": src, "label": ds.label if ds.label in frame else None,
        "protected": [c for c in ds.protected if c in frame], "split_column": None, "train_path": None})
    window_spec = spec.model_copy(update={"spec": spec.spec.model_copy(update={"dataset": window_ds, "checks": [CHECK],
                                                                               "system_card": None})})
    for f in model.meta.features:
        if f.name in frame:
            was, now = (pd.api.types.is_numeric_dtype(x[f.name]) for x in (base_data.frame, frame))
            if was != now:
                kind = {True: "numeric", False: "text"}
                raise AuditInputError(f"column '{f.name}' is {kind[was]} in the baseline and {kind[now]} in the window",
                                      source=src)
    data = validate_data(frame, window_spec, model)
    check = available_checks()[CHECK]
    base = Baseline(row["audit_id"], signed_off, baseline, base_data)
    ctx = AuditContext(spec=window_spec, policy=policy, model=model, data=data, evidence_dir=Path("."),
                       seed=spec.spec.seed, baseline=base)
    cfg = ctx.settings(check)
    summary = None
    if streaming:
        summary = _stream_window(ctx, cfg, window_path, streaming, ts_column)
        if summary.partial.ts_range is not None:
            start, end = (_iso(t) for t in summary.partial.ts_range)
        data = AuditData(summary.sample_frame(), data.label, data.protected)
    previous = [r for r in engine.records.list_audits(ref.name, limit=100_000, kind="monitor")
                if r["model_version"] == ref.version]
    window = WindowInfo(baseline_audit_id=row["audit_id"], baseline_signed_off=signed_off,
                        baseline_dataset_sha256=baseline.dataset.sha256, window_index=len(previous) + 1,
                        timestamp_column=ts_column, start=start, end=end)
    info = describe(window_path, frame)
    if summary is not None:
        info = replace(info, rows=summary.rows)
    return PreparedAudit(window_spec, policy, ref, model, data, info, [check], {}, baseline=base, window=window,
                         population=summary)


def _stream_window(ctx: AuditContext, cfg: Any, path: Path, streaming: Streaming, ts_column: str | None) -> Any:
    from .checks.monitoring import baseline_scores, window_plan
    from .scale.window import summarise
    names = [f.name for f in ctx.model.meta.features]
    columns = list(dict.fromkeys([*names, *([ctx.data.label] if ctx.data.label else []), *ctx.data.protected,
                                  *([ts_column] if ts_column else [])]))
    sb = baseline_scores(ctx)
    plan = window_plan(ctx, cfg, sb, ctx.data.label, ts_column, cfg.max_rows)
    try:
        summary = summarise(path, plan, ctx.baseline.data.frame, sb, backend=streaming.backend,
                            scheduler=streaming.scheduler, chunk_rows=streaming.chunk_rows, columns=columns)
    except AuditInputError as e:
        raise AuditInputError(str(e), source=e.source or str(path)) from None
    if summary.rows == 0:
        raise AuditInputError("the window has no rows", source=str(path))
    return summary


def prepare_reaudit(engine: AuditEngine, spec_path: str | Path, window: PreparedAudit,
                    trust_model: bool = False) -> PreparedAudit:
    """The audit to run if the window breaches, validated now (bad input: nothing written); it must audit the
    window's model version."""
    prepared = engine.prepare(spec_path, trust_model=trust_model)
    if (prepared.model_ref.name, prepared.model_ref.version) != (window.model_ref.name, window.model_ref.version):
        raise AuditInputError(f"audits {prepared.model_ref.uri}, not the monitored {window.model_ref.uri}",
                              source=str(spec_path))
    return prepared


def reaudit_after(engine: AuditEngine, window: AuditResult, prepared: PreparedAudit) -> AuditResult:
    """Run the follow-up audit of a breaching window; the ledger links the two both ways."""
    breaches = [f.id for f in window.findings if f.status.value == "fail"]
    engine.records.log("monitor.reaudit_triggered", window.audit_id, {"spec": prepared.spec.path, "breaches": breaches})
    result = engine.run(prepared)
    engine.records.log("monitor.reaudit_completed", window.audit_id, {"audit": result.audit_id, "status": result.status})
    engine.records.log("audit.triggered_by_window", result.audit_id, {"window": window.audit_id, "breaches": breaches})
    return result


def history(engine: AuditEngine, model_name: str, version: str | None = None) -> list[dict[str, Any]]:
    """The model's monitoring windows, oldest first, with their headline figures."""
    if not engine.settings.records_db.is_file():
        return []
    out = []
    for row in reversed(engine.records.list_audits(model_name, limit=100_000, kind="monitor")):
        if version is not None and row["model_version"] != str(version):
            continue
        result = engine.load_result(row["audit_id"])
        m = result.metrics
        out.append({"audit_id": row["audit_id"], "version": row["model_version"], "window": result.window.window_index,
                    "start": result.window.start, "end": result.window.end, "rows": result.dataset.rows,
                    "status": row["status"], "baseline": result.window.baseline_audit_id,
                    "breaches": m.get("monitoring.breaches"), "drifted_inputs": m.get("monitoring.drifted_inputs"),
                    "domain_auc": m.get("monitoring.domain_auc"), "prediction_psi": m.get("monitoring.prediction_psi"),
                    "estimated_auc": m.get("monitoring.estimated_auc"),
                    "realised_auc_change": m.get("monitoring.realised_auc_change")})
    return out


# Headline metrics of a window, and where each sits when nothing has changed (the baseline's own value).
TREND_METRICS = ("monitoring.domain_auc", "monitoring.prediction_psi", "monitoring.positive_rate_change",
                 "monitoring.label_rate_change", "monitoring.realised_auc_change", "monitoring.estimated_auc")
NO_CHANGE = {"monitoring.domain_auc": 0.5, "monitoring.prediction_psi": 0.0}


def trend(engine: AuditEngine, model_name: str, version: str | None = None) -> list[dict[str, Any]]:
    """One row per window and headline metric, oldest window first: value, interval, the policy's tolerance and
    the baseline's value (what the metric reads when the window looks like the baseline)."""
    rows = []
    for h in history(engine, model_name, version):
        for f in engine.load_result(h["audit_id"]).findings:
            if f.metric not in TREND_METRICS or f.value is None:
                continue
            ref = (f.data or {}).get("baseline_realised") if f.metric == "monitoring.estimated_auc" else \
                NO_CHANGE.get(f.metric, 0.0)
            rows.append({"window": h["window"], "start": h["start"], "audit_id": h["audit_id"], "version": h["version"],
                         "metric": f.metric, "title": f.title, "value": f.value,
                         "ci_low": f.ci[0] if f.ci else None, "ci_high": f.ci[1] if f.ci else None,
                         "threshold": f.threshold, "baseline": ref, "status": f.status.value})
    return rows


def open_breaches(engine: AuditEngine, model_name: str, version: str | None = None) -> list[dict[str, Any]]:
    """Findings of the model's windows that still need a review decision, newest window first."""
    from .review import current_dispositions, is_open
    out = []
    for h in reversed(history(engine, model_name, version)):
        decided = current_dispositions(engine.records, h["audit_id"])
        for f in engine.load_result(h["audit_id"]).findings:
            if is_open(f) and f.id not in decided:
                out.append({"window": h["window"], "audit_id": h["audit_id"], "finding_id": f.id, "title": f.title,
                            "status": f.status.value, "severity": f.severity.value, "value": f.value,
                            "threshold": f.threshold})
    return out
