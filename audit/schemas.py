"""Published JSON Schemas (docs/schema/), generated from the pydantic models at the boundaries.

    python -m audit.schemas      # rewrite docs/schema/*.json
"""
from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "schema"


def models() -> dict[str, type[BaseModel]]:
    from .incidents import Incident, IncidentInput, IncidentUpdate
    from .policy import PolicyPack
    from .result import AuditResult
    from .spec import AuditSpec
    found: dict[str, type[BaseModel]] = {"audit-spec": AuditSpec, "audit": AuditResult, "policy": PolicyPack,
                                         "incident": IncidentInput, "incident-update": IncidentUpdate,
                                         "incident-record": Incident}
    try:
        from risk.card import SystemCard
        found["system-card"] = SystemCard
    except ImportError:
        pass
    return found


def render(model: type[BaseModel], name: str) -> str:
    schema = model.model_json_schema(mode="validation")
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"https://aiaudit.dev/schema/{name}.schema.json", **schema}
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


def write_all(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in models().items():
        path = directory / f"{name}.schema.json"
        path.write_text(render(model, name))
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_all():
        print(p)
