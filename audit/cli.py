"""The `aiaudit` command line.  Exit codes: 0 gates pass, 1 a gate failed, 2 bad input or usage, 3 internal error,
130 interrupted."""
from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .terminal import STATUS_LABEL, Progress, print_summary

from .errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, AuditInputError, IntegrityError, Interrupted

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="aiaudit: explainability, fairness and EU AI Act audits of ML models.\n\n"
                       "Exit codes: 0 all gates pass; 1 a gate failed (or verification failed); "
                       "2 bad input or usage; 3 internal error; 130 interrupted (Ctrl-C or SIGTERM; partial "
                       "output is removed).")
out = Console()
err = Console(stderr=True)


def _settings():
    from .config import Settings
    return Settings.from_env()


QUIET_LOGGERS = ("mlflow", "alembic", "sae_lens", "transformer_lens", "transformers", "datasets", "urllib3")


def _quiet_libraries(verbose: bool = False) -> None:
    """Offline, single-purpose library settings; library chatter (MLflow INFO lines, SAELens warnings,
    tqdm bars) only with --verbose."""
    import logging
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("WANDB_MODE", "disabled")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if verbose:
        os.environ["MLFLOW_LOGGING_LEVEL"] = "INFO"
        return
    os.environ["MLFLOW_LOGGING_LEVEL"] = "ERROR"
    os.environ["TQDM_DISABLE"] = "1"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


@app.callback()
def _options(verbose: bool = typer.Option(False, "--verbose", "-v",
                                          help="Show library logging: MLflow, SAELens, progress bars.")) -> None:
    _quiet_libraries(verbose)


@app.command()
def run(spec: Path = typer.Argument(..., help="Audit spec (YAML)."),
        out_dir: Optional[Path] = typer.Option(None, "--out", help="Directory for audit.json and evidence."),
        trust_model: bool = typer.Option(False, "--trust-model", help="Load a model version not registered through aiaudit."),
        json_output: bool = typer.Option(False, "--json", help="Print audit.json to stdout instead of the table."),
        backend: Optional[str] = typer.Option(None, "--backend", help="Execution backend for streamed data: local or dask."),
        scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786."),
        stream: Optional[bool] = typer.Option(None, "--stream/--in-memory", help="Force streaming or in-memory reading (default: by size).")):
    """Run the audit described by SPEC (a spec file, or a directory holding audit.yaml); exit 0 when all gates
    pass, 1 when a gate fails."""
    from .engine import AuditEngine
    engine = AuditEngine(_settings())
    progress = Progress(err)
    with progress.live("validating inputs"):
        engine.progress = progress
        mode = None if stream is None else ("streaming" if stream else "in_memory")
        prepared = engine.prepare(spec, trust_model=trust_model,
                                  execution={"backend": backend, "scheduler": scheduler, "mode": mode})
        progress(f"running {len(prepared.plan)} checks")
        result = engine.run(prepared, out_dir)
    if json_output:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        print_summary(out, result)
        if out_dir:
            out.print(f"wrote {out_dir / 'audit.json'}")
    raise typer.Exit(result.exit_code)


@app.command()
def register(path: Path = typer.Argument(..., help="Model file: .skops, XGBoost .ubj/.json, LightGBM .txt (pickles need --trust-model)."),
             name: str = typer.Option(..., "--name", help="Registered model name."),
             data: Path = typer.Option(..., "--data", help="Training or reference dataset (CSV/Parquet) for the signature and lineage."),
             label: Optional[str] = typer.Option(None, "--label", help="Label column to drop from the inputs."),
             drop: list[str] = typer.Option([], "--drop", help="Further columns that are not model inputs."),
             alias: Optional[str] = typer.Option(None, "--alias", help="Alias to point at the new version."),
             trust_model: bool = typer.Option(False, "--trust-model", help="Allow unpickling this file (it can run code).")):
    """Register an existing model file in MLflow with signature, input example and dataset lineage."""
    import re
    from .datasets import describe, read_table
    from .model_io import Lineage, read_model_file
    from .registry import Registry
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name):
        raise AuditInputError("model name may use letters, digits, '.', '_' and '-' only", source="--name")
    est = read_model_file(path, trust=trust_model)
    df = read_table(data)
    missing = [c for c in [label, *drop] if c and c not in df.columns]
    if missing:
        raise AuditInputError(f"column(s) {missing} not in the dataset", source=str(data))
    X = df.drop(columns=[c for c in [label, *drop] if c])
    expected = getattr(est, "feature_names_in_", None)
    if expected is None and hasattr(est, "feature_name"):
        expected = est.feature_name()
    if expected is not None:
        absent = [c for c in expected if c not in X.columns]
        if absent:
            raise AuditInputError(f"dataset lacks model input column(s) {list(absent)[:5]}", source=str(data))
        X = X[list(expected)]
    info = describe(data, df)
    lineage = Lineage(name=data.name, path=str(data), sha256=info.sha256, rows=info.rows, columns=list(X.columns), label=label)
    registry = Registry(_settings())
    ref = registry.register(est, X, name, lineage)
    if alias:
        registry.set_alias(ref.name, ref.version, alias)
    out.print(f"registered {ref.uri} (sha256 {ref.tags.get('aiaudit.model_sha256', '')[:12]}…)")


@app.command(name="ls")
def list_audits(model: Optional[str] = typer.Option(None, "--model", help="Only audits of this registered model."),
                limit: int = typer.Option(50, "--limit", min=1, max=10_000),
                json_output: bool = typer.Option(False, "--json")):
    """List audits, newest first, including audits that crashed or were interrupted (status crashed)."""
    from .records import Records
    from .spec import MODEL_URI
    settings = _settings()
    records = Records(settings.records_db) if settings.records_db.is_file() else None
    rows = records.list_audits(model, limit) if records else []
    for r in records.crashed_audits(limit) if records else []:
        m = MODEL_URI.match(r["model_uri"])
        name, version = (m["name"], m["version"] or m["alias"]) if m else (r["model_uri"], "")
        if model is None or name == model:
            rows.append({**r, "model_name": name, "model_version": version, "tier": None, "exit_code": None})
    rows = sorted(rows, key=lambda r: r["created_at"], reverse=True)[:limit]
    if json_output:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(box=None, padding=(0, 1, 0, 0), header_style="bold")
    table.add_column("audit id", no_wrap=True)
    table.add_column("created (UTC)", no_wrap=True)
    for col in ("model", "status", "tier", "exit"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["audit_id"], r["created_at"][:16].replace("T", " "), f"{r['model_name']}/{r['model_version']}",
                      STATUS_LABEL.get(r["status"], r["status"]).lower(), r["tier"] or "",
                      "" if r["exit_code"] is None else str(r["exit_code"]))
    out.print(table)


@app.command()
def show(audit_id: str = typer.Argument(..., help="Audit id (see `aiaudit ls`)."),
         json_output: bool = typer.Option(False, "--json", help="Print the full audit.json.")):
    """Show one audit's findings and metrics."""
    from .engine import AuditEngine
    result = AuditEngine(_settings()).load_result(audit_id)
    if json_output:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        print_summary(out, result, full=True)


@app.command()
def demo(audit: bool = typer.Option(True, "--audit/--no-audit", help="Also run the example audits."),
         lm: bool = typer.Option(False, "--lm/--no-lm", help="Also train, register and audit the bundled language "
                                                             "model and its SAE (about 12 minutes on 2 cores the "
                                                             "first time; cached by configuration afterwards)."),
         out_root: Path = typer.Option(Path("out"), "--out", help="Where to write each example's audit.json.")):
    """Train the demo models on the bundled data, register them in MLflow and audit them (about 1 minute)."""
    from .demo import DEMO_MODELS, EXAMPLES, register_demo_model
    from .engine import AuditEngine
    from .registry import Registry
    settings = _settings()
    registry = Registry(settings)
    examples = [d.example for d in DEMO_MODELS] + (["lm"] if lm else [])
    progress = Progress(err, steps=len(DEMO_MODELS) + int(lm) + (len(examples) if audit else 0))
    for model in DEMO_MODELS:
        progress(f"training and registering {model.name} on {model.dataset}")
        register_demo_model(registry, model)
        progress.finish_step()
    if lm:
        from .lm_demo import register_demo_lm
        progress("training (or reusing the cached) demo language models and their SAEs")
        register_demo_lm(registry, progress=progress)
        progress.finish_step()
    if not audit:
        return
    engine = AuditEngine(settings, progress=progress)
    for example in examples:
        spec = EXAMPLES / example / "audit.yaml"
        progress(f"auditing {example} ({spec.relative_to(EXAMPLES.parent)})")
        result = engine.run(engine.prepare(spec), out_root / example)
        progress.finish_step()
        print_summary(out, result)
    out.print(f"MLflow store: {settings.tracking_uri}  (browse with: mlflow ui --backend-store-uri {settings.tracking_uri})")
    from .commands.app import demo_hint
    if hint := demo_hint(settings):
        err.print(f"[yellow]{hint}[/]", highlight=False)


def _plain_flags(command) -> None:
    """No `<bool>` type label on plain on/off flags in --help."""
    for param in command.params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    make_help = command.get_help_option

    def get_help_option(ctx):
        option = make_help(ctx)
        if option is not None:
            option.metavar = ""
        return option
    command.get_help_option = get_help_option
    for sub in getattr(command, "commands", {}).values():
        _plain_flags(sub)


def _is_usage_error(e: Exception) -> bool:
    """A click usage error (missing argument, unknown option), from click itself or from the copy of click
    that typer ships (typer._click), whose exception classes are not click's."""
    return any(cls.__name__ == "ClickException" and cls.__module__.split(".")[-1] == "exceptions"
               for cls in type(e).__mro__)


def main() -> None:
    import signal
    from .commands import register_all

    def _terminate(signum, frame):
        raise Interrupted()
    signal.signal(signal.SIGTERM, _terminate)
    register_all(app)
    try:
        command = typer.main.get_command(app)
        _plain_flags(command)
        code = command(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except AuditInputError as e:
        err.print(f"error: {e}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_BAD_INPUT)
    except IntegrityError as e:
        err.print(f"integrity error: {e}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_BAD_INPUT)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt, Interrupted):
        err.print("interrupted: partial output was removed; run the command again to finish")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as e:
        if _is_usage_error(e):
            e.show()
            sys.exit(EXIT_BAD_INPUT)
        err.print(f"internal error: {type(e).__name__}: {e}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
