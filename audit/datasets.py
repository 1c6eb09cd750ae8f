"""Reading audit datasets (CSV, gzip CSV, Parquet) with clear errors, and their fingerprints."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import AuditInputError
from .model_io import sha256_file
from .textcheck import COMPRESSION_ERRORS, corrupt_compression_message, not_utf8_message

MAX_COLUMNS = 10_000
BUNDLED_DATA = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class DatasetInfo:
    path: str
    sha256: str
    rows: int
    columns: list[str]


def read_table(path: str | Path, max_rows: int | None = None) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise AuditInputError("dataset file not found", source=str(path))
    name = p.name.lower()
    try:
        if name.endswith(".parquet"):
            df = pd.read_parquet(p)
            if max_rows is not None and len(df) > max_rows:
                raise AuditInputError(f"dataset has {len(df)} rows, above the limit of {max_rows}", source=str(path))
        elif name.endswith((".csv", ".csv.gz", ".tsv")):
            df = pd.read_csv(p, sep="\t" if name.endswith(".tsv") else ",", low_memory=False,
                             nrows=None if max_rows is None else max_rows + 1, encoding="utf-8")
            if max_rows is not None and len(df) > max_rows:
                raise AuditInputError(f"dataset has more than {max_rows} rows (limit)", source=str(path))
        else:
            raise AuditInputError("unsupported dataset format (use .csv, .csv.gz, .tsv or .parquet)", source=str(path))
    except AuditInputError:
        raise
    except UnicodeDecodeError:
        raise AuditInputError(not_utf8_message(p), source=str(path)) from None
    except COMPRESSION_ERRORS as e:
        raise AuditInputError(corrupt_compression_message(e), source=str(path)) from None
    except pd.errors.EmptyDataError:
        raise AuditInputError("dataset is empty", source=str(path)) from None
    except Exception as e:
        raise AuditInputError(f"cannot read dataset: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}",
                              source=str(path)) from None
    if df.empty:
        raise AuditInputError("dataset has no rows", source=str(path))
    if df.shape[1] > MAX_COLUMNS:
        raise AuditInputError(f"dataset has {df.shape[1]} columns, above the limit of {MAX_COLUMNS}", source=str(path))
    if df.columns.duplicated().any():
        raise AuditInputError(f"duplicate column names {df.columns[df.columns.duplicated()].tolist()[:3]}", source=str(path))
    df.columns = [str(c) for c in df.columns]
    return df


def describe(path: str | Path, df: pd.DataFrame) -> DatasetInfo:
    return DatasetInfo(path=str(path), sha256=sha256_file(path), rows=len(df), columns=list(df.columns))


BUILTIN = {
    "adult": ("adult.csv.gz", "income"),
    "german_credit": ("german_credit.csv.gz", "good_credit"),
    "compas": ("compas.csv.gz", "two_year_recid"),
}


def builtin_path(name: str) -> Path:
    return BUNDLED_DATA / BUILTIN[name][0]
