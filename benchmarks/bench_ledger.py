"""Ledger append and verify throughput, against a plain SQLite insert of the same rows in the same run.

    python -m benchmarks.bench_ledger [--appends 20000] [--verify-entries 1000000]

- append: `Records.append` (previous hash read, canonical JSON, two SHA-256, insert) for --appends entries in
  transactions of 100, against `INSERT` of the same payloads into a plain table in transactions of 100 (as one
  `executemany`, and one statement per row as the ledger does). Target: overhead at most 2x.
- verify: `Records.verify` (every link and hash recomputed) on a ledger of --verify-entries entries, built
  directly with the real hash functions. Target: 1M entries in at most 10 s.
Results: benchmarks/results/ledger.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "ledger.json"
BATCH = 100


def payload(i: int) -> dict:
    return {"finding": f"fairness:selection_rate_ratio:group={i % 7}", "status": "warn", "value": i / 3, "n": i}


def appends(n: int, tmp: Path) -> dict:
    from audit.records import Records
    records = Records(tmp / "records.db")
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        with records.transaction() as con:
            for i in range(start, min(n, start + BATCH)):
                records.append(con, "finding.recorded", f"audit-{i // 50}", payload(i), actor="bench")
    ledger_s = time.perf_counter() - t0
    con = sqlite3.connect(tmp / "plain.db", isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE plain (seq INTEGER PRIMARY KEY, ts TEXT, actor TEXT, event TEXT, subject TEXT, payload TEXT)")
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        con.execute("BEGIN IMMEDIATE")
        con.executemany("INSERT INTO plain (ts, actor, event, subject, payload) VALUES (?,?,?,?,?)",
                        [("2026-12-08T00:00:00.000Z", "bench", "finding.recorded", f"audit-{i // 50}",
                          json.dumps(payload(i), sort_keys=True)) for i in range(start, min(n, start + BATCH))])
        con.execute("COMMIT")
    plain_s = time.perf_counter() - t0
    con.execute("DELETE FROM plain")
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):  # one statement per row, as the ledger appends
        con.execute("BEGIN IMMEDIATE")
        for i in range(start, min(n, start + BATCH)):
            con.execute("INSERT INTO plain (ts, actor, event, subject, payload) VALUES (?,?,?,?,?)",
                        ("2026-12-08T00:00:00.000Z", "bench", "finding.recorded", f"audit-{i // 50}",
                         json.dumps(payload(i), sort_keys=True)))
        con.execute("COMMIT")
    per_row_s = time.perf_counter() - t0
    con.close()
    return {"entries": n, "ledger_seconds": round(ledger_s, 3), "plain_sqlite_seconds": round(plain_s, 3),
            "plain_sqlite_per_row_seconds": round(per_row_s, 3), "overhead": round(ledger_s / plain_s, 2),
            "overhead_vs_per_row": round(ledger_s / per_row_s, 2), "ledger_per_second": round(n / ledger_s)}


def verify(n: int, tmp: Path) -> dict:
    from audit.records import GENESIS, Records, _canonical, entry_hash
    records = Records(tmp / "big.db")
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        body = _canonical(payload(seq))
        content = hashlib.sha256(body.encode()).hexdigest()
        h = entry_hash(seq, "2026-12-08T00:00:00.000Z", "bench", "finding.recorded", "audit", content, prev)
        rows.append((seq, "2026-12-08T00:00:00.000Z", "bench", "finding.recorded", "audit", body, content, prev, h))
        prev = h
    with records.transaction() as con:
        con.executemany("INSERT INTO ledger VALUES (?,?,?,?,?,?,?,?,?)", rows)
    del rows
    t0 = time.perf_counter()
    result = records.verify()
    seconds = time.perf_counter() - t0
    return {"entries": n, "ok": result.ok, "seconds": round(seconds, 2), "per_second": round(n / seconds)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--appends", type=int, default=20_000)
    ap.add_argument("--verify-entries", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        res = {"append": appends(args.appends, Path(tmp)), "verify": verify(args.verify_entries, Path(tmp))}
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
