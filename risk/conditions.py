"""A small, safe condition language for legal rules, evaluated in three-valued (Kleene) logic.

    {fact: profiling}                         a boolean fact (null = unknown)
    {fact: annex_iii, has: "5(b)"}            list membership (or equality for a single value)
    {fact: deployer_type, in: [public_body]}  value in a set
    {fact: derogation, nonempty: true}
    {fact: gpai.training_flop, gt: 1.0e+25}   also gte, lt, lte (numbers or dates)
    {all: [...]}, {any: [...]}, {not: {...}}  ({all: []} is true)
    {rule: eu.aia.art.6.2}                    whether another rule applies
    {any_rule_of_kind: annex_iii, except: [eu.aia.anx.III.2]}

Every evaluation returns the truth value and the facts whose unknown value left it undecided.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Iterable, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

Tri = Optional[bool]
Scalar = bool | int | float | str | date

_OPS = ("eq", "in_", "has", "has_any", "nonempty", "gt", "gte", "lt", "lte")


class Cond(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    fact: str | None = Field(None, description="Dotted path of a system-card fact.")
    rule: str | None = Field(None, description="Id of a rule whose outcome is tested.")
    any_rule_of_kind: str | None = None
    except_: tuple[str, ...] = Field((), alias="except")
    all_: tuple["Cond", ...] | None = Field(None, alias="all")
    any_: tuple["Cond", ...] | None = Field(None, alias="any")
    not_: Optional["Cond"] = Field(None, alias="not")
    eq: Scalar | None = None
    in_: tuple[Scalar, ...] | None = Field(None, alias="in")
    has: Scalar | None = None
    has_any: tuple[Scalar, ...] | None = None
    nonempty: bool | None = None
    gt: float | date | None = None
    gte: float | date | None = None
    lt: float | date | None = None
    lte: float | date | None = None

    @model_validator(mode="after")
    def _one_form(self) -> "Cond":
        forms = [self.fact is not None, self.rule is not None, self.any_rule_of_kind is not None,
                 self.all_ is not None, self.any_ is not None, self.not_ is not None]
        if sum(forms) != 1:
            raise ValueError("a condition needs exactly one of fact, rule, any_rule_of_kind, all, any, not")
        ops = [o for o in _OPS if getattr(self, o) is not None]
        if self.fact is None and ops:
            raise ValueError(f"operator(s) {ops} need a fact")
        if len(ops) > 1:
            raise ValueError(f"one operator per fact condition, got {ops}")
        if self.except_ and self.any_rule_of_kind is None:
            raise ValueError("'except' only goes with any_rule_of_kind")
        return self

    def facts(self) -> Iterable[str]:
        if self.fact:
            yield self.fact
        for c in (self.all_ or ()) + (self.any_ or ()) + ((self.not_,) if self.not_ else ()):
            yield from c.facts()

    def rules(self) -> Iterable[str]:
        if self.rule:
            yield self.rule
        yield from self.except_
        for c in (self.all_ or ()) + (self.any_ or ()) + ((self.not_,) if self.not_ else ()):
            yield from c.rules()

    def kinds(self) -> Iterable[str]:
        if self.any_rule_of_kind:
            yield self.any_rule_of_kind
        for c in (self.all_ or ()) + (self.any_ or ()) + ((self.not_,) if self.not_ else ()):
            yield from c.kinds()


def kleene_and(values: Iterable[Tri]) -> Tri:
    values = list(values)
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def kleene_or(values: Iterable[Tri]) -> Tri:
    values = list(values)
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


def kleene_not(value: Tri) -> Tri:
    return None if value is None else not value


def compare(cond: Cond, value: Any) -> bool:
    """Apply the single operator of a fact condition to a known value."""
    if cond.eq is not None:
        return value == cond.eq
    if cond.in_ is not None:
        return value in cond.in_
    if cond.has is not None:
        return cond.has in value if isinstance(value, (list, tuple)) else value == cond.has
    if cond.has_any is not None:
        items = value if isinstance(value, (list, tuple)) else [value]
        return any(x in items for x in cond.has_any)
    if cond.nonempty is not None:
        return bool(value) == cond.nonempty
    for op, fn in (("gt", lambda a, b: a > b), ("gte", lambda a, b: a >= b),
                   ("lt", lambda a, b: a < b), ("lte", lambda a, b: a <= b)):
        bound = getattr(cond, op)
        if bound is not None:
            return fn(value, bound)
    if not isinstance(value, bool):
        raise TypeError(f"fact '{cond.fact}' is not a boolean; give an operator")
    return value
