"""`aiaudit ledger verify|show`: the append-only audit-event ledger."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from ..config import Settings
from ..errors import AuditInputError, StoreDamaged
from ..records import Records
from ..review import REGISTRATION_ALIASES, alias_bypasses

ledger_app = typer.Typer(help="The append-only, hash-chained ledger of audit events.", no_args_is_help=True)


@ledger_app.command("verify")
def verify(allow_alias: list[str] = typer.Option(list(REGISTRATION_ALIASES), "--allow-alias",
                                                  help="Aliases any registration may set (not gated by promote)."),
           aliases: bool = typer.Option(True, "--aliases/--no-aliases",
                                        help="Also compare MLflow model aliases with the recorded promotions."),
           checkpoint: list[Path] = typer.Option([], "--checkpoint", help="A checkpoint file kept outside the store "
                                                 "(aiaudit ledger checkpoint); the ledger must extend it.")) -> None:
    """Recompute the hash chain (exit 1 naming the first bad entry on any edit, deletion, reordering or
    truncation), check it against every signed checkpoint anchored in MLflow and given with --checkpoint (exit 1
    on a rewrite, a truncation or a forged checkpoint), and report every model alias set outside `aiaudit promote`
    (exit 1, naming model, alias, version)."""
    from .. import checkpoints as cps
    from ..registry import Registry
    settings = Settings.from_env().ensure()
    try:
        records = Records(settings.records_db)
    except StoreDamaged as e:
        typer.echo(f"ledger INVALID: {e}", err=True)
        raise typer.Exit(1) from None
    result = records.verify()
    if not result.ok:
        typer.echo(f"ledger INVALID at entry {result.first_bad}: {result.reason}", err=True)
        raise typer.Exit(1)
    typer.echo(f"ledger ok: {result.entries} entries, chain intact")
    registry = Registry(settings)
    held = [(str(p), cps.parse(p.read_text()) if p.is_file() else None) for p in checkpoint]
    trusted, problems, checked = cps.store_key_id(settings.home), [], 0
    for where, cp in [*held, *cps.anchored(registry)]:
        problem = "not a readable checkpoint" if cp is None else cps.check(cp, records, trusted)
        checked += 1
        if problem:
            problems.append(f"{where}: {problem}")
    for p in problems:
        typer.echo(f"ledger INVALID against a checkpoint: {p}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"checkpoints ok: the ledger extends all {checked} signed checkpoint(s)")
    from ..incidents import incident_ids, verify_incident
    from ..review import verify_all_reviews
    rows = verify_all_reviews(records) + [p for i in incident_ids(records) for p in verify_incident(records, i)]
    for p in rows:
        typer.echo(f"record INVALID: {p}", err=True)
    if rows:
        raise typer.Exit(1)
    typer.echo("records ok: every review and incident row matches its ledger entry")
    if not aliases:
        return
    bypasses = alias_bypasses(records, registry, tuple(allow_alias))
    for b in bypasses:
        typer.echo(f"alias bypass: {b['model']}@{b['alias']} -> version {b['version']}: {b['reason']} "
                   "(promote it with aiaudit promote, or move the alias back)", err=True)
    if bypasses:
        raise typer.Exit(1)
    typer.echo("aliases ok: every gated alias matches a recorded promotion")


@ledger_app.command("show")
def show(subject: str = typer.Option(None, "--subject", help="Only entries about this audit id."),
         json_output: bool = typer.Option(False, "--json")) -> None:
    """Print ledger entries (oldest first)."""
    entries = Records(Settings.from_env().ensure().records_db).entries(subject)
    if json_output:
        sys.stdout.write(json.dumps([e.__dict__ for e in entries], indent=2) + "\n")
        return
    for e in entries:
        typer.echo(f"{e.seq:>6} {e.ts} {e.actor:<20} {e.event:<18} {e.subject} {e.entry_hash[:12]}")


@ledger_app.command("checkpoint")
def checkpoint_cmd() -> None:
    """Print a signed checkpoint of the ledger as it is now (JSON): keep it outside the store and pass it to
    `aiaudit ledger verify --checkpoint FILE` later."""
    from .. import checkpoints as cps
    settings = Settings.from_env()
    if not settings.records_db.is_file():
        raise AuditInputError("the store has no ledger yet", source=str(settings.home))
    cp = cps.make(Records(settings.records_db), settings.home)
    if cp is None:
        raise AuditInputError("the ledger is empty", source=str(settings.home))
    sys.stdout.write(cp.model_dump_json(indent=2) + "\n")


def register(app: typer.Typer) -> None:
    app.add_typer(ledger_app, name="ledger")
