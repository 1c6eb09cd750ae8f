"""The join between the risk engine (law + system card) and the audit (checks + findings).

`risk` knows the EU AI Act and the system card; this module asks it for the tier and the
obligations, adds the checks those obligations require to the plan, and rates each
obligation's evidence from the checks that ran.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import AuditInputError


def load_card(path: Path) -> Any:
    raise AuditInputError("risk engine not available yet", source=str(path))


def required_checks(classification: Any) -> list[str]:
    return []


def assess(card: Any, classification: Any, ran: dict[str, str], findings: list[Any]) -> tuple[dict[str, Any] | None, list[Any]]:
    """Return the `risk` block of audit.json and extra findings (e.g. missing required checks)."""
    return None, []


def classify_card(card: Any) -> Any:
    return None
