"""`aiaudit app [--port P]`: the review app for compliance officers (Streamlit)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import typer

from ..config import Settings
from ..errors import AuditInputError
from ..records import Records, current_actor
from ..users import UserStore

APP_MAIN = Path(__file__).resolve().parent.parent.parent / "app" / "asgi.py"  # main.py behind security headers
ADD_USER_HINT = ("no review-app accounts yet: add one with `aiaudit users add NAME --role admin` "
                 "(or start the app with AIAUDIT_ADMIN_USER and AIAUDIT_ADMIN_PASSWORD set)")


def first_admin(settings: Settings) -> str | None:
    """Create the first admin from AIAUDIT_ADMIN_USER/AIAUDIT_ADMIN_PASSWORD when the store is empty.

    Returns a line for the operator, or None when accounts already exist.
    """
    store = UserStore(Records(settings.records_db))
    if store.count():
        return None
    name, password = os.environ.get("AIAUDIT_ADMIN_USER"), os.environ.get("AIAUDIT_ADMIN_PASSWORD")
    if name and password:
        try:
            store.add(name, "admin", password, actor=current_actor())
        except AuditInputError as e:
            raise AuditInputError(str(e), source="AIAUDIT_ADMIN_USER/AIAUDIT_ADMIN_PASSWORD") from None
        return f"created admin account '{name}' from AIAUDIT_ADMIN_USER"
    return ADD_USER_HINT


def demo_hint(settings: Settings) -> str | None:
    """What `aiaudit demo` prints when nobody can sign in to the app yet."""
    return None if UserStore(Records(settings.records_db)).count() else ADD_USER_HINT


def app(port: int = typer.Option(8501, "--port", min=1, max=65535, help="Port to listen on."),
        address: str = typer.Option("127.0.0.1", "--address", help="Interface to bind (default: this machine only).")) -> None:
    """Start the review app (sign-in, inventory, audit view, review decisions, sign-off, export)."""
    settings = Settings.from_env().ensure()
    note = first_admin(settings)
    if note:
        typer.echo(note, err=True)
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP_MAIN), "--server.port", str(port),
           "--server.headless", "true", "--server.address", address, "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal"]
    env = {**os.environ, "AIAUDIT_HOME": str(settings.home)}
    env.pop("AIAUDIT_ADMIN_PASSWORD", None)  # the app never needs it
    typer.echo(f"review app: http://{address}:{port}  (AIAUDIT_HOME={settings.home})", err=True)
    proc = subprocess.Popen(cmd, env=env)
    signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
    raise typer.Exit(0 if code in (0, -signal.SIGINT, -signal.SIGTERM) else code)


def register(typer_app: typer.Typer) -> None:
    typer_app.command("app")(app)
