"""Build the demo monitoring windows from the German credit test split (seeded, reproducible).

    python data/make_monitoring_windows.py

- `credit-window-stable.csv.gz`: 600 applications drawn with replacement from the held-out rows, time-stamped
  over January 2027, without labels (they arrive months later): nothing has changed.
- `credit-window-shifted.csv.gz`: 600 applications from March 2027, drawn with weights that favour long loans
  and women (three times as likely), with credit amounts inflated by 30%, and with their labels: covariate shift,
  population shift and what they do to realised performance.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROWS = 600


def _stamped(rows: pd.DataFrame, start: str, rng: np.random.Generator) -> pd.DataFrame:
    seconds = np.sort(rng.integers(0, 31 * 24 * 3600, len(rows)))
    rows = rows.drop(columns=["split"]).reset_index(drop=True)
    rows.insert(0, "timestamp", (pd.Timestamp(start, tz="UTC") + pd.to_timedelta(seconds, unit="s"))
                .strftime("%Y-%m-%dT%H:%M:%SZ"))
    return rows


def main() -> None:
    test = pd.read_csv(HERE / "german_credit.csv.gz").query("split == 'test'").reset_index(drop=True)
    rng = np.random.default_rng(2027)
    stable = _stamped(test.iloc[rng.integers(0, len(test), ROWS)], "2027-01-01", rng).drop(columns=["good_credit"])
    weights = np.exp(0.06 * (test["duration"] - test["duration"].mean())) * np.where(test["sex"] == "female", 3.0, 1.0)
    shifted = test.iloc[rng.choice(len(test), ROWS, replace=True, p=weights / weights.sum())].copy()
    shifted["credit_amount"] = (shifted["credit_amount"] * 1.3).round().astype(int)
    shifted = _stamped(shifted, "2027-03-01", rng)
    (HERE / "monitoring").mkdir(exist_ok=True)
    for name, frame in [("stable", stable), ("shifted", shifted)]:
        frame.to_csv(HERE / "monitoring" / f"credit-window-{name}.csv.gz", index=False,
                     compression={"method": "gzip", "mtime": 0})


if __name__ == "__main__":
    main()
