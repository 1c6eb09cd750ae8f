"""The machine-readable audit result (`audit.json`); its JSON Schema is docs/schema/audit.schema.json."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .findings import Finding

AuditStatus = Literal["passed", "failed", "needs_review"]


class ModelInfo(BaseModel):
    name: str
    version: str
    uri: str
    format: str | None = None
    task: str | None = None
    sha256: str | None = None
    run_id: str | None = None


class DatasetRecord(BaseModel):
    path: str
    sha256: str
    rows: int
    label: str | None
    protected: list[str]
    columns: list[str] = Field(default_factory=list)
    split: str | None = None
    train_rows: int | None = None
    sample: dict[str, Any] | None = Field(None, description="When streamed: how the row-level sample was drawn.")
    extra_columns: list[str] = Field(default_factory=list, description="Columns that are neither model inputs nor "
                                                                       "named by the spec (not read by the model).")


class PolicyInfo(BaseModel):
    name: str
    version: str
    checksum: str
    fail_on: str


class CheckRun(BaseModel):
    status: Literal["completed", "error", "skipped"]
    seconds: float
    findings: int
    details: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


class WindowInfo(BaseModel):
    """A monitoring window: which baseline audit it was compared with, and what it covered."""
    baseline_audit_id: str
    baseline_signed_off: bool = Field(description="False when the baseline was named with --baseline and has no "
                                                  "active sign-off.")
    baseline_dataset_sha256: str
    window_index: int = Field(ge=1, description="1 for the model version's first window; the MLflow metric step.")
    timestamp_column: str | None = None
    start: str | None = Field(None, description="Earliest timestamp in the window (ISO 8601, UTC).")
    end: str | None = None


class AuditResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal["1"] = "1"
    kind: Literal["audit", "monitor"] = Field("audit", description="monitor: a window of production data compared "
                                                                   "with a baseline audit (`aiaudit monitor`).")
    audit_id: str
    name: str
    created_at: str
    completed_at: str | None = None
    actor: str
    aiaudit_version: str
    status: AuditStatus
    exit_code: int
    spec: dict[str, Any] = Field(description="The validated spec and its SHA-256 digest.")
    model: ModelInfo
    dataset: DatasetRecord
    policy: PolicyInfo
    window: WindowInfo | None = Field(None, description="Set when kind is monitor.")
    risk: dict[str, Any] | None = Field(None, description="Risk classification and obligations, when a system card is given.")
    findings: list[Finding]
    metrics: dict[str, float | None] = Field(description="Flat dotted keys, e.g. performance.roc_auc.ci_low.")
    checks: dict[str, CheckRun]
    evidence: dict[str, str] = Field(default_factory=dict, description="Evidence path -> SHA-256.")
    mlflow: dict[str, str | None] = Field(default_factory=dict)
    environment: dict[str, str] = Field(default_factory=dict)
