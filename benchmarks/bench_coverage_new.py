"""Coverage of the intervals the data-governance and privacy checks file, by simulation with known truth.

    python -m benchmarks.bench_coverage_new   # about 1 minute; writes benchmarks/results/coverage_new.json

- privacy: attack AUC, stratified percentile bootstrap (members N(d, 1), non-members N(0, 1): truth
  Phi(d / sqrt 2)), at d = 0 (no leakage) and d = 0.5, for 500 + 500 and 100 + 100 rows;
- data governance: a missing share (Wilson) at truths 0.01 and 0.05 on 300 rows, and a group's share under
  the simultaneous (Bonferroni over 3 groups) Wilson interval at truth 0.1 on 300 rows.
"""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from scipy.stats import norm

from audit.metrics.data_quality import share
from audit.metrics.intervals import bootstrap_interval
from audit.metrics.membership import attack_auc, bootstrap_auc

REDRAWS = 400
OUT = Path(__file__).resolve().parent / "results" / "coverage_new.json"


def _wilson_ci(p: float, n: float) -> list[float]:
    z = 1.96
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(centre - half, 4), round(centre + half, 4)]


def auc_coverage(d: float, m: int, n: int, rng: np.random.Generator) -> dict:
    truth = float(norm.cdf(d / math.sqrt(2)))
    hits = 0
    for _ in range(REDRAWS):
        member, non_member = rng.normal(d, 1, m), rng.normal(0, 1, n)
        auc = attack_auc(member, non_member)
        lo, hi = bootstrap_interval(auc, bootstrap_auc(member, non_member, rng, 300), 0.95)
        hits += lo <= truth <= hi
    return {"d": d, "members": m, "non_members": n, "truth": truth, "coverage": hits / REDRAWS,
            "coverage_ci": _wilson_ci(hits / REDRAWS, REDRAWS)}


def share_coverage(p: float, n: int, comparisons: int, rng: np.random.Generator) -> dict:
    hits = 0
    for _ in range(REDRAWS):
        s = share(int(rng.binomial(n, p)), n, 0.95, comparisons)
        hits += s.ci[0] <= p <= s.ci[1]
    nominal = 1 - 0.05 / comparisons
    return {"truth": p, "rows": n, "comparisons": comparisons, "nominal": nominal, "coverage": hits / REDRAWS,
            "coverage_ci": _wilson_ci(hits / REDRAWS, REDRAWS)}


def main() -> None:
    rng = np.random.default_rng(0)
    out = {"generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "redraws": REDRAWS,
           "attack_auc": [auc_coverage(d, m, m, rng) for d in (0.0, 0.5) for m in (500, 100)],
           "shares": [share_coverage(0.01, 300, 1, rng), share_coverage(0.05, 300, 1, rng),
                      share_coverage(0.1, 300, 3, rng)]}
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
