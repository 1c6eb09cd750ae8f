"""Chunked reading of CSV and Parquet with pyarrow: memory bounded by the chunk size."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import AuditInputError
from ..textcheck import COMPRESSION_ERRORS


def iter_chunks(path: str | Path, columns: Sequence[str] | None = None, chunk_rows: int = 500_000) -> Iterator[pd.DataFrame]:
    """Chunks of the file; unreadable bytes or a broken compressed stream become one clear input error."""
    try:
        yield from _chunks(Path(path), columns, chunk_rows)
    except (OSError, UnicodeDecodeError, pa.ArrowInvalid, *COMPRESSION_ERRORS) as e:
        from ..textcheck import corrupt_compression_message, not_utf8_message
        text = str(e).lower()
        if isinstance(e, COMPRESSION_ERRORS) or "compress" in text or "gzip" in text:
            raise AuditInputError(corrupt_compression_message(e if isinstance(e, COMPRESSION_ERRORS) else EOFError()),
                                  source=str(path)) from None
        if isinstance(e, UnicodeDecodeError) or "utf8" in text or "utf-8" in text:
            raise AuditInputError(not_utf8_message(path), source=str(path)) from None
        raise AuditInputError(f"cannot read dataset: {str(e).splitlines()[0][:200]}", source=str(path)) from None


def _chunks(p: Path, columns: Sequence[str] | None, chunk_rows: int) -> Iterator[pd.DataFrame]:
    path = p
    name = p.name.lower()
    if name.endswith(".parquet"):
        pf = pq.ParquetFile(p)
        missing = [c for c in columns or [] if c not in pf.schema_arrow.names]
        if missing:
            raise AuditInputError(f"column(s) {missing[:5]} not in the dataset", source=str(path))
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=list(columns) if columns else None):
            yield batch.to_pandas()
    elif name.endswith((".csv", ".csv.gz")):
        read = pacsv.ReadOptions(block_size=1 << 24)
        convert = pacsv.ConvertOptions(include_columns=list(columns) if columns else None)
        reader = pacsv.open_csv(p, read_options=read, convert_options=convert)
        pending: list[pa.RecordBatch] = []
        size = 0
        for batch in reader:
            pending.append(batch)
            size += batch.num_rows
            if size >= chunk_rows:
                yield pa.Table.from_batches(pending).to_pandas()
                pending, size = [], 0
        if pending:
            yield pa.Table.from_batches(pending).to_pandas()
    else:
        raise AuditInputError("streaming needs .csv, .csv.gz or .parquet", source=str(path))


def count_rows(path: str | Path) -> int | None:
    p = Path(path)
    if p.name.lower().endswith(".parquet"):
        return pq.ParquetFile(p).metadata.num_rows
    return None
