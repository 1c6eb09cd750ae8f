"""Do the SAE probe verdicts survive a change of training seed? (issue 17: reproducible LM evidence)

For each of 5 weight-initialisation seeds, trains the CI-sized planted-bias LM (gender 90 %) and its
50 % control with their SAEs, registers them in a throwaway MLflow store and audits both through the
real engine with the shipped specs (examples/lm/audit.yaml, control.yaml). The verdicts the test suite
asserts on seed 0 must hold on every seed: planted gender gap significant with CI low > 0.5, ablation
effect and excess-over-random CI lows > 0, nationality not significant; control: nothing significant.

    python -m benchmarks.bench_sae_seeds [--seeds 0 1 2 3 4] [--out benchmarks/results/sae_seeds.json]

About 4 minutes a seed on 2 cores (training dominates; cached by configuration under --cache).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARGIN = 0.5  # the test suite's bound on the planted gender gap's CI low (nats)


def run_seed(seed: int, cache: Path) -> dict:
    from audit.config import Settings
    from audit.engine import AuditEngine
    from audit.lm_demo import register_demo_lm
    from audit.registry import Registry
    from interpret.lm.bundled import fixture_configs
    configs = tuple(replace(c, seed=seed) for c in fixture_configs())
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"sae-seed-{seed}-") as home:
        os.environ["AIAUDIT_HOME"] = home
        settings = Settings.from_env(home)
        register_demo_lm(Registry(settings), fixture=True, cache_root=cache, configs=configs, progress=lambda m: None)
        engine = AuditEngine(settings)
        planted = engine.run(engine.prepare(ROOT / "examples/lm/audit.yaml")).metrics
        control = engine.run(engine.prepare(ROOT / "examples/lm/control.yaml")).metrics
    row = {
        "seed": seed, "seconds": round(time.perf_counter() - t0, 1),
        "planted_gender_gap": planted["sae.bias.gender.gap"],
        "planted_gender_gap_ci": [planted["sae.bias.gender.gap.ci_low"], planted["sae.bias.gender.gap.ci_high"]],
        "planted_gender_significant": planted["sae.bias.gender.significant"] == 1.0,
        "planted_nationality_significant": planted["sae.bias.nationality.significant"] == 1.0,
        "ablation_effect": planted.get("sae.ablation.gender.effect"),
        "ablation_effect_ci_low": planted.get("sae.ablation.gender.effect.ci_low"),
        "excess_effect_ci_low": planted.get("sae.ablation.gender.excess_effect.ci_low"),
        "control_gender_gap": control["sae.bias.gender.gap"],
        "control_gender_gap_ci": [control["sae.bias.gender.gap.ci_low"], control["sae.bias.gender.gap.ci_high"]],
        "control_significant": any(control[f"sae.bias.{a}.significant"] == 1.0 for a in ("gender", "nationality")),
    }
    row["verdicts_hold"] = bool(
        row["planted_gender_significant"] and row["planted_gender_gap_ci"][0] > MARGIN
        and not row["planted_nationality_significant"]
        and (row["ablation_effect_ci_low"] or 0) > 0 and (row["excess_effect_ci_low"] or 0) > 0
        and not row["control_significant"])
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "aiaudit-sae-seeds-cache")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/sae_seeds.json")
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from audit.cli import _quiet_libraries
    _quiet_libraries()
    rows = []
    for seed in args.seeds:
        rows.append(run_seed(seed, args.cache))
        print(json.dumps(rows[-1]), flush=True)
    out = {"generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "cpu_count": os.cpu_count(),
           "margin_nats": MARGIN, "seeds": rows, "all_hold": all(r["verdicts_hold"] for r in rows)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"verdicts hold on {sum(r['verdicts_hold'] for r in rows)} of {len(rows)} seeds; written: {args.out}")


if __name__ == "__main__":
    main()
