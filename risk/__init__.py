"""EU AI Act risk engine: system card -> tier, citations, obligations, evidence status.

The law lives as data in `policies/eu-ai-act-2024/`; this package evaluates it.  It must not
import `audit` (imports point audit -> risk).
"""
from __future__ import annotations

from .card import LoadedCard, SystemCard, load_card, parse_card
from .classify import classify
from .errors import CardError, RegulationError
from .evidence import EvidenceReport, rate_evidence
from .model import Classification
from .regulation import available_overlays, load_regulation

__all__ = ["CardError", "Classification", "EvidenceReport", "LoadedCard", "RegulationError", "SystemCard",
           "available_overlays", "classify", "load_card", "load_regulation", "parse_card", "rate_evidence"]
