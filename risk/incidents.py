"""Serious-incident reporting as data: harm categories, reporting deadlines, status flow, report structure.

Everything the law says lives in `policies/<regulation>/incidents/incidents.yaml`; this module only reads
it (strict YAML, pydantic, unknown keys rejected) and computes with it.  Pure: no store, no audit objects.

    deadline("death", date(2026, 12, 1))                      # the date the report is due at the latest
    governing_deadline(policy, ["health", "death"], aware)    # several categories: the earliest deadline wins
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import strict_yaml
from .errors import RegulationError
from .regulation import DEFAULT_REGULATION, Review, Source, TextFile, regulation_dir

Lang = Literal["en", "ko"]
LANGS: tuple[str, ...] = ("en", "ko")
Mark = Literal["SECONDARY", "UNCERTAIN"]
KEY = r"^[a-z][a-z0-9_]{0,39}$"


class IncidentError(ValueError):
    """An incident that the policy does not allow (unknown category, refused status change, bad dates)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Label(_Strict):
    en: str = Field(min_length=1)
    ko: str = Field(min_length=1)

    def __call__(self, lang: str) -> str:
        return self.ko if lang == "ko" else self.en


class Cite(Label):
    """A citation: a stable point-level id and how it is written in each language."""

    id: str = Field(pattern=r"^eu\.aia\.[A-Za-z0-9_.-]+$")


class Category(_Strict):
    key: str = Field(pattern=KEY)
    point: Cite = Field(description="Where the harm is defined (Art. 3(49) point, or the definition of the term).")
    label: Label
    deadline_days: int = Field(ge=1, le=366, description="Latest report, in calendar days after awareness.")
    basis: Cite = Field(description="The provision that sets the deadline.")
    source: Source
    marks: list[Mark] = Field(default_factory=list)
    note: str | None = None


class StatusDef(_Strict):
    key: str = Field(pattern=KEY)
    label: Label
    submitted: bool = Field(description="The (initial) report has reached the authority: the deadline stops running.")
    draft: Literal["initial", "complete"] = Field(description="Which report a draft exported in this status prepares.")
    next: list[str]
    basis: Cite | None
    note: Label | None = None


class Reminder(_Strict):
    basis: Cite
    en: str
    ko: str

    def __call__(self, lang: str) -> str:
        return self.ko if lang == "ko" else self.en


class ReportFields(_Strict):
    """The label of every field a report section can show."""

    provider: Label
    deployer: Label
    reporter: Label
    member_states: Label
    system: Label
    models: Label
    audits: Label
    findings: Label
    incident_id: Label
    title: Label
    description: Label
    occurred_on: Label
    aware_on: Label
    deadline: Label
    deadline_basis: Label
    days_left: Label
    categories: Label
    affected_count: Label
    affected_description: Label
    causal_link: Label
    corrective_actions: Label
    status: Label
    report_type: Label
    history: Label


FieldKey = Literal[tuple(ReportFields.model_fields)]  # type: ignore[valid-type]


class ReportLabels(_Strict):
    not_provided: Label
    overdue: Label
    days_left: Label
    days_overdue: Label
    due_today: Label
    submitted_on_time: Label
    submitted_late: Label
    initial_report: Label
    complete_report: Label
    days_after_awareness: Label
    reminders: Label
    generated: Label
    as_of: Label
    col_when: Label
    col_actor: Label
    col_role: Label
    col_event: Label
    col_detail: Label
    col_entry_hash: Label
    event_recorded: Label
    event_updated: Label
    event_status_changed: Label
    manifest: Label
    ledger_entries: Label


class Section(_Strict):
    key: str = Field(pattern=KEY)
    title: Label
    basis: Cite | None
    fields: list[FieldKey] = Field(min_length=1)


class ReportDef(_Strict):
    title: Label
    basis: Cite
    template_note: Label
    marks: list[Mark] = Field(default_factory=list)
    sections: list[Section] = Field(min_length=1)
    fields: ReportFields
    labels: ReportLabels


class IncidentPolicy(_Strict):
    kind: Literal["incidents"]
    regulation: str
    edition: str
    version: str
    review: Review
    counting: Label
    categories: list[Category] = Field(min_length=1)
    statuses: list[StatusDef] = Field(min_length=2)
    reminders: list[Reminder] = Field(default_factory=list)
    report: ReportDef
    sha256: str = Field("", description="SHA-256 of the policy file (set by load_policy).")

    @model_validator(mode="after")
    def _consistent(self) -> "IncidentPolicy":
        for what, keys in (("category", [c.key for c in self.categories]), ("status", [s.key for s in self.statuses]),
                           ("report section", [s.key for s in self.report.sections])):
            dup = sorted({k for k in keys if keys.count(k) > 1})
            if dup:
                raise ValueError(f"duplicate {what} key {dup[0]!r}")
        known = {s.key for s in self.statuses}
        for s in self.statuses:
            for n in s.next:
                if n not in known:
                    raise ValueError(f"status {s.key!r}: unknown next status {n!r}")
        if self.statuses[0].submitted:
            raise ValueError(f"the initial status {self.statuses[0].key!r} cannot count as submitted")
        return self

    # lookups -------------------------------------------------------------------------------------
    @property
    def category_keys(self) -> list[str]:
        return [c.key for c in self.categories]

    @property
    def initial_status(self) -> StatusDef:
        return self.statuses[0]

    def category(self, key: str) -> Category:
        for c in self.categories:
            if c.key == key:
                return c
        raise IncidentError(f"unknown harm category {key!r} (known: {', '.join(self.category_keys)})")

    def status(self, key: str) -> StatusDef:
        for s in self.statuses:
            if s.key == key:
                return s
        raise IncidentError(f"unknown status {key!r} (known: {', '.join(s.key for s in self.statuses)})")

    def check_transition(self, current: str, new: str) -> StatusDef:
        """The new status, or IncidentError when the flow does not allow `current` -> `new`."""
        target = self.status(new)
        allowed = self.status(current).next
        if new not in allowed:
            then = f"allowed from {current!r}: {', '.join(allowed)}" if allowed else f"{current!r} is final"
            raise IncidentError(f"status cannot change from {current!r} to {new!r} ({then})")
        return target

    def label(self, key: str, lang: str, **values: object) -> str:
        return getattr(self.report.labels, key)(lang).format(**values)


class Deadline(_Strict):
    """The governing reporting deadline of an incident."""

    due: dt.date
    days: int
    category: str
    basis: Cite


# loading ---------------------------------------------------------------------------------------------
def policy_path(regulation: str = DEFAULT_REGULATION) -> Path:
    return regulation_dir(regulation) / "incidents" / "incidents.yaml"


def _anchors(directory: Path) -> dict[str, set[str]]:
    """Text anchors and paragraph ids of the regulation's text.yaml (a citation must name one that exists)."""
    try:
        text = TextFile.model_validate(strict_yaml.load((directory / "text.yaml").read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as e:
        raise RegulationError(f"text.yaml: cannot be read to check the incident citations ({e})") from None
    return {k: set(a.paragraphs) for k, a in text.anchors.items()}


def parse_policy(raw: bytes, source: str = "incidents.yaml", anchors: dict[str, set[str]] | None = None) -> IncidentPolicy:
    try:
        data = strict_yaml.load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise RegulationError(f"{source}: malformed YAML: {e}") from None
    if not isinstance(data, dict):
        raise RegulationError(f"{source}: expected a mapping")
    if "sha256" in data:
        raise RegulationError(f"{source}: field 'sha256': computed on load, not written in the file")
    try:
        policy = IncidentPolicy.model_validate({**data, "sha256": hashlib.sha256(raw).hexdigest()})
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise RegulationError(f"{source}: field '{loc}': {msg}") from None
    for c in policy.categories if anchors is not None else ():
        if c.source.anchor not in anchors or (c.source.paragraph and c.source.paragraph not in anchors[c.source.anchor]):
            raise RegulationError(f"{source}: category {c.key!r}: text anchor {c.source.anchor} "
                                  f"{c.source.paragraph or ''} is not in text.yaml")
    return policy


def load_policy(path: str | Path | None = None) -> IncidentPolicy:
    """The bundled incident policy (cached), or the one at `path`."""
    if path is None:
        return _default_policy()
    p = Path(path)
    if not p.is_file():
        raise RegulationError(f"{p}: incident policy not found")
    return parse_policy(p.read_bytes(), str(p), _anchors(p.parent.parent) if (p.parent.parent / "text.yaml").is_file() else None)


@lru_cache(maxsize=1)
def _default_policy() -> IncidentPolicy:
    p = policy_path()
    if not p.is_file():
        raise RegulationError(f"{p}: incident policy not found")
    return parse_policy(p.read_bytes(), p.name, _anchors(p.parent.parent))


# deadlines --------------------------------------------------------------------------------------------
def as_date(value: dt.date) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def governing_deadline(policy: IncidentPolicy, categories: str | Iterable[str], aware_at: dt.date) -> Deadline:
    """The earliest deadline of the categories that apply (ties: the first in the policy's order)."""
    keys = [categories] if isinstance(categories, str) else list(categories)
    if not keys:
        raise IncidentError("at least one harm category is needed")
    chosen = [policy.category(k) for k in keys]  # raises on an unknown key
    order = {c.key: i for i, c in enumerate(policy.categories)}
    best = min(chosen, key=lambda c: (c.deadline_days, order[c.key]))
    return Deadline(due=as_date(aware_at) + dt.timedelta(days=best.deadline_days), days=best.deadline_days,
                    category=best.key, basis=best.basis)


def deadline(category: str | Iterable[str], aware_at: dt.date, policy: IncidentPolicy | None = None) -> dt.date:
    """The latest date the report is due for `category` (or several: the earliest of their deadlines)."""
    return governing_deadline(policy or load_policy(), category, aware_at).due


def days_remaining(due: dt.date, as_of: dt.date) -> int:
    """Whole days from `as_of` to `due`: 0 on the day itself, negative once overdue."""
    return (as_date(due) - as_date(as_of)).days


def is_overdue(due: dt.date, as_of: dt.date, submitted: bool = False) -> bool:
    """Past the deadline with no report submitted (the deadline day itself is still in time)."""
    return not submitted and days_remaining(due, as_of) < 0


def deadline_table(policy: IncidentPolicy, lang: str = "en") -> str:
    """The categories and their deadlines as a Markdown table (docs/incidents.md embeds this one)."""
    head = {"en": ("Category", "Harm", "Defined in", "Report at the latest", "Deadline set by"),
            "ko": ("범주", "피해", "정의 조항", "보고 기한", "기한 근거")}[lang if lang in LANGS else "en"]
    rows = [f"| {' | '.join(head)} |", "|" + "---|" * len(head)]
    for c in policy.categories:
        mark = "".join(f" [{m}]" for m in c.marks)
        rows.append(f"| `{c.key}` | {c.label(lang)} | {c.point(lang)}{mark} | "
                    f"{policy.label('days_after_awareness', lang, n=c.deadline_days)} | {c.basis(lang)} |")
    return "\n".join(rows) + "\n"
