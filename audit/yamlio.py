"""YAML loading with readable, located errors."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from risk import strict_yaml

from .errors import AuditInputError

MAX_YAML_BYTES = 2_000_000


def read_yaml(path: str | Path, what: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise AuditInputError(f"{what} file not found", source=str(path))
    raw = p.read_bytes()
    if len(raw) > MAX_YAML_BYTES:
        raise AuditInputError(f"{what} is larger than {MAX_YAML_BYTES} bytes", source=str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        from .textcheck import not_utf8_message
        raise AuditInputError(not_utf8_message(p, what), source=str(path)) from None
    try:
        data = strict_yaml.load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise AuditInputError(f"malformed YAML: {problem}", source=where) from None
    except RecursionError:
        raise AuditInputError("YAML nests too deeply", source=str(path)) from None
    if not isinstance(data, dict):
        raise AuditInputError(f"{what} must be a YAML mapping, got {type(data).__name__}", source=str(path))
    return data


def describe_validation_error(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    more = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
    return f"field '{loc}': {msg}{more}"


def parse_model(model: type[BaseModel], data: Any, source: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise AuditInputError(describe_validation_error(e), source=source) from None
