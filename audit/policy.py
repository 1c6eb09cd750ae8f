"""Policy packs: thresholds and gates as versioned YAML data (see `policies/`)."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .errors import AuditInputError
from .findings import Severity
from .yamlio import parse_model, read_yaml

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "policies"


class DomainOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str | None = None
    checks: dict[str, dict[str, Any]] = Field(default_factory=dict)


class Limits(BaseModel):
    """Resource bounds: an audit that reaches one says so in a finding instead of running out of memory."""

    model_config = ConfigDict(extra="forbid")
    max_rows_in_memory: int = Field(2_000_000, ge=1, description="Above this, count-based checks stream and row-level checks use a sample.")
    max_rows: int = Field(200_000_000, ge=1, description="Hard bound on audited rows.")
    max_columns: int = Field(10_000, ge=1)
    max_groups: int = Field(1_000, ge=1, description="Distinct values allowed in one protected attribute.")
    sample_rows: int = Field(50_000, ge=100, description="Rows kept for row-level checks when streaming.")


class PolicyPack(BaseModel):
    """A named, versioned set of check thresholds and gates."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    version: str
    description: str = ""
    regulation: str | None = Field(None, description="Regulation rule set the pack applies, e.g. eu-ai-act-2024.")
    fail_on: Severity = Field(Severity.high, description="Lowest severity whose `fail` finding fails the gate.")
    required_checks: list[str] = Field(default_factory=list, description="Checks run when the spec names none.")
    checks: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Per-check settings.")
    domains: dict[str, DomainOverride] = Field(default_factory=dict)
    threshold_source: str = Field("provider_declared", description="Art. 9(8): thresholds are provider-declared.")
    limits: Limits = Field(default_factory=Limits)


class Policy(BaseModel):
    pack: PolicyPack
    path: str
    checksum: str

    @property
    def name(self) -> str:
        return self.pack.name

    @property
    def version(self) -> str:
        return self.pack.version

    def check_settings(self, check: str, domain: str | None = None) -> dict[str, Any]:
        settings = dict(self.pack.checks.get(check, {}))
        if domain and domain in self.pack.domains:
            settings.update(self.pack.domains[domain].checks.get(check, {}))
        return settings


def bundled_policies() -> dict[str, Path]:
    return {p.stem: p for p in sorted(BUNDLED_DIR.glob("*.yaml"))}


def load_policy(ref: str, base_dir: Path | None = None) -> Policy:
    """`ref` is a bundled pack name (e.g. `eu-ai-act-default`) or a path to a YAML file."""
    candidate = (base_dir / ref) if base_dir and not Path(ref).is_absolute() else Path(ref)
    if ref.endswith((".yaml", ".yml")):
        path = candidate
    elif ref in bundled_policies():
        path = bundled_policies()[ref]
    else:
        known = ", ".join(bundled_policies()) or "none"
        raise AuditInputError(f"unknown policy pack '{ref}' (bundled: {known})", source="policy")
    data = read_yaml(path, "policy pack")
    pack = parse_model(PolicyPack, data, str(path))
    if pack.domains and not set(pack.domains) <= {"credit", "employment", "education", "insurance",
                                                    "justice", "public_services", "general"}:
        raise AuditInputError(f"unknown domain in {sorted(pack.domains)}", source=str(path))
    return Policy(pack=pack, path=str(path), checksum=hashlib.sha256(path.read_bytes()).hexdigest())
