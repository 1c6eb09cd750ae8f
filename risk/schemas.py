"""JSON Schemas of the regulation data files, generated from the pydantic models.

    python -m risk.schemas      # rewrite policies/eu-ai-act-2024/schema/*.schema.json
"""
from __future__ import annotations

import json
from pathlib import Path

from .regulation import DEFAULT_REGULATION, FILE_MODELS, regulation_dir


def _models() -> dict:
    from .incidents import IncidentPolicy
    return {**FILE_MODELS, "incidents": IncidentPolicy}


def render(kind: str) -> str:
    schema = _models()[kind].model_json_schema(mode="validation", by_alias=True)
    schema["properties"].pop("sha256", None)  # computed on load, refused in the file
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              "$id": f"https://aiaudit.dev/schema/regulation-{kind}.schema.json", **schema}
    return json.dumps(schema, indent=2) + "\n"


def write_all(name: str = DEFAULT_REGULATION) -> list[Path]:
    out = regulation_dir(name) / "schema"
    out.mkdir(exist_ok=True)
    written = []
    for kind in _models():
        path = out / f"{kind}.schema.json"
        path.write_text(render(kind))
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_all():
        print(p)
