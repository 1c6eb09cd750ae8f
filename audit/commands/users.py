"""`aiaudit users add|remove|list|set-role|unlock`: accounts for the review app."""
from __future__ import annotations

import json
import sys

import typer

from ..config import Settings
from ..errors import AuditInputError
from ..records import Records, current_actor
from ..users import Role, UserStore

users_app = typer.Typer(help="Review-app accounts: roles viewer, reviewer, approver, admin.", no_args_is_help=True)


def _store() -> UserStore:
    return UserStore(Records(Settings.from_env().ensure().records_db))


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise AuditInputError("no password on standard input", source="--password-stdin")
        return password
    if not sys.stdin.isatty():
        raise AuditInputError("no terminal to prompt for a password; pipe it with --password-stdin", source="--password-stdin")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_app.command("add")
def add(username: str = typer.Argument(..., help="Login name (for --oidc: the e-mail address the identity provider reports)."),
        role: Role = typer.Option(..., "--role", help="viewer: read only; reviewer: record dispositions and start audits; "
                                                      "approver: also sign off and promote; admin: also manage users."),
        password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from the first line of standard input."),
        oidc: bool = typer.Option(False, "--oidc", help="Account signs in through the OIDC provider (no local password).")) -> None:
    """Add a user; the password is prompted for (or read with --password-stdin) and stored only as a salted scrypt hash."""
    store = _store()
    password = None if oidc else _read_password(password_stdin)
    user = store.add(username, role, password, actor=current_actor(), source="oidc" if oidc else "local")
    typer.echo(f"added {user.username} ({user.role.value}, {user.source})")


@users_app.command("remove")
def remove(username: str = typer.Argument(..., help="Login name.")) -> None:
    """Remove a user; their open app sessions end at their next request."""
    _store().remove(username, actor=current_actor())
    typer.echo(f"removed {username}")


@users_app.command("set-role")
def set_role(username: str = typer.Argument(..., help="Login name."),
             role: Role = typer.Option(..., "--role", help="New role.")) -> None:
    """Change a user's role (takes effect at their next request)."""
    _store().set_role(username, role, actor=current_actor())
    typer.echo(f"{username} is now {role.value}")


@users_app.command("unlock")
def unlock(username: str = typer.Argument(..., help="Login name.")) -> None:
    """Clear a sign-in lockout after too many failed attempts."""
    _store().unlock(username, actor=current_actor())
    typer.echo(f"unlocked {username}")


@users_app.command("list")
def list_users(json_output: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List users with role, source and lockout state (never passwords or hashes)."""
    rows = _store().list()
    if json_output:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not rows:
        typer.echo("no users; add one with: aiaudit users add NAME --role admin")
        return
    for r in rows:
        typer.echo(f"{r['username']:<32} {r['role']:<9} {r['source']:<6} {'LOCKED' if r['locked'] else ''}")


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
