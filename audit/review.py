"""Review workflow: permissions, finding dispositions, sign-off, promotion, audit comparison.

Everything the review app can change goes through this module, so roles are enforced
here (not only in the UI).  Each write is a single `Records.transaction` that also
appends a ledger entry; the rows keep the ledger sequence number and entry hash, and
`verify_review` checks that the rows still say what the ledger recorded, so a decision
cannot be changed without it showing.  Disposition and sign-off rows are append-only
(SQLite triggers); a new decision supersedes an old one, it never overwrites it.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import AuditInputError, IntegrityError
from .records import Records, now_iso
from .users import Role, User, UserStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS dispositions (
    id INTEGER PRIMARY KEY,
    audit_id TEXT NOT NULL,
    finding_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    rationale TEXT NOT NULL,
    owner TEXT,
    due_date TEXT,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    ts TEXT NOT NULL,
    finding_status TEXT NOT NULL,
    finding_severity TEXT NOT NULL,
    finding_value REAL,
    carried_from TEXT,
    ledger_seq INTEGER NOT NULL,
    entry_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dispositions_audit ON dispositions(audit_id, finding_id, id);
CREATE TABLE IF NOT EXISTS signoffs (
    id INTEGER PRIMARY KEY,
    audit_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    ts TEXT NOT NULL,
    comment TEXT NOT NULL,
    audit_sha256 TEXT NOT NULL,
    audit_status TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    dispositions INTEGER NOT NULL,
    self_review INTEGER NOT NULL,
    ledger_seq INTEGER NOT NULL,
    entry_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS signoffs_audit ON signoffs(audit_id, id);
CREATE TABLE IF NOT EXISTS signoff_revocations (
    signoff_id INTEGER PRIMARY KEY,
    audit_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    ts TEXT NOT NULL,
    rationale TEXT NOT NULL,
    ledger_seq INTEGER NOT NULL,
    entry_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS promotions (
    id INTEGER PRIMARY KEY,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    alias TEXT NOT NULL,
    audit_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    ts TEXT NOT NULL,
    ledger_seq INTEGER NOT NULL,
    entry_hash TEXT NOT NULL
);
"""
_APPEND_ONLY = ("dispositions", "signoffs", "signoff_revocations", "promotions")
TRIGGERS = "".join(
    f"CREATE TRIGGER IF NOT EXISTS {t}_no_update BEFORE UPDATE ON {t} BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END;\n"
    f"CREATE TRIGGER IF NOT EXISTS {t}_no_delete BEFORE DELETE ON {t} BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END;\n"
    for t in _APPEND_ONLY)

OPEN_STATUSES = ("warn", "fail", "error")
BLOCKING_SEVERITIES = ("high", "critical")
SIGNED_OFF = "signed_off"

# action -> lowest role allowed (roles are ordered viewer < reviewer < approver < admin)
ACTIONS: dict[str, Role] = {
    "audit.view": Role.viewer,
    "document.export": Role.viewer,
    "disposition.record": Role.reviewer,
    "audit.start": Role.reviewer,
    "audit.sign_off": Role.approver,
    "audit.revoke_sign_off": Role.approver,
    "model.promote": Role.approver,
    "incident.record": Role.reviewer,
    "incident.change_status": Role.approver,
    "users.manage": Role.admin,
}


class PermissionDenied(Exception):
    """The signed-in user's role does not allow the action."""


class ReviewError(AuditInputError):
    """A review action that the rules forbid (e.g. sign-off with undecided findings)."""


class PromotionRefused(Exception):
    """`aiaudit promote` refuses a model version without a valid sign-off."""


def ensure_schema(records: Records) -> None:
    with records.connect() as con:
        con.executescript(SCHEMA + TRIGGERS)


def can(user: User | None, action: str) -> bool:
    if action not in ACTIONS:
        raise KeyError(f"unknown action {action!r}")
    return user is not None and user.role.rank >= ACTIONS[action].rank


def require(user: User | None, action: str) -> User:
    """Raise PermissionDenied unless `user` may perform `action`."""
    if user is None:
        raise PermissionDenied("sign-in required")
    if not can(user, action):
        raise PermissionDenied(f"role '{user.role.value}' may not {action} (needs {ACTIONS[action].value} or higher)")
    return user


def authorize(records: Records, user: User | None, action: str) -> User:
    """Re-read the user from the store, so a removed or demoted account loses its rights at once."""
    require(user, action)
    current = UserStore(records).get(user.username)
    if current is None:
        raise PermissionDenied("account no longer exists")
    return require(current, action)


# user management from the app (the CLI's `aiaudit users` runs as the machine's operator) -------
def manage_users(records: Records, user: User | None, op: str, username: str, role: str | None = None,
                 password: str | None = None, source: str = "local") -> None:
    """Admin-only: add, remove, set_role or unlock an account; an admin cannot lock themself out."""
    admin = authorize(records, user, "users.manage")
    store = UserStore(records)
    if op in ("remove", "set_role") and username == admin.username:
        raise ReviewError("you cannot remove or re-role your own account", source=username)
    if op == "add":
        store.add(username, role or Role.viewer, password, actor=admin.actor, source=source)
    elif op == "remove":
        store.remove(username, actor=admin.actor)
    elif op == "set_role":
        store.set_role(username, role, actor=admin.actor)
    elif op == "unlock":
        store.unlock(username, actor=admin.actor)
    else:
        raise ReviewError(f"unknown operation {op!r}")


# dispositions ----------------------------------------------------------------------------
class DispositionKind(str, Enum):
    accept_risk = "accept_risk"
    mitigation_planned = "mitigation_planned"
    false_positive = "false_positive"
    retest = "retest"


class DispositionInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: DispositionKind
    rationale: str = Field(min_length=10, max_length=5000, description="Why this decision is justified.")
    owner: str | None = Field(None, max_length=200)
    due_date: date | None = None

    @field_validator("owner")
    @classmethod
    def _blank_owner(cls, v: str | None) -> str | None:
        return v or None

    @model_validator(mode="after")
    def _mitigation_needs_owner_and_date(self) -> "DispositionInput":
        if self.kind == DispositionKind.mitigation_planned:
            if not self.owner or self.due_date is None:
                raise ValueError("a planned mitigation needs an owner and a due date")
        elif self.kind != DispositionKind.retest:  # owner and date only mean something for planned work
            self.owner, self.due_date = None, None
        return self


def _validate_disposition(kind: str, rationale: str, owner: str | None, due_date: date | str | None) -> DispositionInput:
    from pydantic import ValidationError
    try:
        return DispositionInput(kind=kind, rationale=rationale or "", owner=owner, due_date=due_date or None)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise ReviewError(f"{where + ': ' if where else ''}{err['msg'].removeprefix('Value error, ')}") from None


def _finding(result: Any, finding_id: str) -> Any:
    for f in result.findings:
        if f.id == finding_id:
            return f
    raise ReviewError("no such finding in this audit", source=finding_id)


def record_disposition(engine: Any, user: User | None, audit_id: str, finding_id: str, kind: str,
                       rationale: str, owner: str | None = None, due_date: date | str | None = None,
                       carried_from: str | None = None) -> dict[str, Any]:
    """Record a reviewer's decision on one finding (a later decision supersedes, never overwrites)."""
    records = engine.records
    ensure_schema(records)
    user = authorize(records, user, "disposition.record")
    d = _validate_disposition(kind, rationale, owner, due_date)
    result = engine.load_result(audit_id)
    f = _finding(result, finding_id)
    with records.transaction() as con:
        if _active_signoff(con, audit_id):
            raise ReviewError("this audit is signed off; its dispositions are frozen (revoke the sign-off first)",
                              source=audit_id)
        payload = {"finding": f.id, "kind": d.kind.value, "rationale": d.rationale, "owner": d.owner,
                   "due_date": d.due_date.isoformat() if d.due_date else None, "finding_status": f.status.value,
                   "finding_severity": f.severity.value, "finding_value": f.value, "carried_from": carried_from,
                   "role": user.role.value}
        entry = records.append(con, "disposition.recorded", audit_id, payload, actor=user.actor)
        con.execute("INSERT INTO dispositions (audit_id, finding_id, kind, rationale, owner, due_date, actor, role, ts,"
                    " finding_status, finding_severity, finding_value, carried_from, ledger_seq, entry_hash)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (audit_id, f.id, d.kind.value, d.rationale, d.owner, payload["due_date"], user.actor,
                     user.role.value, entry.ts, f.status.value, f.severity.value, f.value, carried_from,
                     entry.seq, entry.entry_hash))
    return {**payload, "audit_id": audit_id, "finding_id": f.id, "actor": user.actor, "ts": entry.ts,
            "ledger_seq": entry.seq}


def _disposition_rows(records: Records, audit_id: str) -> list[dict[str, Any]]:
    ensure_schema(records)
    with records.connect() as con:
        return [dict(r) for r in con.execute("SELECT * FROM dispositions WHERE audit_id = ? ORDER BY id",
                                             (audit_id,)).fetchall()]


def current_dispositions(records: Records, audit_id: str) -> dict[str, dict[str, Any]]:
    """The latest disposition per finding id."""
    return {r["finding_id"]: r for r in _disposition_rows(records, audit_id)}


def disposition_history(records: Records, audit_id: str, finding_id: str | None = None) -> list[dict[str, Any]]:
    rows = _disposition_rows(records, audit_id)
    return [r for r in rows if finding_id is None or r["finding_id"] == finding_id]


def is_open(f: Any) -> bool:
    return _val(f.status) in OPEN_STATUSES


def needs_disposition(f: Any) -> bool:
    """High or critical findings that did not pass must be decided before sign-off."""
    return is_open(f) and _val(f.severity) in BLOCKING_SEVERITIES


def signoff_blockers(result: Any, dispositions: dict[str, Any]) -> list[Any]:
    return [f for f in result.findings if needs_disposition(f) and f.id not in dispositions]


def open_findings_by_severity(result: Any, dispositions: dict[str, Any]) -> dict[str, int]:
    """Non-passing findings without a disposition, counted by severity."""
    counts: dict[str, int] = {}
    for f in result.findings:
        if is_open(f) and f.id not in dispositions:
            counts[_val(f.severity)] = counts.get(_val(f.severity), 0) + 1
    return counts


def _val(x: Any) -> str:
    return x.value if isinstance(x, Enum) else str(x)


# sign-off ----------------------------------------------------------------------------------
def _active_signoff(con: Any, audit_id: str) -> dict[str, Any] | None:
    r = con.execute("SELECT s.* FROM signoffs s LEFT JOIN signoff_revocations v ON v.signoff_id = s.id "
                    "WHERE s.audit_id = ? AND v.signoff_id IS NULL ORDER BY s.id DESC LIMIT 1", (audit_id,)).fetchone()
    return dict(r) if r else None


def get_signoff(records: Records, audit_id: str) -> dict[str, Any] | None:
    """The audit's current (not revoked) sign-off: who, when, on which audit.json hash; None if none."""
    ensure_schema(records)
    with records.connect() as con:
        row = _active_signoff(con, audit_id)
    if row is None:
        return None
    return {"audit_id": audit_id, "decision": "approved", "signed_off_by": row["actor"].split(":", 1)[-1], "actor": row["actor"],
            "role": row["role"], "signed_off_at": row["ts"], "comment": row["comment"],
            "audit_sha256": row["audit_sha256"], "audit_status": row["audit_status"],
            "model_name": row["model_name"], "model_version": row["model_version"],
            "dispositions": row["dispositions"], "self_review": bool(row["self_review"]),
            "ledger_seq": row["ledger_seq"], "entry_hash": row["entry_hash"]}


def _check_audit_file(engine: Any, audit_id: str) -> dict[str, Any]:
    from .model_io import sha256_file
    row = engine.records.get_audit(audit_id)
    if row is None:
        raise ReviewError("no such audit", source=audit_id)
    if sha256_file(Path(row["path"]) / "audit.json") != row["audit_sha256"]:
        raise IntegrityError(f"{audit_id}: audit.json no longer matches the SHA-256 recorded when the audit completed")
    return row


def latest_audit(records: Records, model_name: str, model_version: str, kind: str = "audit") -> dict[str, Any] | None:
    """The version's newest audit (or monitoring window, kind "monitor"): windows never displace an audit."""
    with records.connect() as con:
        r = con.execute("SELECT * FROM audits WHERE model_name = ? AND model_version = ? AND kind = ? "
                        "ORDER BY created_at DESC, rowid DESC LIMIT 1", (model_name, str(model_version), kind)).fetchone()
    return dict(r) if r else None


def sign_off(engine: Any, user: User | None, audit_id: str, comment: str = "") -> dict[str, Any]:
    """Approve an audit: all high/critical open findings decided, files intact, record + MLflow tags."""
    records = engine.records
    ensure_schema(records)
    user = authorize(records, user, "audit.sign_off")
    row = _check_audit_file(engine, audit_id)
    latest = latest_audit(records, row["model_name"], row["model_version"], row["kind"])
    if latest and latest["audit_id"] != audit_id:
        raise ReviewError(f"a newer audit ({latest['audit_id']}) of {row['model_uri']} exists; review and sign off that one",
                          source=audit_id)
    result = engine.load_result(audit_id)
    _check_ledger(records, audit_id, IntegrityError)
    comment = (comment or "").strip()[:5000]
    with records.transaction() as con:
        if _active_signoff(con, audit_id):
            raise ReviewError("this audit is already signed off", source=audit_id)
        disp = {r["finding_id"]: dict(r) for r in con.execute(
            "SELECT * FROM dispositions WHERE audit_id = ? ORDER BY id", (audit_id,)).fetchall()}
        blockers = signoff_blockers(result, disp)
        if blockers:
            names = ", ".join(f.id for f in blockers[:5]) + (" …" if len(blockers) > 5 else "")
            raise ReviewError(f"{len(blockers)} high or critical finding(s) have no disposition: {names}", source=audit_id)
        self_review = any(d["actor"] == user.actor for d in disp.values())
        payload = {"audit_sha256": row["audit_sha256"], "audit_status": result.status,
                   "model": row["model_uri"], "comment": comment, "role": user.role.value, "self_review": self_review,
                   "dispositions": {fid: d["ledger_seq"] for fid, d in sorted(disp.items())}}
        entry = records.append(con, "audit.signed_off", audit_id, payload, actor=user.actor)
        con.execute("INSERT INTO signoffs (audit_id, actor, role, ts, comment, audit_sha256, audit_status, model_name,"
                    " model_version, dispositions, self_review, ledger_seq, entry_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (audit_id, user.actor, user.role.value, entry.ts, comment, row["audit_sha256"], result.status,
                     row["model_name"], row["model_version"], len(disp), int(self_review), entry.seq, entry.entry_hash))
        records.update_audit_status(con, audit_id, SIGNED_OFF)
    signoff = get_signoff(records, audit_id)
    signoff["registry_synced"] = sync_registry_tags(engine, audit_id)
    return signoff


def revoke_signoff(engine: Any, user: User | None, audit_id: str, rationale: str) -> None:
    """Withdraw a sign-off (recorded, never erased); the audit returns to its original status."""
    records = engine.records
    ensure_schema(records)
    user = authorize(records, user, "audit.revoke_sign_off")
    rationale = (rationale or "").strip()
    if len(rationale) < 10:
        raise ReviewError("a revocation needs a rationale of at least 10 characters")
    with records.transaction() as con:
        active = _active_signoff(con, audit_id)
        if not active:
            raise ReviewError("this audit is not signed off", source=audit_id)
        entry = records.append(con, "audit.signoff_revoked", audit_id,
                               {"signoff_seq": active["ledger_seq"], "rationale": rationale, "role": user.role.value},
                               actor=user.actor)
        con.execute("INSERT INTO signoff_revocations VALUES (?,?,?,?,?,?,?)",
                    (active["id"], audit_id, user.actor, entry.ts, rationale, entry.seq, entry.entry_hash))
        records.update_audit_status(con, audit_id, active["audit_status"])
    sync_registry_tags(engine, audit_id)


def resync_registry(engine: Any, user: User | None, audit_id: str) -> bool:
    """Approver action: rewrite the MLflow tags from the records (after the registry was unreachable)."""
    authorize(engine.records, user, "audit.sign_off")
    return sync_registry_tags(engine, audit_id)


def sync_registry_tags(engine: Any, audit_id: str) -> bool:
    """Write the sign-off state to the MLflow model-version tags; False when the registry is unreachable."""
    from . import checkpoints
    row = engine.records.get_audit(audit_id)
    signoff = get_signoff(engine.records, audit_id)
    name, version = row["model_name"], row["model_version"]
    anchor = {checkpoints.TAG: checkpoints.make(engine.records, engine.settings.home).dumps()}
    try:
        client = engine.registry.client
        if row["kind"] == "monitor":  # a reviewed window never replaces the version's audit tags
            engine.registry.set_version_tags(name, version, {
                "aiaudit.monitor_id": audit_id, "aiaudit.monitor_status": SIGNED_OFF if signoff else row["status"],
                **anchor})
        elif signoff:
            engine.registry.set_version_tags(name, version, {
                "aiaudit.status": SIGNED_OFF, "aiaudit.signed_off_by": signoff["signed_off_by"],
                "aiaudit.signed_off_at": signoff["signed_off_at"], "aiaudit.signoff_audit_id": audit_id,
                "aiaudit.audit_id": audit_id, **anchor})
        else:
            engine.registry.set_version_tags(name, version, {"aiaudit.status": row["status"], "aiaudit.audit_id": audit_id,
                                                             **anchor})
            tags = client.get_model_version(name, version).tags
            for key in ("aiaudit.signed_off_by", "aiaudit.signed_off_at", "aiaudit.signoff_audit_id"):
                if key in tags:
                    client.delete_model_version_tag(name, version, key)
        return True
    except Exception:  # the records DB is the source of truth; the app offers a re-sync
        return False


# integrity ---------------------------------------------------------------------------------
def verify_review(records: Records, audit_id: str) -> list[str]:
    """Compare the review rows of one audit with the ledger entries they cite; [] when all match."""
    ensure_schema(records)
    problems: list[str] = []
    with records.connect() as con:
        ledger = {r["seq"]: r for r in con.execute("SELECT * FROM ledger WHERE subject = ?", (audit_id,)).fetchall()}
        disp = con.execute("SELECT * FROM dispositions WHERE audit_id = ?", (audit_id,)).fetchall()
        signs = con.execute("SELECT * FROM signoffs WHERE audit_id = ?", (audit_id,)).fetchall()
        revs = con.execute("SELECT * FROM signoff_revocations WHERE audit_id = ?", (audit_id,)).fetchall()
    for r in disp:
        e = ledger.get(r["ledger_seq"])
        p = json.loads(e["payload"]) if e else None
        if (e is None or e["entry_hash"] != r["entry_hash"] or e["event"] != "disposition.recorded"
                or e["actor"] != r["actor"] or p["finding"] != r["finding_id"] or p["kind"] != r["kind"]
                or p["rationale"] != r["rationale"] or p["owner"] != r["owner"] or p["due_date"] != r["due_date"]
                or p["finding_status"] != r["finding_status"] or p["finding_severity"] != r["finding_severity"]):
            problems.append(f"disposition of {r['finding_id']} (ledger entry {r['ledger_seq']}) differs from the ledger")
    for r in signs:
        e = ledger.get(r["ledger_seq"])
        p = json.loads(e["payload"]) if e else None
        if (e is None or e["entry_hash"] != r["entry_hash"] or e["event"] != "audit.signed_off"
                or e["actor"] != r["actor"] or p["audit_sha256"] != r["audit_sha256"] or p["comment"] != r["comment"]):
            problems.append(f"sign-off (ledger entry {r['ledger_seq']}) differs from the ledger")
    for r in revs:
        e = ledger.get(r["ledger_seq"])
        if e is None or e["entry_hash"] != r["entry_hash"] or e["event"] != "audit.signoff_revoked":
            problems.append(f"sign-off revocation (ledger entry {r['ledger_seq']}) differs from the ledger")
    return problems


REVIEW_EVENTS = {"disposition.recorded": "dispositions", "audit.signed_off": "signoffs",
                 "audit.signoff_revoked": "signoff_revocations", "model.promoted": "promotions"}


def verify_all_reviews(records: Records) -> list[str]:
    """Every review row against its ledger entry, and every review entry against its row: a row deleted (or
    edited) while its entry stays is reported; [] when all match."""
    ensure_schema(records)
    with records.connect() as con:
        entries = con.execute(f"SELECT seq, event, subject FROM ledger WHERE event IN "
                              f"({','.join('?' * len(REVIEW_EVENTS))})", tuple(REVIEW_EVENTS)).fetchall()
        rows = {table: {r[0] for r in con.execute(f"SELECT ledger_seq FROM {table}")}
                for table in set(REVIEW_EVENTS.values())}
    problems = [f"ledger entry {e['seq']} ({e['event']}, {e['subject']}) has no {REVIEW_EVENTS[e['event']]} row "
                "(deleted)" for e in entries if e["seq"] not in rows[REVIEW_EVENTS[e["event"]]]]
    for subject in sorted({e["subject"] for e in entries}):
        problems += verify_review(records, subject)
    return problems


def _check_ledger(records: Records, audit_id: str, error: type[Exception]) -> None:
    """The whole hash chain must verify, and this audit's review rows must say what the ledger says."""
    chain = records.verify()
    if not chain.ok:
        raise error(f"the ledger fails verification at entry {chain.first_bad}: {chain.reason}")
    problems = verify_review(records, audit_id)
    if problems:
        raise error(f"{audit_id}: review records do not match the ledger: {problems[0]}")


# promotion -----------------------------------------------------------------------------------
def promote(engine: Any, model_name: str, version: str, alias: str, *, user: User | None = None,
            actor: str | None = None) -> dict[str, Any]:
    """Point `alias` at a model version only if its latest audit is signed off and intact."""
    import re
    records = engine.records
    ensure_schema(records)
    if user is not None:
        user = authorize(records, user, "model.promote")
        actor = user.actor
    actor = actor or "cli"
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,63}", alias):
        raise AuditInputError("alias must start with a letter and use letters, digits, '_' or '-'", source=alias)
    uri = f"models:/{model_name}/{version}"
    engine.registry.resolve(uri)  # raises AuditInputError when the version does not exist
    latest = latest_audit(records, model_name, version)
    if latest is None:
        raise PromotionRefused(f"{uri} has never been audited; run an audit and have an approver sign it off")
    signoff = get_signoff(records, latest["audit_id"])
    if signoff is None:
        earlier = [a for a in records.list_audits(model_name, limit=10_000, kind="audit")
                   if a["model_version"] == str(version) and get_signoff(records, a["audit_id"])]
        hint = f" (an earlier audit, {earlier[0]['audit_id']}, was signed off)" if earlier else ""
        raise PromotionRefused(f"{uri} is not signed off: its latest audit {latest['audit_id']} has no sign-off{hint}; "
                               "an approver must sign it off in the review app")
    try:
        _check_audit_file(engine, latest["audit_id"])
    except IntegrityError as e:
        raise PromotionRefused(str(e)) from None
    _check_ledger(records, latest["audit_id"], PromotionRefused)
    with records.transaction() as con:
        entry = records.append(con, "model.promoted", latest["audit_id"],
                               {"model": uri, "alias": alias, "signoff_seq": signoff["ledger_seq"],
                                "signed_off_by": signoff["signed_off_by"]}, actor=actor)
        con.execute("INSERT INTO promotions (model_name, model_version, alias, audit_id, actor, ts, ledger_seq, entry_hash)"
                    " VALUES (?,?,?,?,?,?,?,?)", (model_name, str(version), alias, latest["audit_id"], actor, entry.ts,
                                                   entry.seq, entry.entry_hash))
        engine.registry.set_alias(model_name, str(version), alias)  # inside the transaction: no alias, no record
    sync_registry_tags(engine, latest["audit_id"])
    return {"model": uri, "alias": alias, "audit_id": latest["audit_id"], "signed_off_by": signoff["signed_off_by"],
            "ledger_seq": entry.seq}


REGISTRATION_ALIASES = ("candidate",)


def _registered_models(client: Any) -> Iterator[Any]:
    token = None
    while True:
        page = client.search_registered_models(max_results=100, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def alias_bypasses(records: Records, registry: Any, ungated: tuple[str, ...] = REGISTRATION_ALIASES) -> list[dict[str, Any]]:
    """Registered-model aliases that no `promote` put there: every alias except `ungated` ones must match the
    latest recorded promotion of that model and alias (MLflow itself lets anyone move an alias)."""
    ensure_schema(records)
    with records.connect() as con:
        rows = con.execute("SELECT model_name, alias, model_version FROM promotions ORDER BY id").fetchall()
    promoted = {(r["model_name"], r["alias"]): r["model_version"] for r in rows}
    out = []
    for model in _registered_models(registry.client):
        for alias, version in sorted((getattr(model, "aliases", None) or {}).items()):
            if alias in ungated:
                continue
            recorded = promoted.get((model.name, alias))
            if recorded != str(version):
                out.append({"model": model.name, "alias": alias, "version": str(version), "promoted_version": recorded,
                            "reason": "never promoted through aiaudit" if recorded is None else
                            f"recorded promotion points at version {recorded}"})
    return out


# compare ---------------------------------------------------------------------------------------
@dataclass
class Comparison:
    audit_id: str
    previous_id: str | None
    new: list[dict[str, Any]] = field(default_factory=list)
    resolved: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    metric_deltas: list[dict[str, Any]] = field(default_factory=list)


def previous_audit(records: Records, audit_id: str) -> dict[str, Any] | None:
    """The audit of the same registered model and kind completed just before this one (any version)."""
    with records.connect() as con:
        cur = con.execute("SELECT rowid, * FROM audits WHERE audit_id = ?", (audit_id,)).fetchone()
        if cur is None:
            raise ReviewError("no such audit", source=audit_id)
        r = con.execute("SELECT * FROM audits WHERE model_name = ? AND kind = ? AND audit_id != ? AND "
                        "(created_at < ? OR (created_at = ? AND rowid < ?)) ORDER BY created_at DESC, rowid DESC LIMIT 1",
                        (cur["model_name"], cur["kind"], audit_id, cur["created_at"], cur["created_at"],
                         cur["rowid"])).fetchone()
    return dict(r) if r else None


def _same_value(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)


def finding_unchanged(a: Any, b: Any) -> bool:
    return (a.id == b.id and _val(a.status) == _val(b.status) and _val(a.severity) == _val(b.severity)
            and _same_value(a.value, b.value))


def _brief(f: Any) -> dict[str, Any]:
    return {"id": f.id, "check": f.check, "title": f.title, "status": _val(f.status), "severity": _val(f.severity),
            "value": f.value, "group": f.group}


def compare(engine: Any, audit_id: str, previous_id: str | None = None) -> Comparison:
    """New, resolved, changed and removed findings and metric deltas against the previous audit."""
    if previous_id is None:
        prev_row = previous_audit(engine.records, audit_id)
        previous_id = prev_row["audit_id"] if prev_row else None
    cmp = Comparison(audit_id, previous_id)
    cur = engine.load_result(audit_id)
    if previous_id is None:
        cmp.new = [_brief(f) for f in cur.findings]
        return cmp
    prev = engine.load_result(previous_id)
    before = {f.id: f for f in prev.findings}
    after = {f.id: f for f in cur.findings}
    for fid, f in after.items():
        old = before.get(fid)
        if old is None:
            cmp.new.append(_brief(f))
        elif finding_unchanged(old, f):
            cmp.unchanged.append(fid)
        else:
            row = {**_brief(f), "previous_status": _val(old.status), "previous_severity": _val(old.severity),
                   "previous_value": old.value}
            (cmp.resolved if is_open(old) and not is_open(f) else cmp.changed).append(row)
    cmp.removed = [_brief(f) for fid, f in before.items() if fid not in after]
    for key in sorted(set(cur.metrics) | set(prev.metrics)):
        a, b = prev.metrics.get(key), cur.metrics.get(key)
        if a is None and b is None:
            continue
        cmp.metric_deltas.append({"metric": key, "previous": a, "current": b,
                                  "delta": (b - a) if a is not None and b is not None else None})
    return cmp


def carry_forward(engine: Any, user: User | None, audit_id: str, previous_id: str | None = None) -> list[dict[str, Any]]:
    """Copy the previous audit's dispositions to findings that are unchanged (same id, status, severity, value)."""
    records = engine.records
    ensure_schema(records)
    user = authorize(records, user, "disposition.record")
    cmp = compare(engine, audit_id, previous_id)
    if cmp.previous_id is None:
        return []
    prev_disp = current_dispositions(records, cmp.previous_id)
    mine = current_dispositions(records, audit_id)
    carried = []
    for fid in cmp.unchanged:
        d = prev_disp.get(fid)
        if d is None or fid in mine:
            continue
        carried.append(record_disposition(engine, user, audit_id, fid, d["kind"], d["rationale"], d["owner"],
                                          d["due_date"], carried_from=cmp.previous_id))
    return carried


# starting audits from the app ------------------------------------------------------------------
class AuditRequest(BaseModel):
    """What the app's "start an audit" form collects; becomes an audit spec file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$")
    model: str
    dataset: dict[str, Any]
    system_card: str | None = None
    policy: str = "eu-ai-act-default"
    domain: str | None = None
    checks: list[str] | None = None
    seed: int = 0


def jobs_dir(settings: Any) -> Path:
    return settings.home / "jobs"


def start_audit(engine: Any, user: User | None, request: AuditRequest | dict[str, Any]) -> str:
    """Write the spec and run the audit in a child process; returns a job id for `job_status`."""
    import yaml
    from .spec import AuditSpec
    from .yamlio import parse_model
    user = authorize(engine.records, user, "audit.start")
    req = request if isinstance(request, AuditRequest) else parse_model(AuditRequest, request, "audit request")
    spec = parse_model(AuditSpec, req.model_dump(exclude_none=True), "audit request")
    job_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    job = jobs_dir(engine.settings) / job_id
    job.mkdir(parents=True)
    spec_path = job / "audit.yaml"
    spec_path.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True), sort_keys=False))
    (job / "request.json").write_text(json.dumps({"actor": user.actor, "requested_at": now_iso(),
                                                  "spec": str(spec_path)}))
    env = {**os.environ, "AIAUDIT_HOME": str(engine.settings.home), "AIAUDIT_ACTOR": user.actor}
    log = open(job / "stderr.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "audit.review", "run-job", str(job)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    (job / "pid").write_text(str(proc.pid))
    return job_id


def job_status(settings: Any, job_id: str) -> dict[str, Any]:
    """{state: running|completed|failed, progress: [...], audit_id?, error?}."""
    import re
    if not re.fullmatch(r"[0-9T]{15}-[0-9a-f]{8}", job_id):
        raise ReviewError("bad job id", source=job_id)
    job = jobs_dir(settings) / job_id
    progress = (job / "progress.log").read_text().splitlines() if (job / "progress.log").exists() else []
    if (job / "result.json").exists():
        return {**json.loads((job / "result.json").read_text()), "progress": progress}
    try:
        pid = int((job / "pid").read_text())
        os.kill(pid, 0)
        try:  # reap our own child so it does not linger as a zombie
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = 0
        alive = done == 0
    except (FileNotFoundError, ValueError, ProcessLookupError):
        alive = False
    if alive:
        return {"state": "running", "progress": progress}
    if (job / "result.json").exists():
        return {**json.loads((job / "result.json").read_text()), "progress": progress}
    tail = (job / "stderr.log").read_text(errors="replace")[-500:] if (job / "stderr.log").exists() else ""
    return {"state": "failed", "error": f"the audit process ended unexpectedly {tail}".strip(), "progress": progress}


def _run_job(job: Path) -> int:
    """Child-process body: run the spec, stream progress lines, write result.json atomically."""
    from .engine import AuditEngine
    log = open(job / "progress.log", "a", buffering=1, encoding="utf-8")

    def progress(msg: str) -> None:
        log.write(f"{now_iso()} {msg}\n")

    def finish(data: dict[str, Any]) -> None:
        tmp = job / "result.json.tmp"
        tmp.write_text(json.dumps(data))
        os.replace(tmp, job / "result.json")

    try:
        engine = AuditEngine(progress=progress)
        progress("validating inputs")
        prepared = engine.prepare(job / "audit.yaml")
        progress(f"running {len(prepared.plan)} checks")
        result = engine.run(prepared)
        progress("done")
        finish({"state": "completed", "audit_id": result.audit_id, "status": result.status,
                "exit_code": result.exit_code})
        return 0
    except AuditInputError as e:
        finish({"state": "failed", "error": str(e)})
        return 2
    except Exception as e:  # reported to the app, which shows it
        finish({"state": "failed", "error": f"internal error: {type(e).__name__}: {e}"})
        return 3
    finally:
        log.close()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "run-job":
        import warnings
        warnings.filterwarnings("ignore")
        sys.exit(_run_job(Path(sys.argv[2])))
    sys.exit("usage: python -m audit.review run-job JOB_DIR")
