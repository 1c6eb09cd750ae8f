"""`aiaudit ledger verify|show`: the append-only audit-event ledger."""
from __future__ import annotations

import json
import sys

import typer

from ..config import Settings
from ..errors import StoreDamaged
from ..records import Records
from ..review import REGISTRATION_ALIASES, alias_bypasses

ledger_app = typer.Typer(help="The append-only, hash-chained ledger of audit events.", no_args_is_help=True)


@ledger_app.command("verify")
def verify(allow_alias: list[str] = typer.Option(list(REGISTRATION_ALIASES), "--allow-alias",
                                                  help="Aliases any registration may set (not gated by promote)."),
           aliases: bool = typer.Option(True, "--aliases/--no-aliases",
                                        help="Also compare MLflow model aliases with the recorded promotions.")) -> None:
    """Recompute the hash chain (exit 1 naming the first bad entry on any edit, deletion, reordering or
    truncation) and report every model alias set outside `aiaudit promote` (exit 1, naming model, alias, version)."""
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
    if not aliases:
        return
    from ..registry import Registry
    bypasses = alias_bypasses(records, Registry(settings), tuple(allow_alias))
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


def register(app: typer.Typer) -> None:
    app.add_typer(ledger_app, name="ledger")
