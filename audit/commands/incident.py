"""`aiaudit incident record|update|status|list|show|export|deadlines`: serious incidents (Art. 73)."""
from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import AuditInputError

incident_app = typer.Typer(help="Serious incidents (Art. 73): record one, track its reporting deadline and status, "
                                "draft the report. Every step is a ledger entry.", no_args_is_help=True)
FORMAT_HELP = "Report format: pdf, docx, html or md."


def _engine():  # noqa: ANN202 - the engine type is imported lazily (CLI start-up time)
    from ..config import Settings
    from ..engine import AuditEngine
    return AuditEngine(Settings.from_env())


def _date(value: Optional[str], option: str) -> Optional[dt.date]:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise AuditInputError(f"{value!r} is not a date (YYYY-MM-DD)", source=option) from None


def _line(i) -> str:  # noqa: ANN001
    from risk.incidents import load_policy
    from ..incidents import deadline_state
    return (f"{i.id}  {i.status:<10} due {i.deadline.due} ({deadline_state(i, load_policy(), 'en')})  "
            f"{', '.join(i.categories)}  {i.title}")


def _print(i, json_output: bool) -> None:  # noqa: ANN001
    if json_output:
        sys.stdout.write(i.model_dump_json(indent=2) + "\n")
    else:
        typer.echo(_line(i))


@incident_app.command("record")
def record(file: Path = typer.Argument(..., help="The incident (YAML or JSON; schema docs/schema/incident.schema.json)."),
           json_output: bool = typer.Option(False, "--json", help="Print the recorded incident as JSON.")) -> None:
    """Record a new incident: validated in full (categories, dates, linked audits and findings) before anything is
    written; prints its id and reporting deadline. Exit 2 on bad input, nothing written."""
    from ..incidents import record_incident
    from ..yamlio import read_yaml
    data = read_yaml(file, "incident")
    _print(record_incident(_engine(), data, what=str(file)), json_output)


@incident_app.command("update")
def update(incident_id: str = typer.Argument(..., help="Incident id (INC-...)."),
           file: Path = typer.Argument(..., help="The fields to change and a 'reason' (YAML or JSON)."),
           json_output: bool = typer.Option(False, "--json")) -> None:
    """Change fields of an incident (e.g. the causal link or corrective actions as the investigation goes on);
    the earlier values stay in its history."""
    from ..incidents import update_incident
    from ..yamlio import read_yaml
    _print(update_incident(_engine(), incident_id, read_yaml(file, "incident update"), what=str(file)), json_output)


@incident_app.command("status")
def status(incident_id: str = typer.Argument(..., help="Incident id (INC-...)."),
           new_status: str = typer.Argument(..., help="New status, as the incident policy's flow allows "
                                                      "(open -> reported -> follow_up -> closed)."),
           note: str = typer.Option(..., "--note", help="What was done, e.g. to which authority the report went."),
           on: Optional[str] = typer.Option(None, "--on", help="The day it happened, YYYY-MM-DD (default: today)."),
           json_output: bool = typer.Option(False, "--json")) -> None:
    """Move an incident along its status flow; moving it to 'reported' stops its deadline on the --on day."""
    from ..incidents import change_status
    _print(change_status(_engine(), incident_id, new_status, note, _date(on, "--on")), json_output)


@incident_app.command("list")
def list_(json_output: bool = typer.Option(False, "--json"),
          as_of: Optional[str] = typer.Option(None, "--as-of", help="Count days left as of this day (YYYY-MM-DD)."),
          fail_on_overdue: bool = typer.Option(False, "--fail-on-overdue",
                                               help="Exit 1 when an incident is past its deadline unreported.")) -> None:
    """Every incident, the most urgent first, with its deadline and days left."""
    from ..incidents import list_incidents
    engine, day = _engine(), _date(as_of, "--as-of")
    incidents = list_incidents(engine.records, as_of=day) if engine.settings.records_db.is_file() else []
    if json_output:
        sys.stdout.write(json.dumps([i.model_dump(mode="json") for i in incidents], indent=2) + "\n")
    else:
        typer.echo("\n".join(map(_line, incidents)) or "no incidents recorded")
    if fail_on_overdue and any(i.overdue for i in incidents):
        raise typer.Exit(1)


@incident_app.command("show")
def show(incident_id: str = typer.Argument(..., help="Incident id (INC-...)."),
         json_output: bool = typer.Option(False, "--json"),
         as_of: Optional[str] = typer.Option(None, "--as-of", help="Count days left as of this day (YYYY-MM-DD).")) -> None:
    """One incident: its fields, deadline, history (with ledger entries) and the reminders of Art. 73."""
    from risk.incidents import load_policy
    from ..incidents import existing_records, get_incident
    policy = load_policy()
    i = get_incident(existing_records(_engine(), incident_id), incident_id, policy, _date(as_of, "--as-of"))
    if json_output:
        _print(i, True)
        return
    typer.echo(_line(i))
    for key in ("description", "aware_on", "occurred_on", "affected_count", "causal_link", "corrective_actions",
                "audits", "findings"):
        if (v := getattr(i, key)) not in (None, [], ""):
            typer.echo(f"  {key}: {', '.join(map(str, v)) if isinstance(v, list) else v}")
    typer.echo(f"  deadline: {i.deadline.due} ({i.deadline.days} days, {i.deadline.basis.en}, {i.deadline.category})")
    for e in i.history:
        typer.echo(f"  #{e.seq} {e.ts} {e.actor} ({e.role}) {e.event} {e.entry_hash[:12]}")
    for r in policy.reminders:
        typer.echo(f"  note: {r.en} ({r.basis.en})")


@incident_app.command("export")
def export(incident_id: str = typer.Argument(..., help="Incident id (INC-...)."),
           out: Path = typer.Option(..., "--out", help="Output file, or a directory to write "
                                                       "<id>_incident-report_<lang>.<ext> into."),
           fmt: str = typer.Option("pdf", "--format", help=FORMAT_HELP),
           lang: str = typer.Option("en", "--lang", help="en or ko."),
           as_of: Optional[str] = typer.Option(None, "--as-of", help="Count days left as of this day (YYYY-MM-DD).")) -> None:
    """Draft the incident report in the structure of Art. 73 (initial or complete, by status), with an evidence
    manifest that `aiaudit verify` checks; the export is logged to the ledger."""
    from ..documents.incident_report import export as export_report
    typer.echo(f"wrote {export_report(_engine(), incident_id, fmt, lang, out, as_of=_date(as_of, '--as-of'))}")


@incident_app.command("deadlines")
def deadlines(lang: str = typer.Option("en", "--lang", help="en or ko.")) -> None:
    """The harm categories and their reporting deadlines, from the incident policy."""
    from risk.incidents import deadline_table, load_policy
    typer.echo(deadline_table(load_policy(), lang), nl=False)


def register(app: typer.Typer) -> None:
    app.add_typer(incident_app, name="incident")
