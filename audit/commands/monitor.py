"""`aiaudit monitor`: compare a window of production data with the signed-off baseline audit (Art. 72)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from ..errors import AuditInputError


def _fmt(v: object) -> str:
    return "—" if v is None else (f"{v:.3f}" if isinstance(v, float) and not float(v).is_integer() else
                                  str(int(v)) if isinstance(v, float) else str(v))


HISTORY_COLUMNS = {"window": "#", "start": "from", "rows": "rows", "breaches": "fails", "drifted_inputs": "drift",
                   "domain_auc": "dom.AUC", "prediction_psi": "PSI", "estimated_auc": "est.AUC",
                   "realised_auc_change": "ΔAUC", "status": "status"}


def _print_history(console: Console, rows: list[dict]) -> None:
    table = Table(title="Monitoring windows, oldest first", box=None, padding=(0, 1), pad_edge=False, header_style="bold underline", caption="fails: breaches; drift: inputs "
                  "that shifted; dom.AUC: domain classifier; PSI: of the scores; ΔAUC: realised AUC change")
    for label in HISTORY_COLUMNS.values():
        table.add_column(label, min_width=10 if label == "from" else None)
    for r in rows:
        r = {**r, "start": (r["start"] or "")[:10] or None}
        table.add_row(*[_fmt(r[c]) for c in HISTORY_COLUMNS])
    console.print(table)


def monitor(spec: Optional[Path] = typer.Argument(None, help="The audit spec of the baseline audit (YAML)."),
            window: Optional[Path] = typer.Option(None, "--window", help="Window of inference logs (CSV/Parquet): the "
                                                  "model inputs, optionally labels, protected attributes, a timestamp."),
            baseline: Optional[str] = typer.Option(None, "--baseline", help="Compare with this audit of the model "
                                                   "version (default: its newest signed-off audit)."),
            timestamp: Optional[str] = typer.Option(None, "--timestamp", help="Timestamp column (default: 'timestamp' "
                                                    "when present)."),
            out_dir: Optional[Path] = typer.Option(None, "--out", help="Directory for monitor.json and its evidence."),
            history: Optional[str] = typer.Option(None, "--history", help="Print the trend of MODEL's windows "
                                                  "(name, or name/version) instead of running one."),
            json_output: bool = typer.Option(False, "--json", help="Print monitor.json (or the history) as JSON."),
            stream: bool = typer.Option(False, "--stream", help="Count the window chunk by chunk (automatic above the "
                                        "policy's limits.max_rows_in_memory for Parquet): exact counts, a sample for "
                                        "the domain classifier and the label-free estimate."),
            backend: str = typer.Option("local", "--backend", help="Where a streamed window is counted: local or dask "
                                        "(implies --stream; identical results)."),
            scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler address tcp://host:port "
                                                    "(default: a local cluster)."),
            reaudit: Optional[Path] = typer.Option(None, "--reaudit-on-breach", help="An audit spec of the same model "
                                                   "version (e.g. on fresh labelled data) to run when the window "
                                                   "breaches a gate; linked to the window in the ledger."),
            chunk_rows: int = typer.Option(200_000, "--chunk-rows", min=1_000, help="Rows per chunk when streaming."),
            trust_model: bool = typer.Option(False, "--trust-model", help="Load a model version not registered through "
                                             "aiaudit.")) -> None:
    """Compare a WINDOW of production data with the model version's signed-off audit: input, prediction and label
    drift, performance (realised, or estimated without labels), group selection rates and group shares, every test
    in one Holm family. Exit 0 when no breach gates, 1 when one does (as for run), 2 on bad input (nothing written)."""
    from ..config import Settings
    from ..engine import AuditEngine
    from ..monitoring import Streaming, history as window_history, prepare_monitor, prepare_reaudit, reaudit_after
    from ..terminal import Progress, print_summary
    out, err = Console(), Console(stderr=True)
    engine = AuditEngine(Settings.from_env())
    if history:
        name, _, version = history.partition("/")
        rows = window_history(engine, name, version or None)
        if json_output:
            sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        elif not rows:
            out.print(f"no monitoring windows of {history}")
        else:
            _print_history(out, rows)
        return
    if spec is None or window is None:
        raise AuditInputError("give SPEC and --window FILE (or --history MODEL)", source="aiaudit monitor")
    progress = Progress(err)
    with progress.live("validating the window against its baseline"):
        engine.progress = progress
        if backend not in ("local", "dask"):
            raise AuditInputError(f"unknown backend {backend!r} (choose local or dask)", source="--backend")
        streaming = Streaming(backend, scheduler, chunk_rows) if stream or backend == "dask" else None
        prepared = prepare_monitor(engine, spec, window, baseline, timestamp, trust_model, streaming)
        follow_up = prepare_reaudit(engine, reaudit, prepared, trust_model) if reaudit else None
        result = engine.run(prepared, out_dir)
    if out_dir:
        os.replace(out_dir / "audit.json", out_dir / "monitor.json")
    if json_output:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        w = result.window
        out.print(f"window {w.window_index} of {result.model.uri}: {result.dataset.rows:,} rows"
                  + (f" from {w.start} to {w.end}" if w.start else "")
                  + f", against audit {w.baseline_audit_id}" + ("" if w.baseline_signed_off else " (NOT signed off)"))
        print_summary(out, result)
        if out_dir:
            out.print(f"wrote {out_dir / 'monitor.json'}")
    if follow_up is not None and result.exit_code == 1:
        with progress.live("re-auditing after the breach"):
            again = reaudit_after(engine, result, follow_up)
        if not json_output:
            out.print(f"re-audit {again.audit_id} of {again.model.uri}: {again.status} (aiaudit show {again.audit_id})")
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    app.command(name="monitor")(monitor)
