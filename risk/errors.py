"""Errors raised by the risk engine (the audit layer converts them to its own input errors)."""
from __future__ import annotations


class CardError(ValueError):
    """A system card that cannot be read or validated; `field` names the offending key."""

    def __init__(self, message: str, *, field: str | None = None, source: str | None = None):
        self.field = field
        self.source = source
        self.message = message
        where = f"field '{field}': " if field else ""
        super().__init__(f"{where}{message}")


class RegulationError(ValueError):
    """The bundled regulation data (policies/<regulation>/) is malformed or inconsistent."""
