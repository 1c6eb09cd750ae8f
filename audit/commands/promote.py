"""`aiaudit promote MODEL VERSION --alias production`: only signed-off versions."""
from __future__ import annotations

import typer

from ..config import Settings
from ..records import current_actor


def promote(model: str = typer.Argument(..., help="Registered model name."),
            version: str = typer.Argument(..., help="Model version number."),
            alias: str = typer.Option("production", "--alias", help="Alias to point at the version.")) -> None:
    """Point ALIAS at MODEL/VERSION; exit 1 unless the version's latest audit is signed off and intact."""
    from ..engine import AuditEngine
    from ..review import PromotionRefused, promote as do_promote
    engine = AuditEngine(Settings.from_env())
    try:
        done = do_promote(engine, model, version, alias, actor=current_actor())
    except PromotionRefused as e:
        typer.echo(f"refused: {e}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{done['model']} is now @{done['alias']} (audit {done['audit_id']}, signed off by {done['signed_off_by']})")


def register(app: typer.Typer) -> None:
    app.command("promote")(promote)
