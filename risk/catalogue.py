"""The check catalogue (policies/checks.yaml): the one list of check names and their display names."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import strict_yaml
from .errors import RegulationError

NAME = r"^[a-z][a-z0-9_]{1,40}$"


class Localised(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    en: str = Field(min_length=1)
    ko: str = Field(min_length=1)

    def get(self, lang: str) -> str:
        return getattr(self, lang, self.en)


CITATION = r"^(EU-AI-Act|GDPR) (Art\. \d+[a-z]?(\(\w+\))*(-\(\w+\))?|Annex [IVX]+( [0-9]+(\([a-z]\))?)?)$"


class CatalogueEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=NAME)
    title: Localised
    short: Localised
    references: dict[str, str] = Field(default_factory=dict, description="The provisions the check's findings cite, "
                                                                        "by the key the check uses.")

    @model_validator(mode="after")
    def _citations(self) -> "CatalogueEntry":
        import re
        for key, citation in self.references.items():
            if not re.fullmatch(NAME, key) or not re.fullmatch(CITATION, citation):
                raise ValueError(f"check {self.name!r}: reference {key!r}: {citation!r} is not a citation like "
                                 "'EU-AI-Act Art. 10(2)(f)'")
        return self


class CheckCatalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["check_catalogue"]
    checks: tuple[CatalogueEntry, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "CheckCatalogue":
        names = [c.name for c in self.checks]
        if len(set(names)) != len(names):
            raise ValueError(f"check listed twice: {sorted({n for n in names if names.count(n) > 1})}")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.checks)

    def __getitem__(self, name: str) -> CatalogueEntry:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def title(self, name: str, lang: str = "en") -> str:
        """The check's display name; an unknown name is shown as itself."""
        try:
            return self[name].title.get(lang)
        except KeyError:
            return name


def catalogue_path() -> Path:
    import policies
    for entry in list(getattr(policies, "__path__", [])):
        if (Path(entry) / "checks.yaml").is_file():
            return Path(entry) / "checks.yaml"
    raise RegulationError("no check catalogue (policies/checks.yaml)")


def citations(check: str) -> dict[str, str]:
    """A check's citations by key, e.g. citations("monitoring")["pmm"] -> "EU-AI-Act Art. 72(1)-(2)"."""
    return dict(check_catalogue()[check].references)


@lru_cache(maxsize=1)
def check_catalogue() -> CheckCatalogue:
    path = catalogue_path()
    try:
        return CheckCatalogue.model_validate(strict_yaml.load(path.read_text(encoding="utf-8")))
    except ValidationError as e:
        err = e.errors()[0]
        raise RegulationError(f"{path.name}: {'.'.join(str(x) for x in err['loc'])}: {err['msg']}") from None
