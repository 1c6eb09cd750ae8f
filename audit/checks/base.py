"""What a check is, what it receives and what it returns."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from .. import figures
from ..errors import AuditInputError
from ..findings import Finding
from ..model_io import LoadedModel
from ..policy import Policy
from ..spec import LoadedSpec
from ..yamlio import describe_validation_error
from risk.catalogue import check_catalogue


class CheckResult(BaseModel):
    findings: list[Finding] = Field(default_factory=list)
    metrics: dict[str, float | None] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict, description="JSON tables for the app and documents.")


class CheckConfig(BaseModel):
    """Base for check settings read from the policy pack (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Check:
    """A check: its display names and order come from the catalogue (policies/checks.yaml)."""
    name: str
    run: Callable[["AuditContext", Any], CheckResult]
    config: type[CheckConfig] = CheckConfig
    references: tuple[str, ...] = ()
    requires: frozenset[str] = frozenset({"tabular"})  # tabular | labels | protected | train | lm | baseline

    @property
    def title(self) -> str:
        return check_catalogue().title(self.name)


@dataclass
class Predictions:
    """Model outputs on the audited rows, computed once per audit."""

    y_pred: np.ndarray
    proba: np.ndarray | None
    classes: list[Any]
    positive_label: Any | None

    @property
    def score(self) -> np.ndarray | None:
        """Probability of the positive class (binary models)."""
        if self.proba is None or self.positive_label is None:
            return None
        return self.proba[:, self.classes.index(self.positive_label)]

    @property
    def y_pred_bin(self) -> np.ndarray | None:
        if self.positive_label is None:
            return None
        return (pd.Series(self.y_pred).astype(str) == str(self.positive_label)).to_numpy().astype(int)


@dataclass
class AuditData:
    frame: pd.DataFrame
    label: str | None
    protected: list[str]
    train: pd.DataFrame | None = None

    @property
    def y(self) -> pd.Series | None:
        return self.frame[self.label] if self.label else None


@dataclass
class AuditContext:
    spec: LoadedSpec
    policy: Policy
    model: LoadedModel | None
    data: AuditData | None
    evidence_dir: Path
    seed: int = 0
    domain: str | None = None
    card: Any | None = None
    classification: Any | None = None
    population: Any | None = None  # audit.scale.population.Population when the data were streamed
    baseline: Any | None = None  # audit.monitoring.Baseline when a monitoring window is compared with an audit
    shared: dict[str, Any] = field(default_factory=dict)
    progress: Callable[[str], None] = lambda msg: None

    def settings(self, check: Check) -> Any:
        raw = self.policy.check_settings(check.name, self.domain)
        try:
            return check.config.model_validate(raw)
        except Exception as e:  # pydantic.ValidationError
            msg = describe_validation_error(e) if hasattr(e, "errors") else str(e)
            raise AuditInputError(f"checks.{check.name}: {msg}", source=self.policy.path) from None

    def rng(self, purpose: str) -> np.random.Generator:
        """A generator seeded from the audit seed and a purpose, so checks do not share streams."""
        digest = hashlib.sha256(f"{self.seed}:{purpose}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    def evidence_path(self, check: str, filename: str) -> tuple[Path, str]:
        """Absolute path to write and the audit-relative path to cite in findings."""
        rel = Path("evidence") / check / filename
        path = self.evidence_dir.parent / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path, rel.as_posix()

    def figure(self, check: str, name: str, kind: str, /, **data: Any) -> str:
        """Save an evidence figure as data (`audit.figures`); returns the path to cite."""
        path, rel = self.evidence_path(check, name + figures.SUFFIX)
        figures.save(path, kind, **data)
        return rel

    @cached_property
    def predictions(self) -> Predictions:
        assert self.model is not None and self.data is not None
        X = self.data.frame
        if self.model.task == "regression":
            return Predictions(self.model.predict(X), None, [], None)
        proba = self.model.predict_proba(X)
        classes = list(self.model.classes)
        y_pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
        return Predictions(y_pred, proba, classes, self.positive_label)

    @cached_property
    def positive_label(self) -> Any | None:
        if self.model is None or self.model.task != "binary":
            return None
        wanted = self.spec.spec.dataset.positive_label
        classes = list(self.model.classes)
        if wanted is None:
            return classes[-1]
        for c in classes:
            if str(c) == str(wanted):
                return c
        raise AuditInputError(f"positive_label {wanted!r} is not a model class {classes}", source="dataset.positive_label")

    def y_true_bin(self) -> np.ndarray | None:
        y = self.data.y if self.data else None
        if y is None or self.positive_label is None:
            return None
        return (y.astype(str) == str(self.positive_label)).to_numpy().astype(int)
