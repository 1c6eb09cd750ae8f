"""The one finding schema every check speaks."""
from __future__ import annotations

import re
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Severity(str, Enum):
    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class Status(str, Enum):
    passed = "pass"
    warn = "warn"
    fail = "fail"
    error = "error"


def finding_id(check: str, metric: str | None = None, group: str | None = None) -> str:
    """Stable id, so the same finding can be matched across audits of one model."""
    raw = ":".join(p for p in (check, metric, group) if p)
    return re.sub(r"[^A-Za-z0-9_.:=|-]+", "_", raw)[:200]


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    check: str
    title: str
    severity: Severity
    status: Status
    metric: str | None = None
    value: float | None = None
    threshold: float | None = None
    group: str | None = None
    ci: tuple[float, float] | None = None
    references: list[str] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)
    detail: str | None = Field(None, description="Plain-language explanation of the finding.")
    data: dict[str, Any] = Field(default_factory=dict, description="Extra structured facts.")

    @field_validator("value", "threshold")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and v != v:  # NaN is not valid JSON; report "no value" instead
            return None
        return v

    @classmethod
    def make(cls, check: str, title: str, *, status: Status | str, severity: Severity | str,
             metric: str | None = None, group: str | None = None, **kw: Any) -> "Finding":
        return cls(id=kw.pop("id", None) or finding_id(check, metric, group), check=check, title=title,
                   status=status, severity=severity, metric=metric, group=group, **kw)

    def gates(self, fail_on: Severity) -> bool:
        return self.status == Status.fail and self.severity.rank >= fail_on.rank
