"""CSV export that spreadsheets cannot execute: text cells starting with = + - @ (or tab/CR) are quoted.

OWASP "CSV injection": a leading apostrophe makes Excel/LibreOffice treat the cell as text.
Numbers are written as numbers (a negative float is not a formula).
"""
from __future__ import annotations

import csv
import numbers
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """Return `value` unchanged unless it is text a spreadsheet would read as a formula."""
    if value is None or isinstance(value, (bool, numbers.Number)):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def write_frame(path: str | Path, frame: pd.DataFrame, columns: Sequence[str]) -> Path:
    """`write_csv` for a DataFrame, a column at a time (the same file for the same cells; missing
    values are empty)."""
    path = Path(path)
    out = frame.reindex(columns=list(columns))
    for c in out.columns:  # numbers and booleans cannot hold a formula; anything else is read as text
        if not (pd.api.types.is_numeric_dtype(out[c]) or pd.api.types.is_bool_dtype(out[c])):
            out[c] = out[c].astype(object).map(neutralise)
    out.columns = [neutralise(c) for c in columns]
    out.to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\r\n")
    return path


def write_csv(path: str | Path, rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None) -> Path:
    """Write dict rows to `path`, header first; header names are neutralised too.  UTF-8 with a
    BOM, without which Excel reads the file in the local code page and garbles Korean text; read
    it back with encoding="utf-8-sig" (pandas strips the BOM by itself)."""
    rows = list(rows)
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8-sig") as f:
        writer = csv.writer(f)
        writer.writerow([neutralise(c) for c in columns])
        for r in rows:
            writer.writerow(["" if r.get(c) is None else neutralise(r.get(c)) for c in columns])
    return path
