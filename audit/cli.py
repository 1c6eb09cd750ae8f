"""The `aiaudit` command line.  Exit codes: 0 gates pass, 1 a gate failed, 2 bad input or usage, 3 internal error."""
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

from .errors import EXIT_BAD_INPUT, EXIT_INTERNAL, AuditInputError, IntegrityError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="aiaudit: explainability, fairness and EU AI Act audits of ML models.\n\n"
                       "Exit codes: 0 all gates pass; 1 a gate failed (or verification failed); "
                       "2 bad input or usage; 3 internal error.")
out = Console()
err = Console(stderr=True)


def _settings():
    from .config import Settings
    return Settings.from_env()


def _quiet_libraries() -> None:
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("WANDB_MODE", "disabled")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    warnings.filterwarnings("ignore")
    import logging
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)


def _summary(result) -> None:
    table = Table(title=f"audit {result.audit_id}: {result.status.upper()}", show_lines=False)
    for col in ("status", "severity", "check", "finding", "value", "CI", "threshold"):
        table.add_column(col)
    colour = {"pass": "green", "warn": "yellow", "fail": "red", "error": "magenta"}
    order = {"fail": 0, "error": 1, "warn": 2, "pass": 3}
    for f in sorted(result.findings, key=lambda f: (order[f.status.value], -f.severity.rank)):
        table.add_row(f"[{colour[f.status.value]}]{f.status.value}[/]", f.severity.value, f.check,
                      f.title[:60] + (f" [{f.group}]" if f.group else ""),
                      "" if f.value is None else f"{f.value:.4g}",
                      "" if f.ci is None else f"{f.ci[0]:.3g}–{f.ci[1]:.3g}",
                      "" if f.threshold is None else f"{f.threshold:.4g}")
    out.print(table)
    if result.risk:
        out.print(f"risk tier: [bold]{result.risk.get('tier')}[/]")
    out.print(f"model {result.model.uri} · dataset {Path(result.dataset.path).name} ({result.dataset.rows} rows) · "
              f"policy {result.policy.name} {result.policy.version} · exit code {result.exit_code}")


@app.command()
def run(spec: Path = typer.Argument(..., help="Audit spec (YAML)."),
        out_dir: Optional[Path] = typer.Option(None, "--out", help="Directory for audit.json and evidence."),
        trust_model: bool = typer.Option(False, "--trust-model", help="Load a model version not registered through aiaudit."),
        json_output: bool = typer.Option(False, "--json", help="Print audit.json to stdout instead of the table."),
        backend: Optional[str] = typer.Option(None, "--backend", help="Execution backend for streamed data: local or dask."),
        scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786."),
        stream: Optional[bool] = typer.Option(None, "--stream/--in-memory", help="Force streaming or in-memory reading (default: by size).")):
    """Run the audit described by SPEC; exit 0 when all gates pass, 1 when a gate fails."""
    from .engine import AuditEngine
    engine = AuditEngine(_settings())
    with err.status("validating inputs") as status:
        engine.progress = lambda msg: status.update(msg)
        mode = None if stream is None else ("streaming" if stream else "in_memory")
        prepared = engine.prepare(spec, trust_model=trust_model,
                                  execution={"backend": backend, "scheduler": scheduler, "mode": mode})
        status.update(f"running {len(prepared.plan)} checks")
        result = engine.run(prepared, out_dir)
    if json_output:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        _summary(result)
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
    """List audits, newest first."""
    from .records import Records
    rows = Records(_settings().ensure().records_db).list_audits(model, limit)
    if json_output:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table()
    for col in ("audit id", "created", "model", "status", "tier", "exit"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["audit_id"], r["created_at"], f"{r['model_name']}/{r['model_version']}", r["status"],
                      r["tier"] or "", str(r["exit_code"]))
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
        _summary(result)


@app.command()
def demo(audit: bool = typer.Option(True, "--audit/--no-audit", help="Also run the example audits."),
         lm: bool = typer.Option(True, "--lm/--no-lm", help="Also train, register and audit the bundled language model."),
         out_root: Path = typer.Option(Path("out"), "--out", help="Where to write each example's audit.json.")):
    """Train the demo models on the bundled data, register them in MLflow and audit them."""
    from .demo import DEMO_MODELS, EXAMPLES, register_demo_models
    from .engine import AuditEngine
    from .registry import Registry
    settings = _settings()
    registry = Registry(settings)
    say = lambda m: err.print(f"[dim]{m}[/]")  # noqa: E731
    register_demo_models(registry, progress=say)
    examples = [d.example for d in DEMO_MODELS]
    if lm:
        from .lm_demo import register_demo_lm
        register_demo_lm(registry, progress=say)
        examples.append("lm")
    if not audit:
        return
    engine = AuditEngine(settings)
    for example in examples:
        spec = EXAMPLES / example / "audit.yaml"
        err.print(f"[bold]auditing {example}[/] ({spec})")
        result = engine.run(engine.prepare(spec), out_root / example)
        _summary(result)
    out.print(f"MLflow store: {settings.tracking_uri}  (browse with: mlflow ui --backend-store-uri {settings.tracking_uri})")
    from .commands.app import demo_hint
    if hint := demo_hint(settings):
        err.print(f"[yellow]{hint}[/]", highlight=False)


def main() -> None:
    from .commands import register_all
    _quiet_libraries()
    register_all(app)
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except AuditInputError as e:
        err.print(f"error: {e}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_BAD_INPUT)
    except IntegrityError as e:
        err.print(f"integrity error: {e}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_BAD_INPUT)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(EXIT_INTERNAL)
    except Exception as e:  # click usage errors carry their own exit code (2)
        import click
        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(EXIT_BAD_INPUT)
        err.print(f"internal error: {type(e).__name__}: {e}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
