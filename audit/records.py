"""Audit records: an SQLite index of audits plus an append-only, hash-chained ledger.

The database runs in WAL mode with a busy timeout so several audits and reviews can
write at once.  Every ledger entry carries actor, time, the SHA-256 of its content and
the previous entry's hash; a separate head file guards against truncation.
"""
from __future__ import annotations

import getpass
import hashlib
import threading
import json
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from .errors import StoreDamaged

try:
    import fcntl
except ImportError:  # not POSIX: a process-local lock only
    fcntl = None  # type: ignore[assignment]

GENESIS = "0" * 64
SCHEMA = """
CREATE TABLE IF NOT EXISTS audits (
    audit_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    name TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    model_uri TEXT NOT NULL,
    status TEXT NOT NULL,
    tier TEXT,
    exit_code INTEGER NOT NULL,
    run_id TEXT,
    audit_sha256 TEXT NOT NULL,
    path TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'audit'
);
CREATE INDEX IF NOT EXISTS audits_model ON audits(model_name, model_version, created_at);
CREATE TABLE IF NOT EXISTS ledger (
    seq INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    actor TEXT NOT NULL,
    event TEXT NOT NULL,
    subject TEXT NOT NULL,
    payload TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    entry_hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
"""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def current_actor() -> str:
    return os.environ.get("AIAUDIT_ACTOR") or f"cli:{getpass.getuser()}"


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(seq: int, ts: str, actor: str, event: str, subject: str, content_hash: str, prev_hash: str) -> str:
    return hashlib.sha256(_canonical([seq, ts, actor, event, subject, content_hash, prev_hash]).encode()).hexdigest()


@dataclass(frozen=True)
class LedgerEntry:
    seq: int
    ts: str
    actor: str
    event: str
    subject: str
    payload: dict[str, Any]
    content_hash: str
    prev_hash: str
    entry_hash: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    first_bad: int | None = None
    reason: str | None = None


class Records:
    """Connection factory and operations over `records.db`."""

    def __init__(self, db_path: Path):
        self.db_path = Path(db_path)
        self.head_path = self.db_path.with_suffix(".head")
        self._thread_lock = threading.Lock()
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.connect() as con:
                con.executescript(SCHEMA)
                con.execute("SELECT COUNT(*) FROM ledger").fetchone()
                if "kind" not in {r[1] for r in con.execute("PRAGMA table_info(audits)")}:  # a store from before
                    con.execute("ALTER TABLE audits ADD COLUMN kind TEXT NOT NULL DEFAULT 'audit'")
        except sqlite3.DatabaseError as e:  # truncated, overwritten or not a database at all
            raise StoreDamaged(f"the records database cannot be read ({e}); restore it from a backup, or move it "
                               "away to start an empty store", source=str(self.db_path)) from None
        from .config import private
        private(self.db_path)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.db_path, timeout=60, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA busy_timeout=60000")
            con.execute("PRAGMA synchronous=FULL")
            con.row_factory = sqlite3.Row
            yield con
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction: the write lock is taken up front, retried on contention."""
        with self.connect() as con:
            for attempt in range(200):
                try:
                    con.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as e:
                    if "locked" not in str(e) or attempt == 199:
                        raise
                    time.sleep(0.05)
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            self._write_head(con)

    # ledger -----------------------------------------------------------------
    def append(self, con: sqlite3.Connection, event: str, subject: str, payload: dict[str, Any],
               actor: str | None = None) -> LedgerEntry:
        """Append inside an open transaction (see `transaction`)."""
        last = con.execute("SELECT seq, entry_hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (last["seq"] + 1, last["entry_hash"]) if last else (1, GENESIS)
        ts, actor = now_iso(), actor or current_actor()
        body = _canonical(payload)
        content = hashlib.sha256(body.encode()).hexdigest()
        h = entry_hash(seq, ts, actor, event, subject, content, prev)
        con.execute("INSERT INTO ledger VALUES (?,?,?,?,?,?,?,?,?)", (seq, ts, actor, event, subject, body, content, prev, h))
        return LedgerEntry(seq, ts, actor, event, subject, payload, content, prev, h)

    def log(self, event: str, subject: str, payload: dict[str, Any], actor: str | None = None) -> LedgerEntry:
        with self.transaction() as con:
            return self.append(con, event, subject, payload, actor)

    @contextmanager
    def _head_lock(self) -> Iterator[None]:
        """Exclusive across processes: the read-compare-replace of the head file is one step."""
        with self._thread_lock, open(self.head_path.with_suffix(".head.lock"), "a") as f:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(f, fcntl.LOCK_UN)

    def _write_head(self, con: sqlite3.Connection) -> None:
        """Record the newest committed entry; under the head lock, so the head never moves backwards."""
        with self._head_lock():
            last = con.execute("SELECT seq, entry_hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
            if not last:
                return
            current = self._read_head()
            if current and current[0] >= last["seq"]:
                return
            tmp = self.head_path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(f"{last['seq']} {last['entry_hash']}\n")
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.head_path)

    def _read_head(self) -> tuple[int, str] | None:
        try:
            seq, h = self.head_path.read_text().split()
            return int(seq), h
        except (FileNotFoundError, ValueError):
            return None

    def entries(self, subject: str | None = None) -> list[LedgerEntry]:
        with self.connect() as con:
            q = "SELECT * FROM ledger" + (" WHERE subject = ?" if subject else "") + " ORDER BY seq"
            rows = con.execute(q, (subject,) if subject else ()).fetchall()
        return [LedgerEntry(r["seq"], r["ts"], r["actor"], r["event"], r["subject"], json.loads(r["payload"]),
                            r["content_hash"], r["prev_hash"], r["entry_hash"]) for r in rows]

    def verify(self) -> VerifyResult:
        """Check every link, then the head. The head is read before the rows: it is written only after
        its entry commits, so a writer committing meanwhile can make the rows longer, never shorter."""
        head = self._read_head()
        with self.connect() as con:
            rows = con.execute("SELECT * FROM ledger ORDER BY rowid").fetchall()
        prev, expected_seq = GENESIS, 1
        for r in rows:
            seq = r["seq"]
            if seq != expected_seq:
                return VerifyResult(False, len(rows), seq, f"entry {seq} found where {expected_seq} was expected (deleted or reordered)")
            if hashlib.sha256(r["payload"].encode()).hexdigest() != r["content_hash"]:
                return VerifyResult(False, len(rows), seq, f"entry {seq}: content does not match its hash (edited)")
            if r["prev_hash"] != prev:
                return VerifyResult(False, len(rows), seq, f"entry {seq}: previous-hash link broken (deleted, inserted or reordered)")
            if entry_hash(seq, r["ts"], r["actor"], r["event"], r["subject"], r["content_hash"], r["prev_hash"]) != r["entry_hash"]:
                return VerifyResult(False, len(rows), seq, f"entry {seq}: entry hash does not match its fields (edited)")
            prev, expected_seq = r["entry_hash"], seq + 1
        if head:
            if head[0] > len(rows):
                return VerifyResult(False, len(rows), len(rows) + 1, f"ledger truncated: head records {head[0]} entries, found {len(rows)}")
            if head[0] >= 1 and rows[head[0] - 1]["entry_hash"] != head[1]:
                return VerifyResult(False, len(rows), head[0], f"entry {head[0]} does not match the recorded head hash")
        return VerifyResult(True, len(rows))

    # audits -----------------------------------------------------------------
    def add_audit(self, con: sqlite3.Connection, row: dict[str, Any]) -> None:
        cols = ",".join(row)
        con.execute(f"INSERT INTO audits ({cols}) VALUES ({','.join('?' * len(row))})", tuple(row.values()))

    def list_audits(self, model_name: str | None = None, limit: int = 100,
                    kind: str | None = None) -> list[dict[str, Any]]:
        """Newest first; `kind` "audit" or "monitor" (windows of `aiaudit monitor`), or both."""
        where = [(c, v) for c, v in (("model_name", model_name), ("kind", kind)) if v]
        q = ("SELECT * FROM audits" + (" WHERE " + " AND ".join(f"{c} = ?" for c, _ in where) if where else "")
             + " ORDER BY created_at DESC, rowid DESC LIMIT ?")
        with self.connect() as con:
            return [dict(r) for r in con.execute(q, (*[v for _, v in where], limit)).fetchall()]

    def crashed_audits(self, limit: int = 100) -> list[dict[str, Any]]:
        """Audits that started and ended in `audit.failed` (a crash or an interruption), newest first: they have
        no audit row, so only the ledger knows them."""
        with self.connect() as con:
            rows = con.execute(
                "SELECT s.subject AS audit_id, s.ts AS created_at, s.payload AS started, f.payload AS failed "
                "FROM ledger s JOIN ledger f ON f.subject = s.subject AND f.event = 'audit.failed' "
                "WHERE s.event = 'audit.started' AND s.subject NOT IN (SELECT audit_id FROM audits) "
                "ORDER BY s.seq DESC LIMIT ?", (limit,)).fetchall()
        out = []
        for r in rows:
            model = json.loads(r["started"]).get("model", "")
            out.append({"audit_id": r["audit_id"], "created_at": r["created_at"], "model_uri": model,
                        "status": "crashed", "reason": json.loads(r["failed"]).get("reason", "")})
        return out

    def get_audit(self, audit_id: str) -> dict[str, Any] | None:
        with self.connect() as con:
            r = con.execute("SELECT * FROM audits WHERE audit_id = ?", (audit_id,)).fetchone()
        return dict(r) if r else None

    def update_audit_status(self, con: sqlite3.Connection, audit_id: str, status: str) -> None:
        con.execute("UPDATE audits SET status = ? WHERE audit_id = ?", (status, audit_id))
