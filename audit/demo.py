"""The demo: train real models on the bundled data sets, register them, audit them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from .datasets import BUILTIN, builtin_path, describe, read_table
from .model_io import Lineage
from .registry import Registry

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@dataclass(frozen=True)
class DemoModel:
    name: str
    dataset: str
    exclude: tuple[str, ...]
    build: Callable[[pd.DataFrame], Any]
    example: str


def _categoricals(X: pd.DataFrame) -> list[str]:
    return [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]


def build_scorecard(X: pd.DataFrame):
    """scikit-learn Pipeline: one-hot + scaling + logistic regression (a credit scorecard)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    cats = _categoricals(X)
    nums = [c for c in X.columns if c not in cats]
    pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), cats), ("num", StandardScaler(), nums)])
    return Pipeline([("preprocess", pre), ("model", LogisticRegression(max_iter=2000, C=0.5))])


def build_xgboost(X: pd.DataFrame):
    import xgboost as xgb
    return xgb.XGBClassifier(n_estimators=200, max_depth=6, learning_rate=0.1, tree_method="hist",
                             enable_categorical=True, n_jobs=2, random_state=0)


def build_lightgbm(X: pd.DataFrame):
    import lightgbm as lgb
    return lgb.LGBMClassifier(n_estimators=150, num_leaves=15, learning_rate=0.05, random_state=0, n_jobs=2, verbose=-1)


DEMO_MODELS = [
    DemoModel("german-credit-scorecard", "german_credit", ("sex", "age_group"), build_scorecard, "credit"),
    DemoModel("adult-income-xgb", "adult", ("sex", "race"), build_xgboost, "adult"),
    DemoModel("compas-recidivism-lgbm", "compas", ("sex", "race", "decile_score", "score_text"), build_lightgbm, "compas"),
]


def model_inputs(df: pd.DataFrame, label: str, exclude: tuple[str, ...]) -> pd.DataFrame:
    return df.drop(columns=[label, "split", *exclude])


def train(demo: DemoModel) -> tuple[Any, pd.DataFrame, Lineage]:
    path = builtin_path(demo.dataset)
    df = read_table(path)
    label = BUILTIN[demo.dataset][1]
    train_rows = df[df["split"] == "train"]
    X = model_inputs(train_rows, label, demo.exclude)
    y = train_rows[label]
    est = demo.build(X)
    if type(est).__module__.startswith(("xgboost", "lightgbm")):
        Xf = X.copy()
        for c in _categoricals(X):
            Xf[c] = X[c].astype("category")
        est.fit(Xf, y)
    else:
        est.fit(X, y)
    info = describe(path, df)
    lineage = Lineage(name=demo.dataset, path=path.name, sha256=info.sha256, rows=len(train_rows),
                      columns=list(X.columns), label=label)
    return est, X, lineage


def register_demo_model(registry: Registry, demo: DemoModel, alias: str = "candidate") -> str:
    est, X, lineage = train(demo)
    ref = registry.register(est, X, demo.name, lineage, description=f"aiaudit demo model trained on {demo.dataset}")
    registry.set_alias(ref.name, ref.version, alias)
    return ref.uri


def register_demo_models(registry: Registry, alias: str = "candidate", progress=print) -> list[str]:
    uris = []
    for demo in DEMO_MODELS:
        progress(f"training {demo.name} on {demo.dataset}")
        uris.append(register_demo_model(registry, demo, alias))
    return uris
