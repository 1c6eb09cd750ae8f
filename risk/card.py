"""The system card: the facts about an AI system that the EU AI Act classification needs.

Every fact is tri-state: true, false or null (unknown).  Unknown is never read as "no": the
classifier turns it into an open question for legal review.  The JSON Schema is published at
docs/schema/system-card.schema.json (`python -m audit.schemas`).
"""
from __future__ import annotations

import hashlib
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from annotated_types import Ge
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, ValidationError,
                      WithJsonSchema, field_validator)

from . import strict_yaml
from .errors import CardError

MAX_CARD_BYTES = 1_000_000

# Annex III points of Regulation (EU) 2024/1689 as published (12.7.2024).  The regulation data
# (policies/eu-ai-act-2024/rules.yaml) is checked against this list when it is loaded.
ANNEX_III_POINTS: tuple[str, ...] = (
    "1(a)", "1(b)", "1(c)", "2", "3(a)", "3(b)", "3(c)", "3(d)", "4(a)", "4(b)",
    "5(a)", "5(b)", "5(c)", "5(d)", "6(a)", "6(b)", "6(c)", "6(d)", "6(e)",
    "7(a)", "7(b)", "7(c)", "7(d)", "8(a)", "8(b)")
ANNEX_I_ITEMS = range(1, 21)  # Section A: 1-12, Section B: 13-20

Fact = StrictBool | None


def _annex_iii_point(value: str) -> str:
    point = re.sub(r"\s+", "", value)
    if point not in ANNEX_III_POINTS:
        raise ValueError(f"unknown Annex III point '{value}' (valid: {', '.join(ANNEX_III_POINTS)})")
    return point


def _flop(value: Any) -> Any:
    """YAML 1.1 reads `2e25` as a string; accept numeric strings, reject anything else."""
    if isinstance(value, bool):
        raise ValueError("training_flop must be a number such as 2e25")
    if isinstance(value, str):
        try:
            return float(value.replace("_", ""))
        except ValueError:
            raise ValueError(f"training_flop must be a number such as 2e25, got '{value}'") from None
    return value


AnnexIIIPoint = Annotated[str, AfterValidator(_annex_iii_point),
                          WithJsonSchema({"type": "string", "enum": list(ANNEX_III_POINTS)})]
Flop = Annotated[Annotated[float, Ge(0)] | None, BeforeValidator(_flop)]  # null: unknown
Role = Literal["provider", "deployer", "importer", "distributor", "authorised_representative", "product_manufacturer"]


def _fact(question: str) -> Any:
    """A tri-state fact: unknown (None) until the card answers the question."""
    return Field(None, description=question)


class _Facts(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _element(question: str) -> Any:
    """An element of the Art. 3(1) definition: presumed met (a card describes an AI system) unless the card
    says otherwise; null makes it an open question."""
    return Field(True, description=question)


class Definition(_Facts):
    """The Art. 3(1) definition screen, read with the Commission's guidelines on the AI-system definition
    (Feb 2025): a system that lacks an element (e.g. a fixed rule table written by people, which infers
    nothing) is not an AI system and the Regulation does not apply to it."""
    machine_based: Fact = _element("Is it a machine-based system? (Art. 3(1))")
    autonomy: Fact = _element("Is it designed to operate with some level of autonomy, i.e. some independence "
                              "of action from human involvement? (Art. 3(1))")
    infers_outputs: Fact = _element(
        "Does it infer, from the input it receives, how to generate outputs such as predictions, content, "
        "recommendations or decisions (learning, reasoning or modelling), rather than only executing rules "
        "defined solely by natural persons? (Art. 3(1))")
    basis: str | None = Field(None, max_length=5000,
                              description="Why the system does or does not meet the definition (kept with the card).")


class Scope(_Facts):
    military_defence_national_security: Fact = _fact(
        "Is the system placed on the market, put into service or used exclusively for military, "
        "defence or national-security purposes? (Art. 2(3))")
    scientific_research_only: Fact = _fact(
        "Is the system (or model) developed and put into service for the sole purpose of scientific "
        "research and development? (Art. 2(6))")


class Practices(_Facts):
    subliminal_or_manipulative_causing_harm: Fact = _fact(
        "Does it deploy subliminal, purposefully manipulative or deceptive techniques that materially "
        "distort behaviour and cause, or are reasonably likely to cause, significant harm? (Art. 5(1)(a))")
    exploits_vulnerabilities_causing_harm: Fact = _fact(
        "Does it exploit vulnerabilities due to age, disability or a specific social or economic "
        "situation to materially distort behaviour, causing significant harm? (Art. 5(1)(b))")
    social_scoring_detrimental: Fact = _fact(
        "Does it score persons over time on social behaviour or personal characteristics, leading to "
        "detrimental treatment in unrelated contexts or unjustified or disproportionate treatment? "
        "(Art. 5(1)(c))")
    crime_risk_solely_profiling: Fact = _fact(
        "Does it assess or predict the risk of a person committing a criminal offence based solely on "
        "profiling or on personality traits and characteristics? (Art. 5(1)(d))")
    crime_risk_supports_human_assessment: Fact = _fact(
        "Is it only used to support a human assessment of involvement in a criminal activity that is "
        "already based on objective and verifiable facts? (Art. 5(1)(d) carve-out)")
    untargeted_facial_scraping: Fact = _fact(
        "Does it create or expand facial-recognition databases by untargeted scraping of facial images "
        "from the internet or CCTV footage? (Art. 5(1)(e))")
    emotion_recognition_workplace_or_education: Fact = _fact(
        "Does it infer emotions of natural persons in the workplace or in education institutions? "
        "(Art. 5(1)(f))")
    emotion_recognition_medical_or_safety: Fact = _fact(
        "Is that emotion inference intended to be put in place for medical or safety reasons? "
        "(Art. 5(1)(f) carve-out)")
    biometric_categorisation_sensitive_traits: Fact = _fact(
        "Does it categorise persons on their biometric data to deduce or infer race, political opinions, "
        "trade-union membership, religious or philosophical beliefs, sex life or sexual orientation? "
        "(Art. 5(1)(g))")
    biometric_categorisation_labelling_or_law_enforcement: Fact = _fact(
        "Is it limited to labelling or filtering lawfully acquired biometric datasets, or to categorising "
        "biometric data in the area of law enforcement? (Art. 5(1)(g) carve-out)")
    realtime_rbi_public_law_enforcement: Fact = _fact(
        "Is it used for 'real-time' remote biometric identification in publicly accessible spaces for "
        "law enforcement? (Art. 5(1)(h))")
    realtime_rbi_permitted_objective: Fact = _fact(
        "Is that use strictly necessary for one of the objectives in Art. 5(1)(h)(i)-(iii) (victims and "
        "missing persons; imminent threat or terrorist attack; suspects of Annex II offences)? "
        "(Art. 5(1)(h) exceptions)")
    generates_ncii_or_csam: Fact = _fact(
        "Does it generate non-consensual intimate imagery or child sexual abuse material? Evaluated only "
        "with the omnibus-2026 overlay [SECONDARY, unverified against the OJ].")


class AnnexI(_Facts):
    legislation: list[Annotated[int, Field(ge=1, le=20)]] | None = Field(
        None, description="Annex I items (1-12 Section A, 13-20 Section B) under which the system is a safety component "
                          "of a product or is itself a product; [] if none. (Art. 6(1)(a))")
    third_party_conformity: Fact = _fact(
        "Must that product undergo a third-party conformity assessment under that legislation? "
        "(Art. 6(1)(b))")


class Transparency(_Facts):
    interacts_with_people: Fact = _fact(
        "Is it intended to interact directly with natural persons? (Art. 50(1))")
    obvious_ai_interaction: Fact = _fact(
        "Is it obvious to a reasonably well-informed, observant and circumspect person that they are "
        "interacting with an AI system? (Art. 50(1) exception)")
    generates_synthetic_content: Fact = _fact(
        "Does it generate synthetic audio, image, video or text content? (Art. 50(2))")
    assistive_editing_only: Fact = _fact(
        "Does it only perform an assistive function for standard editing, or not substantially alter "
        "the input data or its semantics? (Art. 50(2) exception)")
    emotion_recognition_or_biometric_categorisation: Fact = _fact(
        "Is it an emotion-recognition or biometric-categorisation system? (Art. 50(3))")
    deep_fake: Fact = _fact(
        "Does it generate or manipulate image, audio or video content constituting a deep fake? "
        "(Art. 50(4), Art. 3(60))")
    artistic_or_satirical: Fact = _fact(
        "Is the deep-fake content part of an evidently artistic, creative, satirical or fictional work? "
        "(Art. 50(4): limits the disclosure, does not remove it)")
    public_interest_text: Fact = _fact(
        "Does it generate or manipulate text published to inform the public on matters of public "
        "interest? (Art. 50(4))")
    human_editorial_control: Fact = _fact(
        "Does that text undergo human review or editorial control, with a person holding editorial "
        "responsibility? (Art. 50(4) exception)")
    authorised_law_enforcement: Fact = _fact(
        "Is the use authorised by law to detect, prevent, investigate or prosecute criminal offences "
        "(and, for Art. 50(1), not available to the public to report a criminal offence)? "
        "(Art. 50(1)-(4) exceptions)")


class Gpai(_Facts):
    is_gpai: Fact = _fact(
        "Is this a general-purpose AI model (significant generality, wide range of distinct tasks, "
        "integrable into downstream systems)? (Art. 3(63))")
    training_flop: Flop = Field(
        None, description="Cumulative training compute in floating-point operations, e.g. 2e25. (Art. 51(2))")
    high_impact_capabilities: Fact = _fact(
        "Has the model been evaluated as having high-impact capabilities? (Art. 51(1)(a))")
    commission_designated: Fact = _fact(
        "Has the Commission designated the model as having systemic risk? (Art. 51(1)(b), Annex XIII)")
    open_weights: Fact = _fact(
        "Is the model released under a free and open-source licence with public weights? (Art. 53(2))")


class Art25(_Facts):
    rebranded: Fact = _fact(
        "Has a deployer, distributor or importer put its name or trademark on a high-risk system? "
        "(Art. 25(1)(a))")
    substantial_modification: Fact = _fact(
        "Has a deployer, distributor or importer substantially modified the high-risk system? "
        "(Art. 25(1)(b))")
    intended_purpose_changed: Fact = _fact(
        "Has a deployer, distributor or importer changed the intended purpose so that the system "
        "became high-risk? (Art. 25(1)(c))")


class SystemCard(BaseModel):
    """Facts about one AI system (or GPAI model) for EU AI Act classification and the FRIA."""

    model_config = ConfigDict(extra="forbid", title="SystemCard")

    name: str = Field(min_length=1, max_length=200, description="System name.")
    version: str | None = Field(None, max_length=100, description="System or model version.")
    provider: str | None = Field(None, max_length=300, description="Provider (Art. 3(3)).")
    intended_purpose: str | None = Field(None, max_length=5000, description="Intended purpose (Art. 3(12)).")
    role: Role | list[Role] | None = Field(
        None, description="Your role(s) for this system: provider, deployer, importer, distributor, "
                          "authorised_representative, product_manufacturer.")
    deployer_type: Literal["private", "public_body", "public_service"] | None = Field(
        None, description="The deployer: private entity, body governed by public law, or private entity providing "
                          "public services. (Art. 27(1))")
    placed_on_market: date | None = Field(
        None, description="Date first placed on the market or put into service (transitional rules, Art. 111).")
    significant_design_change: Fact = _fact(
        "Has the design changed significantly since 2 Aug 2026? (Art. 111(2))")
    continues_learning: Fact = _fact(
        "Does the system continue to learn after being placed on the market or put into service, so that its "
        "outputs may feed back into its future inputs? (Art. 15(4), third subparagraph)")
    definition: Definition = Field(default_factory=Definition)
    scope: Scope = Field(default_factory=Scope)
    practices: Practices = Field(default_factory=Practices)
    annex_iii: list[AnnexIIIPoint] | None = Field(
        None, description="Annex III points the intended purpose falls under, e.g. ['5(b)'] or ['2']; [] if none.")
    biometric_verification_only: Fact = _fact(
        "Is its sole purpose to confirm that a person is who they claim to be? (Annex III 1(a) exclusion)")
    financial_fraud_detection: Fact = _fact(
        "Is it used for the purpose of detecting financial fraud? (Annex III 5(b) exclusion)")
    travel_document_verification_only: Fact = _fact(
        "Is it only used to verify travel documents? (Annex III 7(d) exclusion)")
    campaign_logistics_only: Fact = _fact(
        "Is it a tool for organising, optimising or structuring political campaigns whose output "
        "natural persons are not directly exposed to? (Annex III 8(b) exclusion)")
    derogation: list[Literal["a", "b", "c", "d"]] | None = Field(
        None, description="Art. 6(3) conditions the provider relies on to consider an Annex III system not high-risk; "
                          "[] if none is claimed.")
    profiling: Fact = _fact(
        "Does the system perform profiling of natural persons? (Art. 6(3), third subparagraph)")
    annex_i: AnnexI = Field(default_factory=AnnexI)
    transparency: Transparency = Field(default_factory=Transparency)
    gpai: Gpai = Field(default_factory=Gpai)
    art25: Art25 = Field(default_factory=Art25)
    # FRIA, Art. 27(1)(a)-(f): free text carried into the FRIA document.
    deployer_processes: str | None = Field(None, max_length=10_000, description="Deployer processes using the system (Art. 27(1)(a)).")
    period_of_use: str | None = Field(None, max_length=2000, description="Period of intended use (Art. 27(1)(b)).")
    frequency_of_use: str | None = Field(None, max_length=2000, description="Frequency of intended use (Art. 27(1)(b)).")
    affected_persons: list[str] | None = Field(None, description="Categories of natural persons and groups likely to be affected (Art. 27(1)(c)).")
    target_population: dict[str, dict[str, Annotated[float, Ge(0)]]] | None = Field(
        None, description="Shares of each group in the population the system is intended to be used on, per "
                          "protected attribute, e.g. sex: {female: 0.51, male: 0.49}; each attribute's shares sum "
                          "to 1 (Art. 10(3)-(4): representative in view of the intended purpose and setting).")

    @field_validator("target_population")
    @classmethod
    def _shares_sum_to_one(cls, v: dict[str, dict[str, float]] | None) -> dict[str, dict[str, float]] | None:
        for attribute, shares in (v or {}).items():
            if not shares or abs(sum(shares.values()) - 1) > 0.01:
                raise ValueError(f"the shares of '{attribute}' must sum to 1 (they sum to {sum(shares.values()):.3f})")
        return v
    specific_risks: list[str] | None = Field(None, description="Specific risks of harm to those persons (Art. 27(1)(d)).")
    human_oversight: str | None = Field(None, max_length=10_000, description="How human-oversight measures are implemented (Art. 27(1)(e), Art. 14).")
    risk_measures: str | None = Field(None, max_length=10_000, description="Measures if the risks materialise, incl. internal governance (Art. 27(1)(f)).")
    complaint_mechanism: str | None = Field(None, max_length=5000, description="Complaint mechanism for affected persons (Art. 27(1)(f)).")
    notes: str | None = Field(None, max_length=10_000)

    @property
    def roles(self) -> list[str] | None:
        if self.role is None:
            return None
        return [self.role] if isinstance(self.role, str) else list(self.role)


class LoadedCard(BaseModel):
    """A validated card with where it came from."""

    card: SystemCard
    path: str | None = None
    sha256: str | None = None

    @property
    def name(self) -> str:
        return self.card.name


def _describe(e: ValidationError) -> tuple[str, str]:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
    msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
    more = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
    return loc, msg + more


def parse_card(data: Any, source: str | None = None) -> SystemCard:
    if not isinstance(data, dict):
        raise CardError(f"a system card must be a YAML mapping, got {type(data).__name__}", source=source)
    try:
        return SystemCard.model_validate(data)
    except ValidationError as e:
        loc, msg = _describe(e)
        raise CardError(msg, field=loc, source=source) from None


def load_card(path: str | Path) -> LoadedCard:
    p = Path(path)
    if not p.is_file():
        raise CardError("system card file not found", source=str(path))
    raw = p.read_bytes()
    if len(raw) > MAX_CARD_BYTES:
        raise CardError(f"system card is larger than {MAX_CARD_BYTES} bytes", source=str(path))
    try:
        data = strict_yaml.load(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise CardError(f"system card is not UTF-8 text (byte {e.start})", source=str(path)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise CardError(f"malformed YAML: {problem}", source=where) from None
    except RecursionError:
        raise CardError("YAML nests too deeply", source=str(path)) from None
    card = parse_card(data, str(path))
    return LoadedCard(card=card, path=str(p.resolve()), sha256=hashlib.sha256(raw).hexdigest())
