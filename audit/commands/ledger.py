"""`aiaudit ledger verify|show`: the append-only audit-event ledger."""
from __future__ import annotations

import json
import sys

import typer

from ..config import Settings
from ..records import Records

ledger_app = typer.Typer(help="The append-only, hash-chained ledger of audit events.", no_args_is_help=True)


@ledger_app.command("verify")
def verify() -> None:
    """Recompute the hash chain; exit 1 naming the first bad entry on any edit, deletion, reordering or truncation."""
    result = Records(Settings.from_env().ensure().records_db).verify()
    if result.ok:
        typer.echo(f"ledger ok: {result.entries} entries, chain intact")
        return
    typer.echo(f"ledger INVALID at entry {result.first_bad}: {result.reason}", err=True)
    raise typer.Exit(1)


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
