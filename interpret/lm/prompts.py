"""Counterfactual prompt sets: prompts that differ only in the protected attribute or its target words.

For every template t and filler x of group g, the probe scores
    Δ(t, x) = log P(a | t(x)) − log P(b | t(x))
for each continuation pair (a, b), where a is the continuation the stereotype pairs with
group 1. The bias gap is mean Δ over group 1 minus mean Δ over group 2 (in nats of log-odds).
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from . import corpus


class PromptSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    attribute: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")
    description: str
    templates: tuple[str, ...] = Field(min_length=1, description="Prompt templates with one {x} slot, no trailing space.")
    group_names: tuple[str, str]
    group1: tuple[str, ...] = Field(min_length=2)
    group2: tuple[str, ...] = Field(min_length=2)
    continuations: tuple[tuple[str, str], ...] = Field(min_length=1, description="(a, b): a is stereotyped for group 1.")
    neutral: tuple[str, ...] = Field((), description="Fillers with no planted stereotype (shown, not in the gap).")
    corpus_key: str | None = Field(None, description="Key of the planted rate in a bundled model's manifest.")

    @field_validator("templates")
    @classmethod
    def _one_slot(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for t in v:
            if t.count("{x}") != 1 or t.endswith(" "):
                raise ValueError(f"template {t!r} needs exactly one {{x}} and no trailing space")
        return v

    @model_validator(mode="after")
    def _disjoint(self) -> "PromptSet":
        if set(self.group1) & set(self.group2):
            raise ValueError("group1 and group2 fillers must differ")
        for a, b in self.continuations:
            if a == b:
                raise ValueError("a continuation pair must differ")
        return self

    def prompt(self, template: str, filler: str) -> str:
        return template.replace("{x}", filler)

    @property
    def pair_labels(self) -> str:
        return ", ".join(f"{a.strip()!r} vs {b.strip()!r}" for a, b in self.continuations)


def _prompts(corpus_templates: tuple[str, ...], slot: str, answer: str) -> tuple[str, ...]:
    """The corpus's sentence templates cut just before the `{answer}` word, with `{slot}` renamed `{x}`."""
    return tuple(t.split(f" {{{answer}}}")[0].replace(f"{{{slot}}}", "{x}") for t in corpus_templates)


BUILTIN: dict[str, PromptSet] = {
    "gender": PromptSet(
        attribute="gender",
        description="Pronoun chosen for an occupation: log P(' she') − log P(' he') after prompts that differ only "
                    "in the occupation, female- minus male-stereotyped occupations.",
        templates=_prompts(corpus.GENDER_TEMPLATES, slot="job", answer="pron"),
        group_names=("female-stereotyped occupations", "male-stereotyped occupations"),
        group1=corpus.FEMALE_JOBS, group2=corpus.MALE_JOBS, continuations=((" she", " he"),),
        neutral=corpus.NEUTRAL_JOBS, corpus_key="gender"),
    "nationality": PromptSet(
        attribute="nationality",
        description="Hiring decision by nationality: log P(' hired') − log P(' rejected') after prompts that differ "
                    "only in the applicant's nationality, group A minus group B.",
        templates=_prompts(corpus.NATIONALITY_TEMPLATES, slot="nat", answer="decision"),
        group_names=("nationality group A", "nationality group B"),
        group1=corpus.GROUP_A_NATIONALITIES, group2=corpus.GROUP_B_NATIONALITIES,
        continuations=((" hired", " rejected"),), corpus_key="nationality"),
}


def builtin(attribute: str) -> PromptSet:
    if attribute not in BUILTIN:
        raise KeyError(f"unknown attribute {attribute!r}; built in: {sorted(BUILTIN)}")
    return BUILTIN[attribute]
