"""Error types and the documented exit codes of every aiaudit command."""
from __future__ import annotations

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM (the shell convention 128 + SIGINT)


class Interrupted(BaseException):
    """SIGTERM, raised in the main thread so that `finally` blocks remove partial output."""


class AuditInputError(Exception):
    """Bad input or usage: reported as one line, exit code 2, nothing written."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, *, source: str | None = None):
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class IntegrityError(Exception):
    """A stored artifact or record does not match its recorded hash."""

    exit_code = EXIT_GATE_FAILED


class StoreDamaged(AuditInputError):
    """A store database that SQLite cannot read: exit 2, or 1 from `ledger verify` (a verification failure)."""
