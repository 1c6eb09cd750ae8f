"""The format-neutral document: sections of blocks that every renderer walks the same way.

Builders fill it from the evidence; the HTML/PDF, Markdown and DOCX renderers only lay it
out, so the four formats carry the same content by construction.  All text here is plain
text (never markup): renderers escape it for their format.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union


@dataclass
class Paragraph:
    text: str
    style: str = "body"  # body | lead | small


@dataclass
class Bullets:
    items: list[str]


@dataclass
class KeyValues:
    rows: list[tuple[str, str]]


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    caption: str | None = None
    numeric: list[bool] = field(default_factory=list)  # right-align these columns
    kind: str = "data"  # data | groups | findings | open-items | manifest (renderers may style by kind)

    def __post_init__(self) -> None:
        if not self.numeric:
            self.numeric = [False] * len(self.columns)


@dataclass
class Figure:
    png: bytes
    caption: str
    source: str | None = None  # evidence path, when the figure is an audit artifact


@dataclass
class Note:
    """A call-out: `open` marks content the owner must supply; `info` and `warning` are notices."""

    text: str
    kind: str = "info"  # info | open | warning


Block = Union[Paragraph, Bullets, KeyValues, Table, Figure, Note]


@dataclass
class Section:
    """A numbered part of a document; a level-2 section may appear among a section's blocks."""

    id: str
    title: str
    blocks: list["Block | Section"] = field(default_factory=list)
    level: int = 1
    status: str | None = None  # filled | partial | open | not_assessed (shown as a badge)

    def add(self, *blocks: "Block | None") -> "Section":
        self.blocks.extend(b for b in blocks if b is not None)
        return self


@dataclass
class Document:
    kind: str
    lang: str
    title: str
    subtitle: str
    cover: list[tuple[str, str]]
    sections: list[Section]
    manifest: dict[str, Any]
    labels: dict[str, str]  # renderer chrome: "contents", "page", "manifest" ...

    @property
    def subject_id(self) -> str:
        """The audit (or incident) the document is about."""
        return (self.manifest.get("audit") or self.manifest["incident"])["id"]

    @property
    def digest(self) -> tuple[str, str]:
        """What pins the document's source: audit.json's SHA-256, or the incident's newest ledger entry."""
        if "audit" in self.manifest:
            return "audit.json SHA-256", self.manifest["audit"]["audit_json_sha256"]
        head = self.manifest["incident"]["events"][-1]
        return f"ledger #{head['seq']}", head["entry_hash"]

    def tables(self) -> list[tuple[Section, Table]]:
        """Every table with the (sub)section it sits in, in reading order."""
        out: list[tuple[Section, Table]] = []

        def walk(section: Section) -> None:
            for b in section.blocks:
                if isinstance(b, Table):
                    out.append((section, b))
                elif isinstance(b, Section):
                    walk(b)
        for s in self.sections:
            walk(s)
        return out
