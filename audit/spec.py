"""The audit spec: what to audit (model, data), against what (card, policy), with which checks."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import AuditInputError
from .yamlio import parse_model, read_yaml

MODEL_URI = re.compile(r"^models:/(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]{0,99})(?:/(?P<version>\d+)|@(?P<alias>[A-Za-z][A-Za-z0-9_-]{0,63}))$")
COLUMN = r"^[^\x00-\x1f]{1,200}$"


class DatasetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="CSV (optionally .gz) or Parquet file, relative to the spec file.")
    label: str | None = Field(None, pattern=COLUMN, description="Label column (omit for language models).")
    protected: list[str] = Field(default_factory=list, description="Protected-attribute columns.")
    positive_label: str | int | float | bool | None = Field(None, description="Positive class that rates are computed for; default: the model's last class.")
    split_column: str | None = Field(None, description="Column that marks train/test rows.")
    audit_split: str = Field("test", description="Value of `split_column` for the rows to audit.")
    train_split: str | None = Field("train", description="Value of `split_column` for training rows (bias amplification).")
    train_path: str | None = Field(None, description="Separate training file, alternative to `split_column`.")

    @field_validator("protected")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("protected attributes must be distinct")
        if len(v) > 16:
            raise ValueError("at most 16 protected attributes")
        return v


class ExecutionSpec(BaseModel):
    """How to read the data: in memory, or streamed in chunks through a local or Dask backend."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["auto", "in_memory", "streaming"] = Field("auto", description="auto: stream above the policy's max_rows_in_memory.")
    backend: Literal["local", "dask"] = "local"
    scheduler: str | None = Field(None, pattern=r"^(tcp|tls|inproc|ucx)://[^\s]{1,200}$", description="Dask scheduler address; none: a LocalCluster.")
    chunk_rows: int = Field(500_000, ge=1_000, le=50_000_000)


class AuditSpec(BaseModel):
    """An audit spec file (YAML). See docs/schema/audit-spec.schema.json."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$")
    model: str = Field(description="models:/<name>/<version> or models:/<name>@<alias>")
    dataset: DatasetSpec
    system_card: str | None = Field(None, description="System card YAML, relative to the spec file.")
    policy: str = Field("eu-ai-act-default", description="Bundled policy pack name or YAML path.")
    domain: Literal["credit", "employment", "education", "insurance", "justice", "public_services", "general"] | None = None
    checks: list[str] | None = Field(None, description="Checks to run; default: all the policy requires.")
    seed: int = Field(0, ge=0, le=2**32 - 1)
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)

    @field_validator("model")
    @classmethod
    def _model_uri(cls, v: str) -> str:
        if not MODEL_URI.match(v):
            raise ValueError("must look like models:/<name>/<version> or models:/<name>@<alias>")
        return v


class LoadedSpec(BaseModel):
    spec: AuditSpec
    path: str
    base_dir: str
    digest: str

    def resolve(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else (Path(self.base_dir) / p)


SPEC_FILE = "audit.yaml"


def load_spec(path: str | Path) -> LoadedSpec:
    """Read and check a spec; a directory stands for the `audit.yaml` inside it."""
    if Path(path).is_dir():
        if not (Path(path) / SPEC_FILE).is_file():
            raise AuditInputError(f"is a directory without an {SPEC_FILE}; pass the spec file itself", source=str(path))
        path = Path(path) / SPEC_FILE
    data = read_yaml(path, "audit spec")
    spec = parse_model(AuditSpec, data, str(path))
    digest = hashlib.sha256(json.dumps(spec.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    p = Path(path).resolve()
    for rel, what in [(spec.dataset.path, "dataset"), (spec.dataset.train_path, "training dataset"),
                      (spec.system_card, "system card")]:
        if rel is not None and not (Path(rel) if Path(rel).is_absolute() else p.parent / rel).is_file():
            raise AuditInputError(f"{what} file not found: {rel}", source=str(path))
    return LoadedSpec(spec=spec, path=str(p), base_dir=str(p.parent), digest=digest)
