"""The tables of a document as CSV files, with spreadsheet formulas neutralised."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..csvsafe import write_csv
from .sources import gather


def write_tables(engine: Any, audit_id: str, doc: str, lang: str, out_dir: Path) -> list[Path]:
    from . import build_document
    src = gather(engine, audit_id)
    document = build_document(src, doc, "html", lang)
    target = Path(out_dir) / f"{audit_id}_{doc}_{lang}_tables"
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (section, table) in enumerate(document.tables(), start=1):
        slug = re.sub(r"[^a-z0-9]+", "-", section.id.lower()).strip("-")[:40] or "table"
        rows = [dict(zip(table.columns, r)) for r in table.rows]
        columns = list(dict.fromkeys(table.columns))
        paths.append(write_csv(target / f"{i:02d}_{slug}.csv", rows, columns))
    engine.records.log("document.tables_exported", audit_id, {"doc": doc, "lang": lang, "files": len(paths),
                                                              "dir": target.name})
    return paths
