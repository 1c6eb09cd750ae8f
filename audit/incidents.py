"""Serious incidents (Art. 73): record one, compute its reporting deadline, track its status, draft the report.

The law (harm categories, deadlines, status flow, report sections) is read from the incident policy
(`risk.incidents`); this module keeps the record.  An incident is a fold over append-only events
(`incident_events`, SQLite triggers refuse UPDATE and DELETE); each event is written in the same transaction
as its ledger entry (subject = the incident id) and keeps that entry's sequence number and hash, so
`verify_incident` shows any row that no longer says what the ledger recorded.  Everything is validated --
fields, categories, dates, links to audits, monitoring windows and findings -- before the store is opened
for writing: bad input raises `AuditInputError` and writes nothing.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from risk.incidents import Deadline, IncidentError, IncidentPolicy, days_remaining, governing_deadline, load_policy

from .errors import AuditInputError
from .records import Records, current_actor

SCHEMA = """
CREATE TABLE IF NOT EXISTS incident_events (
    id INTEGER PRIMARY KEY,
    incident_id TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    ts TEXT NOT NULL,
    ledger_seq INTEGER NOT NULL,
    entry_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incident_events_id ON incident_events(incident_id, id);
CREATE TRIGGER IF NOT EXISTS incident_events_no_update BEFORE UPDATE ON incident_events
BEGIN SELECT RAISE(ABORT, 'incident_events is append-only'); END;
CREATE TRIGGER IF NOT EXISTS incident_events_no_delete BEFORE DELETE ON incident_events
BEGIN SELECT RAISE(ABORT, 'incident_events is append-only'); END;
"""
OPERATOR = "operator"  # the role the ledger names for the CLI: whoever runs it on the store's machine


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=3, max_length=200, description="One line naming the incident.")
    description: str = Field(min_length=10, max_length=20_000, description="What happened.")
    aware_on: dt.date = Field(description="The day the provider (or deployer) became aware of it: the deadline "
                                          "counts from here.")
    occurred_on: dt.date | None = Field(None, description="The day it happened, when known.")
    categories: list[str] = Field(min_length=1, description="Harm categories (keys of the incident policy); the "
                                                            "earliest deadline among them governs.")
    affected_count: int | None = Field(None, ge=0, description="Number of persons affected, when known.")
    affected_description: str | None = Field(None, max_length=5000, description="Who was affected.")
    causal_link: str | None = Field(None, max_length=5000, description="What links the AI system to the incident "
                                                                       "(established, or reasonably likely).")
    corrective_actions: str | None = Field(None, max_length=10_000, description="Corrective actions taken or planned.")
    provider: str | None = Field(None, max_length=300)
    deployer: str | None = Field(None, max_length=300)
    member_states: list[str] = Field(default_factory=list, description="ISO 3166-1 alpha-2 codes of the Member "
                                                                       "States where it occurred.")
    system: str | None = Field(None, max_length=300, description="The AI system, as the authorities know it.")
    audits: list[str] = Field(default_factory=list, description="Ids of stored audits or monitoring windows that "
                                                                "bear on the incident.")
    findings: list[str] = Field(default_factory=list, description="Linked findings as AUDIT_ID/FINDING_ID.")

    @field_validator("member_states")
    @classmethod
    def _states(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if not (len(s) == 2 and s.isalpha() and s.isupper())]
        if bad:
            raise ValueError(f"member state {bad[0]!r} is not an ISO 3166-1 alpha-2 code such as DE or FR")
        return sorted(set(v))

    @field_validator("categories", "audits", "findings")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(x.strip() for x in v))

    @model_validator(mode="after")
    def _dates(self) -> "_Fields":
        if self.occurred_on and self.occurred_on > self.aware_on:
            raise ValueError(f"occurred_on {self.occurred_on} is after aware_on {self.aware_on}")
        return self


class IncidentInput(_Fields):
    """A new incident (`aiaudit incident record FILE`, the app's form); JSON Schema in schemas/."""


class IncidentUpdate(BaseModel):
    """Fields to change on an incident (the rest stay as they are); `categories` recomputes the deadline."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str | None = Field(None, min_length=3, max_length=200)
    description: str | None = Field(None, min_length=10, max_length=20_000)
    aware_on: dt.date | None = None
    occurred_on: dt.date | None = None
    categories: list[str] | None = Field(None, min_length=1)
    affected_count: int | None = Field(None, ge=0)
    affected_description: str | None = Field(None, max_length=5000)
    causal_link: str | None = Field(None, max_length=5000)
    corrective_actions: str | None = Field(None, max_length=10_000)
    provider: str | None = Field(None, max_length=300)
    deployer: str | None = Field(None, max_length=300)
    member_states: list[str] | None = None
    system: str | None = Field(None, max_length=300)
    audits: list[str] | None = None
    findings: list[str] | None = None
    reason: str = Field(min_length=10, max_length=5000, description="Why the record changes.")


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    status: str
    note: str = Field(min_length=10, max_length=5000, description="What was done (e.g. to whom the report went).")
    on: dt.date = Field(description="The day it happened (for a report: the day it reached the authority).")


class Event(BaseModel):
    seq: int
    ts: str
    actor: str
    role: str
    event: str
    payload: dict[str, Any]
    entry_hash: str


class Incident(_Fields):
    """An incident as its events leave it, with its deadline as of a given day."""

    model_config = ConfigDict(extra="forbid")

    id: str
    status: str
    recorded_at: str
    recorded_by: str
    submitted: bool
    reported_on: dt.date | None = Field(description="The day the (initial) report reached the authority.")
    deadline: Deadline
    as_of: dt.date
    days_left: int = Field(description="Days from as_of to the deadline (negative: overdue); frozen at the report date "
                                       "once reported.")
    overdue: bool = Field(description="Past the deadline with no report submitted.")
    late: bool = Field(description="Reported after the deadline.")
    history: list[Event]


def _error(e: ValidationError, what: str) -> AuditInputError:
    err = e.errors()[0]
    where = ".".join(str(x) for x in err["loc"])
    msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
    return AuditInputError(f"{where + ': ' if where else ''}{msg}", source=what)


def _parse(model: type[BaseModel], data: Any, what: str) -> Any:
    if isinstance(data, model):
        return data
    if not isinstance(data, dict):
        raise AuditInputError("expected a mapping of incident fields", source=what)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise _error(e, what) from None


def ensure_schema(records: Records) -> None:
    with records.connect() as con:
        con.executescript(SCHEMA)


def _today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def _check_fields(engine: Any, fields: _Fields, policy: IncidentPolicy, today: dt.date, what: str) -> None:
    """The policy knows every category, no date lies ahead, and every linked audit and finding is in the store."""
    try:
        for c in fields.categories:
            policy.category(c)
    except IncidentError as e:
        raise AuditInputError(str(e), source=what) from None
    for name in ("aware_on", "occurred_on"):
        d = getattr(fields, name)
        if d and d > today:
            raise AuditInputError(f"{name} {d} is in the future (today is {today})", source=what)
    stored = engine.settings.records_db.is_file()
    for audit_id in fields.audits:
        if not stored or engine.records.get_audit(audit_id) is None:
            raise AuditInputError(f"audits: no audit or monitoring window {audit_id!r} in this store", source=what)
    for ref in fields.findings:
        audit_id, sep, finding_id = ref.partition("/")
        if not sep or not finding_id:
            raise AuditInputError(f"findings: {ref!r} is not AUDIT_ID/FINDING_ID", source=what)
        if not stored or engine.records.get_audit(audit_id) is None:
            raise AuditInputError(f"findings: no audit {audit_id!r} in this store", source=what)
        if finding_id not in {f.id for f in engine.load_result(audit_id).findings}:
            raise AuditInputError(f"findings: audit {audit_id} has no finding {finding_id!r}", source=what)


def existing_records(engine: Any, incident_id: str) -> Records:
    """The store's records, without creating a store that does not exist (then there is no such incident)."""
    if not engine.settings.records_db.is_file():
        raise AuditInputError("no such incident (the store has no records)", source=incident_id)
    return engine.records


def _who(engine: Any, user: Any, action: str, actor: str | None, role: str) -> tuple[str, str]:
    """A signed-in app user acts under their own name and role (checked against the store); the CLI as operator."""
    if user is None:
        return actor or current_actor(), role
    from .review import authorize
    u = authorize(engine.records, user, action)
    return u.actor, u.role.value


def _write(engine: Any, incident_id: str, event: str, payload: dict[str, Any], actor: str, role: str,
           after: Incident | None = None) -> None:
    """One event and its ledger entry in one transaction; `after` is the state the change was decided on, refused
    if another event landed since (two approvers reporting at once)."""
    records = engine.records
    ensure_schema(records)
    body = {**payload, "role": role}
    with records.transaction() as con:
        if after is not None:
            last = con.execute("SELECT MAX(ledger_seq) FROM incident_events WHERE incident_id = ?",
                               (incident_id,)).fetchone()[0]
            if last != after.history[-1].seq:
                raise AuditInputError("the incident changed while this change was made; reload it and try again",
                                      source=incident_id)
        entry = records.append(con, f"incident.{event}", incident_id, body, actor=actor)
        con.execute("INSERT INTO incident_events (incident_id, event, payload, actor, role, ts, ledger_seq, entry_hash)"
                    " VALUES (?,?,?,?,?,?,?,?)", (incident_id, event, json.dumps(body, sort_keys=True, default=str),
                                                  actor, role, entry.ts, entry.seq, entry.entry_hash))


def record_incident(engine: Any, data: IncidentInput | dict[str, Any], *, user: Any = None, actor: str | None = None,
                    role: str = OPERATOR, policy: IncidentPolicy | None = None, today: dt.date | None = None,
                    what: str = "incident") -> Incident:
    """Validate and record a new incident; its status is the policy's initial one."""
    actor, role = _who(engine, user, "incident.record", actor, role)
    policy = policy or load_policy()
    today = today or _today()
    fields = _parse(IncidentInput, data, what)
    _check_fields(engine, fields, policy, today, what)
    incident_id = f"INC-{today:%Y%m%d}-{uuid.uuid4().hex[:8]}"
    _write(engine, incident_id, "recorded", {"fields": fields.model_dump(mode="json"),
                                             "status": policy.initial_status.key, "policy_sha256": policy.sha256},
           actor, role)
    return get_incident(engine.records, incident_id, policy, today)


def update_incident(engine: Any, incident_id: str, data: IncidentUpdate | dict[str, Any], *, user: Any = None,
                    actor: str | None = None, role: str = OPERATOR, policy: IncidentPolicy | None = None,
                    today: dt.date | None = None, what: str = "incident update") -> Incident:
    """Change fields of an incident (a new event; the earlier values stay in its history)."""
    actor, role = _who(engine, user, "incident.record", actor, role)
    policy = policy or load_policy()
    today = today or _today()
    update = _parse(IncidentUpdate, data, what)
    current = get_incident(existing_records(engine, incident_id), incident_id, policy, today)
    changes = {k: v for k, v in update.model_dump(mode="json", exclude_unset=True).items() if k != "reason"}
    if not changes:
        raise AuditInputError("no field to change", source=what)
    merged = {**current.model_dump(mode="json", include=set(_Fields.model_fields)), **changes}
    fields = _parse(IncidentInput, merged, what)
    _check_fields(engine, fields, policy, today, what)
    if current.submitted and fields.aware_on != current.aware_on:
        raise AuditInputError("aware_on cannot change once the report is submitted", source=what)
    _write(engine, incident_id, "updated", {"changes": fields.model_dump(mode="json", include=set(changes)),
                                            "reason": update.reason}, actor, role, after=current)
    return get_incident(engine.records, incident_id, policy, today)


def change_status(engine: Any, incident_id: str, status: str, note: str, on: dt.date | None = None, *,
                  user: Any = None, actor: str | None = None, role: str = OPERATOR,
                  policy: IncidentPolicy | None = None, today: dt.date | None = None) -> Incident:
    """Move an incident along the policy's status flow (e.g. open -> reported on the day the report went out)."""
    actor, role = _who(engine, user, "incident.change_status", actor, role)
    policy = policy or load_policy()
    today = today or _today()
    change = _parse(StatusChange, {"status": status, "note": note or "", "on": on or today}, "status change")
    current = get_incident(existing_records(engine, incident_id), incident_id, policy, today)
    try:
        policy.check_transition(current.status, change.status)
    except IncidentError as e:
        raise AuditInputError(str(e), source=incident_id) from None
    if change.on > today:
        raise AuditInputError(f"on {change.on} is in the future (today is {today})", source=incident_id)
    if change.on < current.aware_on:
        raise AuditInputError(f"on {change.on} is before the day of awareness {current.aware_on}", source=incident_id)
    _write(engine, incident_id, "status_changed", {"from": current.status, "status": change.status, "note": change.note,
                                                   "on": change.on.isoformat()}, actor, role, after=current)
    return get_incident(engine.records, incident_id, policy, today)


def deadline_state(incident: Incident, policy: IncidentPolicy, lang: str) -> str:
    """Days left, overdue, or when the report went out (in time or late), in words."""
    lab = policy.label
    if incident.reported_on is not None:
        late = -incident.days_left
        return (lab("submitted_late", lang, date=incident.reported_on.isoformat(), n=late) if incident.late
                else lab("submitted_on_time", lang, date=incident.reported_on.isoformat()))
    if incident.days_left == 0:
        return lab("due_today", lang)
    if incident.days_left < 0:
        return f"{lab('overdue', lang)}: {lab('days_overdue', lang, n=-incident.days_left)}"
    return lab("days_left", lang, n=incident.days_left)


def _events(records: Records, incident_id: str | None = None) -> list[dict[str, Any]]:
    if not records.db_path.is_file():
        return []
    ensure_schema(records)
    with records.connect() as con:
        sql, args = "SELECT * FROM incident_events", ()
        if incident_id is not None:
            sql, args = sql + " WHERE incident_id = ?", (incident_id,)
        return [dict(r) for r in con.execute(sql + " ORDER BY id", args).fetchall()]


def _fold(rows: list[dict[str, Any]], policy: IncidentPolicy, as_of: dt.date) -> Incident:
    first = rows[0]
    start = json.loads(first["payload"])
    fields, status, reported_on = dict(start["fields"]), start["status"], None
    history = []
    for r in rows:
        p = json.loads(r["payload"])
        history.append(Event(seq=r["ledger_seq"], ts=r["ts"], actor=r["actor"], role=r["role"], event=r["event"],
                             payload=p, entry_hash=r["entry_hash"]))
        if r["event"] == "updated":
            fields.update(p["changes"])
        elif r["event"] == "status_changed":
            status = p["status"]
            if reported_on is None and policy.status(status).submitted:
                reported_on = dt.date.fromisoformat(p["on"])
    parsed = IncidentInput.model_validate(fields)
    deadline = governing_deadline(policy, parsed.categories, parsed.aware_on)
    left = days_remaining(deadline.due, reported_on or as_of)
    submitted = policy.status(status).submitted
    return Incident(**parsed.model_dump(), id=first["incident_id"], status=status, recorded_at=first["ts"],
                    recorded_by=first["actor"], submitted=submitted, reported_on=reported_on, deadline=deadline,
                    as_of=as_of, days_left=left, overdue=not submitted and left < 0,
                    late=reported_on is not None and left < 0, history=history)


def get_incident(records: Records, incident_id: str, policy: IncidentPolicy | None = None,
                 as_of: dt.date | None = None) -> Incident:
    rows = _events(records, incident_id)
    if not rows:
        raise AuditInputError("no such incident", source=incident_id)
    return _fold(rows, policy or load_policy(), as_of or _today())


def list_incidents(records: Records, policy: IncidentPolicy | None = None, as_of: dt.date | None = None) -> list[Incident]:
    """Every incident, the most urgent first: overdue, then open by deadline, then submitted ones."""
    policy, as_of = policy or load_policy(), as_of or _today()
    by_id: dict[str, list[dict[str, Any]]] = {}
    for r in _events(records):
        by_id.setdefault(r["incident_id"], []).append(r)
    incidents = [_fold(rows, policy, as_of) for rows in by_id.values()]
    return sorted(incidents, key=lambda i: (i.submitted, i.deadline.due, i.recorded_at))


def incident_ids(records: Records) -> list[str]:
    """Every incident the ledger knows (rows deleted with their ids still show here)."""
    with records.connect() as con:
        return [r[0] for r in con.execute("SELECT DISTINCT subject FROM ledger WHERE event LIKE 'incident.%' "
                                          "ORDER BY subject")]


def verify_incident(records: Records, incident_id: str) -> list[str]:
    """Compare an incident's rows with the ledger entries they cite; [] when all match."""
    rows = _events(records, incident_id)
    with records.connect() as con:
        ledger = {r["seq"]: dict(r) for r in con.execute("SELECT * FROM ledger WHERE subject = ?",
                                                          (incident_id,)).fetchall()}
    problems = []
    for r in rows:
        e = ledger.get(r["ledger_seq"])
        if (e is None or e["entry_hash"] != r["entry_hash"] or e["event"] != f"incident.{r['event']}"
                or e["actor"] != r["actor"] or json.loads(e["payload"]) != json.loads(r["payload"])):
            problems.append(f"incident event {r['event']} (ledger entry {r['ledger_seq']}) differs from the ledger")
    recorded = {r["ledger_seq"] for r in rows}
    for seq, e in sorted(ledger.items()):
        if e["event"].startswith("incident.") and seq not in recorded:
            problems.append(f"ledger entry {seq} ({e['event']}) has no incident row")
    return problems
