"""Monitoring windows with a known truth: a synthetic credit-like population, a calibrated model, and shifts.

Baseline and window are independent draws (not resamples of one sample), so a window "from the baseline
distribution" is exactly the null hypothesis the monitoring family is tested under. Used by
`benchmarks/bench_monitoring.py` (the calibration study) and, with fewer windows, by tests/test_monitoring.py.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = ["income", "debt", "tenure", "utilisation", "region"]
REGIONS = ["north", "south", "east", "west"]


@dataclass(frozen=True)
class Shift:
    covariate: float = 0.0      # shift of `debt`, in standard deviations
    concept: float = 0.0        # change of the log-odds slope on `income` (labels follow the inputs differently)
    group_b_share: float = 0.3  # share of group B
    group_b_income: float = 0.0  # shift of group B's income, in sd: its selection rate decays, not A's
    positive_share: float | None = None  # label (prior) shift: P(y) set to this, P(x | y) kept


def draw(n: int, rng: np.random.Generator, shift: Shift = Shift()) -> pd.DataFrame:
    if shift.positive_share is not None:
        pool = draw(4 * n, rng, replace(shift, positive_share=None))
        pos = int(rng.binomial(n, shift.positive_share))
        take = np.concatenate([rng.choice(np.flatnonzero(pool.y == 1), pos, replace=False),
                               rng.choice(np.flatnonzero(pool.y == 0), n - pos, replace=False)])
        return pool.iloc[rng.permutation(take)].reset_index(drop=True)
    group = np.where(rng.random(n) < shift.group_b_share, "B", "A")
    income = rng.normal(0, 1, n) - (0.3 - shift.group_b_income) * (group == "B")
    debt = rng.normal(shift.covariate, 1, n)
    tenure = rng.gamma(2.0, 2.0, n).round()
    utilisation = rng.beta(2, 5, n)
    region = rng.choice(REGIONS, n, p=[0.4, 0.3, 0.2, 0.1])
    logit = 0.3 + (1.2 + shift.concept) * income - 0.8 * debt + 0.1 * tenure - 1.5 * utilisation \
        + 0.3 * (region == "north")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"income": income, "debt": debt, "tenure": tenure, "utilisation": utilisation,
                         "region": region, "group": group, "y": y})


def fit_model(seed: int = 0):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    train = draw(20_000, np.random.default_rng(seed))
    pre = ColumnTransformer([("num", StandardScaler(), FEATURES[:4]),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"])])
    return make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(train[FEATURES], train["y"])


class Simulation:
    """Runs the `monitoring` check on (baseline, window) pairs, in memory, with a real policy and model."""

    def __init__(self, estimator, policy_overrides: dict | None = None):
        from audit.model_io import FeatureSpec, LoadedModel, ModelMeta
        from audit.policy import load_policy
        from audit.spec import AuditSpec, DatasetSpec, LoadedSpec
        self.estimator = estimator
        meta = ModelMeta(format="skops", file="simulated", sha256="0" * 64, task="binary", classes=[0, 1],
                         features=[FeatureSpec(name=f, kind="categorical" if f == "region" else "numeric")
                                   for f in FEATURES])
        self.model = LoadedModel(estimator, meta)
        spec = AuditSpec(name="simulation", model="models:/simulation/1",
                         dataset=DatasetSpec(path="window.csv", label="y", positive_label=1, protected=["group"]))
        self.spec = LoadedSpec(spec=spec, path="simulation.yaml", base_dir=".", digest="0")
        self.policy = load_policy("eu-ai-act-default", Path("."))
        self.overrides = policy_overrides or {}

    def run(self, baseline: pd.DataFrame, window: pd.DataFrame, seed: int, labels: bool = True):
        from audit.checks import available_checks
        from audit.checks.base import AuditContext, AuditData
        from audit.checks.monitoring import run as monitoring_run
        from audit.monitoring import Baseline
        check = available_checks()["monitoring"]
        data = AuditData(window if labels else window.drop(columns=["y"]), "y" if labels else None, ["group"])
        ctx = AuditContext(spec=self.spec, policy=self.policy, model=self.model, data=data, evidence_dir=Path("."),
                           seed=seed, baseline=Baseline("baseline", True, None, AuditData(baseline, "y", ["group"])))
        cfg = ctx.settings(check).model_copy(update=self.overrides)
        return monitoring_run(ctx, cfg)
