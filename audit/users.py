"""Users of the review app: roles, scrypt password hashes, sign-in throttling, session expiry.

The store lives in `records.db` next to the ledger.  Passwords are never stored: only
`scrypt$N$r$p$salt$hash` (RFC 7914; OWASP's N=2^17, r=8, p=1), compared in constant time.
Failed sign-ins are counted per username in the database, so a lockout survives restarts
and applies across app processes; unknown usernames are throttled the same way and cost
the same hashing time, so responses do not reveal which accounts exist.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass, replace
from enum import Enum

from .errors import AuditInputError
from .records import Records, now_iso

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT,
    source TEXT NOT NULL DEFAULT 'local',
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS login_attempts (
    username TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    window_start REAL NOT NULL,
    locked_until REAL NOT NULL DEFAULT 0
);
"""
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
MAX_FAILURES = 5            # failed sign-ins allowed per window ...
FAILURE_WINDOW = 15 * 60    # ... until this long passes without one; then each further failure doubles a wait
BACKOFF_SECONDS = 30        # that starts here ...
LOCKOUT_SECONDS = 15 * 60   # ... and never exceeds this (so anonymous requests cannot lock an account for longer)
IDLE_TIMEOUT = 30 * 60      # sessions end after this much inactivity
ABSOLUTE_TIMEOUT = 12 * 3600


class Role(str, Enum):
    viewer = "viewer"
    reviewer = "reviewer"
    approver = "approver"
    admin = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)


@dataclass(frozen=True)
class User:
    username: str
    role: Role
    source: str = "local"  # local | oidc

    @property
    def actor(self) -> str:
        """How the ledger names this person."""
        return f"{'oidc' if self.source == 'oidc' else 'app'}:{self.username}"


@dataclass(frozen=True)
class Session:
    user: User
    issued_at: float
    last_seen: float


class SignInError(Exception):
    """Sign-in refused; the message is safe to show (it never says which part was wrong)."""

    def __init__(self, message: str, retry_after: float | None = None):
        self.retry_after = retry_after
        super().__init__(message)


class SessionExpired(Exception):
    pass


# password hashing --------------------------------------------------------------------
def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(_scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P))}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, base64.b64decode(digest))


# A fixed hash to verify against when the username does not exist (equal timing).
_DUMMY_HASH = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(b'aiaudit-dummy-salt')}${_b64(bytes(32))}"


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AuditInputError(f"password must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AuditInputError(f"password must be at most {MAX_PASSWORD} characters")
    if password.strip() != password or not password.isprintable():
        raise AuditInputError("password must not start or end with spaces or contain control characters")


# the store -----------------------------------------------------------------------------
class UserStore:
    def __init__(self, records: Records):
        self.records = records
        with records.connect() as con:
            con.executescript(SCHEMA)

    def count(self) -> int:
        with self.records.connect() as con:
            return con.execute("SELECT COUNT(*) FROM users").fetchone()[0]

    def get(self, username: str) -> User | None:
        with self.records.connect() as con:
            r = con.execute("SELECT username, role, source FROM users WHERE username = ?", (username,)).fetchone()
        return User(r["username"], Role(r["role"]), r["source"]) if r else None

    def list(self) -> list[dict]:
        with self.records.connect() as con:
            rows = con.execute("SELECT u.username, u.role, u.source, u.created_at, u.created_by, "
                               "COALESCE(a.locked_until, 0) AS locked_until, COALESCE(a.failures, 0) AS failures "
                               "FROM users u LEFT JOIN login_attempts a ON a.username = u.username "
                               "ORDER BY u.username").fetchall()
        now = time.time()
        return [{**dict(r), "locked": r["locked_until"] > now} for r in rows]

    def add(self, username: str, role: Role | str, password: str | None, *, actor: str, source: str = "local") -> User:
        """Create a user; `source='oidc'` users have no password and sign in through the identity provider."""
        if not USERNAME.match(username):
            raise AuditInputError("username may use letters, digits and . _ @ + - (at most 128 characters)", source=username)
        try:
            role = Role(role)
        except ValueError:
            raise AuditInputError(f"role must be one of {[r.value for r in Role]}", source=str(role)) from None
        if source not in ("local", "oidc"):
            raise AuditInputError("source must be local or oidc", source=source)
        if source == "local":
            if password is None:
                raise AuditInputError("a local user needs a password", source=username)
            check_password_policy(password)
            pw_hash = hash_password(password)
        else:
            pw_hash = None
        with self.records.transaction() as con:
            if con.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
                raise AuditInputError("user already exists", source=username)
            con.execute("INSERT INTO users VALUES (?,?,?,?,?,?)", (username, role.value, pw_hash, source, now_iso(), actor))
            self.records.append(con, "user.added", f"user:{username}", {"username": username, "role": role.value,
                                                                         "source": source}, actor=actor)
        return User(username, role, source)

    def remove(self, username: str, *, actor: str) -> None:
        with self.records.transaction() as con:
            if con.execute("DELETE FROM users WHERE username = ?", (username,)).rowcount == 0:
                raise AuditInputError("no such user", source=username)
            con.execute("DELETE FROM login_attempts WHERE username = ?", (username,))
            self.records.append(con, "user.removed", f"user:{username}", {"username": username}, actor=actor)

    def set_role(self, username: str, role: Role | str, *, actor: str) -> None:
        role = Role(role)
        with self.records.transaction() as con:
            if con.execute("UPDATE users SET role = ? WHERE username = ?", (role.value, username)).rowcount == 0:
                raise AuditInputError("no such user", source=username)
            self.records.append(con, "user.role_changed", f"user:{username}", {"username": username, "role": role.value},
                                actor=actor)

    def unlock(self, username: str, *, actor: str) -> None:
        with self.records.transaction() as con:
            con.execute("DELETE FROM login_attempts WHERE username = ?", (username,))
            self.records.append(con, "user.unlocked", f"user:{username}", {"username": username}, actor=actor)

    # sign-in ---------------------------------------------------------------------------
    def authenticate(self, username: str, password: str, now: float | None = None,
                     client: str | None = None) -> User:
        """Return the user or raise SignInError.

        Each attempt is counted, per username and per `client` (e.g. the remote address), in one transaction
        before the slow password hash, so parallel attempts can never exceed the allowance; a success clears
        the username's count. After MAX_FAILURES failures in the window each further failure doubles a wait
        (BACKOFF_SECONDS up to LOCKOUT_SECONDS) rather than locking the account outright, and an admin can
        unlock it at once (`aiaudit users unlock`)."""
        now = time.time() if now is None else now
        username = username.strip()[:128]
        keys = [username] + ([f"client:{client[:128]}"] if client else [])
        with self.records.transaction() as con:
            for key in keys:
                att = con.execute("SELECT * FROM login_attempts WHERE username = ?", (key,)).fetchone()
                if att and att["locked_until"] > now:
                    raise SignInError("too many failed sign-in attempts", retry_after=att["locked_until"] - now)
            waits = [self._count_attempt(con, key, now) for key in keys]
            row = con.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
        stored = row["password_hash"] if row and row["source"] == "local" and row["password_hash"] else _DUMMY_HASH
        ok = verify_password(password[:MAX_PASSWORD], stored) and stored is not _DUMMY_HASH
        if not ok:
            if any(waits):
                raise SignInError("too many failed sign-in attempts", retry_after=max(waits))
            raise SignInError("wrong username or password")
        with self.records.transaction() as con:
            con.execute("DELETE FROM login_attempts WHERE username = ?", (username,))
        return User(row["username"], Role(row["role"]), row["source"])

    def _count_attempt(self, con, key: str, now: float) -> float:
        """Count one attempt against `key` (undone by a success); the wait it imposes, 0 within the allowance."""
        att = con.execute("SELECT * FROM login_attempts WHERE username = ?", (key,)).fetchone()
        # `window_start` holds the last attempt: the count lapses after FAILURE_WINDOW without attempts or waits
        quiet = None if att is None else now - max(att["window_start"], att["locked_until"])
        failures = 1 if quiet is None or quiet > FAILURE_WINDOW else att["failures"] + 1
        wait = (min(BACKOFF_SECONDS * 2 ** (failures - MAX_FAILURES), LOCKOUT_SECONDS)
                if failures >= MAX_FAILURES else 0.0)
        con.execute("INSERT OR REPLACE INTO login_attempts VALUES (?,?,?,?)", (key, failures, now, now + wait if wait else 0))
        if wait and failures == MAX_FAILURES:
            self.records.append(con, "user.locked_out", f"user:{key}" if not key.startswith("client:") else key,
                                {"username": key, "failures": failures, "wait_seconds": wait}, actor="app:sign-in")
        return wait

    # sessions ---------------------------------------------------------------------------
    def start_session(self, user: User, now: float | None = None) -> Session:
        now = time.time() if now is None else now
        return Session(user, now, now)

    def refresh(self, session: Session, now: float | None = None, idle: float | None = None) -> Session:
        """Check a session on every request: expired, removed or re-roled users are caught here."""
        now = time.time() if now is None else now
        idle = idle_timeout() if idle is None else idle
        if now - session.last_seen > idle or now - session.issued_at > ABSOLUTE_TIMEOUT:
            raise SessionExpired("session timed out")
        current = self.get(session.user.username)
        if current is None:
            raise SessionExpired("account no longer exists")
        return replace(session, user=current, last_seen=now)


def idle_timeout() -> float:
    """Seconds of inactivity before a session ends (`AIAUDIT_SESSION_IDLE_MINUTES`, default 30)."""
    try:
        minutes = float(os.environ.get("AIAUDIT_SESSION_IDLE_MINUTES", IDLE_TIMEOUT / 60))
    except ValueError:
        minutes = IDLE_TIMEOUT / 60
    return max(minutes, 0.05) * 60
