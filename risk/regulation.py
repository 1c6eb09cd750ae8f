"""The regulation as data: typed models of policies/<regulation>/*.yaml, loading, checksum, cross-checks.

Each file is validated by a pydantic model (JSON Schemas in policies/<regulation>/schema/, written by
`python -m risk.schemas`); references between files (rule ids, date keys, penalty ids, text anchors,
card facts, check names) are checked when the regulation is loaded.
"""
from __future__ import annotations

import hashlib
import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from . import strict_yaml

from .card import ANNEX_III_POINTS, SystemCard
from .catalogue import check_catalogue
from .conditions import Cond
from .errors import RegulationError

DEFAULT_REGULATION = "eu-ai-act-2024"
CHECK_NAMES = check_catalogue().names  # display order
ROUTE_KEY = "high_risk_route"  # resolves to the date of the high-risk route that applies

Mark = Literal["SECONDARY", "UNCERTAIN"]
Tier = Literal["prohibited", "high", "transparency"]
Role = Literal["provider", "deployer", "importer", "distributor", "authorised_representative", "product_manufacturer"]


def _known_check(name: str) -> str:
    if name not in CHECK_NAMES:
        raise ValueError(f"unknown check '{name}' (the catalogue, policies/checks.yaml, has {', '.join(CHECK_NAMES)})")
    return name


CheckName = Annotated[str, AfterValidator(_known_check), WithJsonSchema({"type": "string", "enum": list(CHECK_NAMES)})]
Automation = Literal["full", "partial", "manual"]
RuleKind = Literal["scope", "scope_exclusion", "prohibition", "high_risk", "annex_iii", "derogation", "override",
                   "exception", "role", "transparency", "gpai", "gpai_systemic", "gpai_waiver", "fria", "note",
                   "consistency"]
ID = r"^(eu\.aia|omnibus-2026)\.[A-Za-z0-9_.-]+$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Source(_Strict):
    anchor: str = Field(description="EUR-Lex HTML element id, e.g. art_5 or anx_III.")
    paragraph: str | None = Field(None, pattern=r"^\d{3}\.\d{3}$", description="Paragraph id, e.g. 005.001.")


class Review(_Strict):
    reviewed_by: str | None = None
    reviewed_on: dt.date | None = None
    legal_signoff: bool = False
    note: str | None = None


class Rule(_Strict):
    id: str = Field(pattern=ID)
    citation: str
    title: str
    kind: RuleKind
    effect: Literal["imposes", "relieves"] = "imposes"
    tier: Tier | None = None
    area: str | None = None
    domain: str | None = Field(None, description="aiaudit policy domain whose thresholds fit this use case.")
    when: Cond
    overrides: tuple[str, ...] = ()
    applies_from: str
    addressee: tuple[Role, ...] = ()
    penalty: str | None = None
    marks: tuple[Mark, ...] = ()
    note: str | None = None
    source: Source
    review: Review | None = None


class RulesFile(_Strict):
    kind: Literal["rules"]
    rules: tuple[Rule, ...]


class Evidence(_Strict):
    id: str = Field(pattern=ID)
    point: str
    what: str
    checks: tuple[CheckName, ...] = ()
    supporting: tuple[CheckName, ...] = ()
    automation: Automation
    annex_iv: tuple[str, ...] = ()
    threshold_source: Literal["provider_declared"] | None = None


class ConditionalNote(_Strict):
    when: Cond
    text: str


class Obligation(_Strict):
    id: str = Field(pattern=ID)
    article: str
    title: str
    addressee: tuple[Role, ...]
    applies_when: Cond
    applies_from: str
    penalty: str | None = None
    penalty_via: str | None = None
    note: str | None = None
    notes: tuple[ConditionalNote, ...] = ()
    marks: tuple[Mark, ...] = ()
    survives_prohibition: bool = Field(False, description="Still listed when the system is prohibited.")
    source: Source
    evidence: tuple[Evidence, ...] = Field(min_length=1)

    @property
    def checks(self) -> list[str]:
        wanted = {c for e in self.evidence for c in e.checks}
        return [c for c in CHECK_NAMES if c in wanted]

    @property
    def supporting(self) -> list[str]:
        wanted = {c for e in self.evidence for c in e.supporting} - set(self.checks)
        return [c for c in CHECK_NAMES if c in wanted]

    @property
    def automation(self) -> Automation:
        levels = {e.automation for e in self.evidence}
        if levels == {"full"}:
            return "full"
        return "manual" if levels == {"manual"} else "partial"


class MissingCheckPolicy(_Strict):
    status: Literal["fail", "warn"] = "fail"
    severity: Literal["info", "low", "medium", "high", "critical"] = "medium"


class ObligationsFile(_Strict):
    kind: Literal["obligations"]
    checks: dict[CheckName, str]
    missing_check: MissingCheckPolicy = MissingCheckPolicy()
    obligations: tuple[Obligation, ...]


class Transitional(_Strict):
    when: Cond
    date: dt.date | None
    basis: str
    note: str


class DateEntry(_Strict):
    key: str
    date: dt.date | None
    basis: str
    covers: str
    transitional: tuple[Transitional, ...] = ()
    marks: tuple[Mark, ...] = ()


class Milestone(_Strict):
    date: dt.date
    basis: str
    what: str
    marks: tuple[Mark, ...] = ()
    note: str | None = None


class DatesFile(_Strict):
    kind: Literal["dates"]
    entry_into_force: dt.date
    dates: tuple[DateEntry, ...]
    milestones: tuple[Milestone, ...] = ()


class Penalty(_Strict):
    id: str = Field(pattern=ID)
    citation: str
    covers: str
    max_eur: int | None = None
    max_turnover_pct: float | None = None
    combine: Literal["higher", "lower"] | None = None
    applies_from: str
    source: Source


class PenaltiesFile(_Strict):
    kind: Literal["penalties"]
    penalties: tuple[Penalty, ...]


class OverlayChange(_Strict):
    id: str = Field(pattern=r"^[a-z0-9-]+\.[a-z0-9_.-]+$")
    kind: Literal["date", "date_key", "rule", "note"]
    description: str
    target: str | None = None
    date: dt.date | None = None
    basis: str | None = None
    when: Cond | None = None
    rules: tuple[str, ...] = ()
    obligations: tuple[str, ...] = ()
    rule: Rule | None = None


class Overlay(_Strict):
    """An amendment as a dated layer: in force from `in_force` (None: not in force, applied only on request)."""
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    status: Literal["proposed", "adopted_pending_oj", "adopted", "in_force"]
    in_force: dt.date | None = Field(None, description="Entry into force of the amending act; from this date the "
                                                          "layer is part of the consolidated text.")
    oj_ref: str | None = Field(None, description="Official Journal reference of the amending act, as reported.")
    verified_against_oj: bool
    marks: tuple[Mark, ...] = ()
    procedure: str
    sources: tuple[str, ...]
    changes: tuple[OverlayChange, ...]


class OverlaysFile(_Strict):
    kind: Literal["overlays"]
    overlays: tuple[Overlay, ...]


class Framework(_Strict):
    id: str
    title: str
    label: str
    marks: tuple[Mark, ...] = ()
    note: str | None = None


class Link(_Strict):
    from_: str = Field(alias="from")
    to: str
    rel: Literal["equivalent", "partial", "supports", "related"]
    provenance: Literal["internal", "nist-official-crosswalk", "secondary"]
    marks: tuple[Mark, ...] = ()


class CrosswalksFile(_Strict):
    kind: Literal["crosswalks"]
    frameworks: tuple[Framework, ...]
    links: tuple[Link, ...]


class AnchorText(_Strict):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    paragraphs: dict[str, str] = Field(default_factory=dict)


class TextFile(_Strict):
    kind: Literal["text"]
    edition: str
    consolidated_version: str | None = None
    html_sha256: str
    anchors: dict[str, AnchorText]


class RegulationIndex(_Strict):
    kind: Literal["regulation"]
    name: str
    version: str
    title: str
    celex: str
    eli: str
    edition: str
    eurlex_html: str
    files: tuple[str, ...]
    review: Review


FILE_MODELS: dict[str, type[BaseModel]] = {
    "regulation": RegulationIndex, "rules": RulesFile, "obligations": ObligationsFile, "dates": DatesFile,
    "penalties": PenaltiesFile, "overlays": OverlaysFile, "crosswalks": CrosswalksFile, "text": TextFile}


class Regulation(_Strict):
    """All files of one regulation, validated and cross-checked; overlays are applied by `classify`."""

    index: RegulationIndex
    rules: RulesFile
    obligations: ObligationsFile
    dates: DatesFile
    penalties: PenaltiesFile
    overlays: OverlaysFile
    crosswalks: CrosswalksFile
    text: TextFile
    checksum: str
    file_sha256: dict[str, str]

    @property
    def name(self) -> str:
        return self.index.name

    @property
    def version(self) -> str:
        return self.index.version

    def overlay(self, overlay_id: str) -> Overlay:
        for o in self.overlays.overlays:
            if o.id == overlay_id:
                return o
        known = ", ".join(o.id for o in self.overlays.overlays) or "none"
        raise RegulationError(f"unknown overlay '{overlay_id}' (available: {known})")

    def date_entry(self, key: str) -> DateEntry:
        for d in self.dates.dates:
            if d.key == key:
                return d
        raise RegulationError(f"unknown date key '{key}'")

    def penalty(self, pid: str) -> Penalty:
        for p in self.penalties.penalties:
            if p.id == pid:
                return p
        raise RegulationError(f"unknown penalty '{pid}'")


def _fact_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            paths |= _fact_paths(ann, f"{prefix}{name}.")
        else:
            paths.add(f"{prefix}{name}")
    return paths


CARD_FACTS = frozenset(_fact_paths(SystemCard))


def regulation_dir(name: str = DEFAULT_REGULATION) -> Path:
    """policies/<name>/, found through the `policies` package's own path (works for regular and
    namespace imports alike, unlike importlib.resources on an editable namespace install)."""
    import policies
    for entry in list(getattr(policies, "__path__", [])):
        candidate = Path(entry) / name
        if (candidate / "regulation.yaml").is_file():
            return candidate
    raise RegulationError(f"no bundled regulation '{name}'")


def _read(directory: Path, filename: str) -> tuple[dict[str, Any], bytes]:
    path = directory / filename
    if not path.is_file():
        raise RegulationError(f"{filename}: file not found in {directory}")
    raw = path.read_bytes()
    try:
        data = strict_yaml.load(raw.decode("utf-8"))
    except yaml.YAMLError as e:
        raise RegulationError(f"{filename}: malformed YAML: {e}") from None
    if not isinstance(data, dict):
        raise RegulationError(f"{filename}: expected a mapping")
    return data, raw


def _validate(model: type[BaseModel], data: dict[str, Any], filename: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise RegulationError(f"{filename}: field '{loc}': {err['msg']}") from None


def _cross_check(reg: Regulation) -> None:
    """Every reference between records must resolve; a typo in the law data is a load error."""
    rules = {r.id: r for r in reg.rules.rules}
    if len(rules) != len(reg.rules.rules):
        raise RegulationError("rules.yaml: duplicate rule id")
    overlay_rules = {c.rule.id: c.rule for o in reg.overlays.overlays for c in o.changes if c.rule}
    all_rules = {**rules, **overlay_rules}
    kinds = {r.kind for r in all_rules.values()}
    date_keys = {d.key for d in reg.dates.dates} | {c.target for o in reg.overlays.overlays
                                                    for c in o.changes if c.kind == "date_key"}
    penalties = {p.id for p in reg.penalties.penalties}
    anchors = reg.text.anchors
    obligations = {o.id for o in reg.obligations.obligations}

    def cond_refs(cond: Cond, where: str) -> None:
        for f in cond.facts():
            if f not in CARD_FACTS:
                raise RegulationError(f"{where}: unknown system-card fact '{f}'")
        for r in cond.rules():
            if r not in all_rules:
                raise RegulationError(f"{where}: unknown rule '{r}'")
        for k in cond.kinds():
            if k not in kinds:
                raise RegulationError(f"{where}: no rule of kind '{k}'")

    def source_ok(src: Source, where: str) -> None:
        if src.anchor not in anchors:
            raise RegulationError(f"{where}: text anchor '{src.anchor}' is not in text.yaml")
        if src.paragraph and src.paragraph not in anchors[src.anchor].paragraphs:
            raise RegulationError(f"{where}: paragraph '{src.paragraph}' is not in text.yaml")

    for r in all_rules.values():
        where = f"rule {r.id}"
        cond_refs(r.when, where)
        source_ok(r.source, where)
        for o in r.overrides:
            if o not in all_rules:
                raise RegulationError(f"{where}: overrides unknown rule '{o}'")
        if r.applies_from not in date_keys:
            raise RegulationError(f"{where}: unknown date key '{r.applies_from}'")
        if r.penalty and r.penalty not in penalties:
            raise RegulationError(f"{where}: unknown penalty '{r.penalty}'")
        if (r.tier is None) == (r.kind in ("prohibition", "high_risk", "transparency")):
            raise RegulationError(f"{where}: kind '{r.kind}' and tier '{r.tier}' disagree")
    points = [c.has for r in rules.values() if r.kind == "annex_iii" for c in r.when.all_ or () if c.fact == "annex_iii"]
    if sorted(map(str, points)) != sorted(ANNEX_III_POINTS):
        raise RegulationError("rules.yaml: Annex III rules do not match the system card's Annex III points")
    for o in reg.obligations.obligations:
        where = f"obligation {o.id}"
        cond_refs(o.applies_when, where)
        for n in o.notes:
            cond_refs(n.when, where)
        source_ok(o.source, where)
        if o.applies_from != ROUTE_KEY and o.applies_from not in date_keys:
            raise RegulationError(f"{where}: unknown date key '{o.applies_from}'")
        if o.penalty and o.penalty not in penalties:
            raise RegulationError(f"{where}: unknown penalty '{o.penalty}'")
    for d in reg.dates.dates:
        for t in d.transitional:
            cond_refs(t.when, f"date {d.key}")
    for p in reg.penalties.penalties:
        source_ok(p.source, f"penalty {p.id}")
        if p.applies_from not in date_keys:
            raise RegulationError(f"penalty {p.id}: unknown date key '{p.applies_from}'")
    for ov in reg.overlays.overlays:
        for c in ov.changes:
            where = f"overlay change {c.id}"
            if c.kind == "date" and c.target not in date_keys:
                raise RegulationError(f"{where}: unknown date key '{c.target}'")
            if c.kind in ("date", "date_key") and c.date is None:
                raise RegulationError(f"{where}: needs a date")
            if c.kind == "rule" and c.rule is None:
                raise RegulationError(f"{where}: needs a rule")
            if c.when is not None:
                cond_refs(c.when, where)
            for rid in c.rules:
                if rid not in all_rules:
                    raise RegulationError(f"{where}: unknown rule '{rid}'")
            for oid in c.obligations:
                if oid not in obligations:
                    raise RegulationError(f"{where}: unknown obligation '{oid}'")
    evidence_ids = {e.id for o in reg.obligations.obligations for e in o.evidence}
    eu_ids = set(all_rules) | obligations | evidence_ids
    for link in reg.crosswalks.links:
        if link.from_.startswith("eu.aia.") and link.from_ not in eu_ids:
            raise RegulationError(f"crosswalks.yaml: unknown EU AI Act id '{link.from_}'")


def load_regulation_dir(directory: Path) -> Regulation:
    """Read, validate and cross-check the regulation files in `directory`."""
    index_data, index_raw = _read(directory, "regulation.yaml")
    index = _validate(RegulationIndex, index_data, "regulation.yaml")
    parts: dict[str, Any] = {}
    digests = {"regulation.yaml": hashlib.sha256(index_raw).hexdigest()}
    for filename in index.files:
        data, raw = _read(directory, filename)
        kind = data.get("kind")
        if kind not in FILE_MODELS or kind == "regulation" or kind in parts:
            raise RegulationError(f"{filename}: unexpected kind '{kind}'")
        parts[kind] = _validate(FILE_MODELS[kind], data, filename)
        digests[filename] = hashlib.sha256(raw).hexdigest()
    missing = set(FILE_MODELS) - {"regulation"} - set(parts)
    if missing:
        raise RegulationError(f"regulation '{index.name}' lacks file(s) of kind {sorted(missing)}")
    manifest = "\n".join(f"{k}  {v}" for k, v in sorted(digests.items()))
    reg = Regulation(index=index, checksum=hashlib.sha256(manifest.encode()).hexdigest(), file_sha256=digests, **parts)
    _cross_check(reg)
    return reg


@lru_cache(maxsize=4)
def load_regulation(name: str = DEFAULT_REGULATION) -> Regulation:
    """The bundled regulation `name` (cached: the data ships with the package and the models are frozen)."""
    return load_regulation_dir(regulation_dir(name))


def available_overlays(name: str = DEFAULT_REGULATION) -> list[str]:
    return [o.id for o in load_regulation(name).overlays.overlays]
