"""What an explainer needs to know about a model, without depending on how it was loaded."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd

Task = Literal["binary", "multiclass", "regression"]
Family = Literal["xgboost", "lightgbm", "sklearn_tree", "linear", "pipeline", "other"]

SKLEARN_TREES = {"RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor",
                 "GradientBoostingClassifier", "GradientBoostingRegressor", "DecisionTreeClassifier",
                 "DecisionTreeRegressor", "ExtraTreeClassifier", "ExtraTreeRegressor",
                 "HistGradientBoostingClassifier", "HistGradientBoostingRegressor"}
# Linear in the inputs on the scale shap's LinearExplainer uses (coef_ @ x + intercept_); GLMs with a
# non-identity link are left to the model-agnostic explainer.
GLM_LINK = {"PoissonRegressor", "GammaRegressor", "TweedieRegressor"}


@dataclass
class ModelAdapter:
    """A fitted model plus the callables that feed it raw rows.

    `prepare` turns raw rows into what the estimator consumes (e.g. pandas categories for
    native tree models); `predict_proba` / `predict` take raw rows.  `class_index` is the
    class whose output is explained (binary: the positive label).
    """

    estimator: Any
    feature_names: list[str]
    task: Task
    class_index: int = 1
    prepare: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    predict_proba: Callable[[pd.DataFrame], np.ndarray] | None = None
    predict: Callable[[pd.DataFrame], np.ndarray] | None = None
    categories: dict[str, list[Any]] = field(default_factory=dict)

    def prepared(self, X: pd.DataFrame) -> pd.DataFrame:
        return self.prepare(X) if self.prepare else X[self.feature_names]

    def raw_output(self, X: pd.DataFrame) -> np.ndarray:
        """Model-agnostic output: probability of the explained class, or the regression prediction."""
        if self.task == "regression":
            fn = self.predict or (lambda d: self.estimator.predict(self.prepared(d)))
            return np.asarray(fn(X), dtype=float).reshape(-1)
        fn = self.predict_proba or (lambda d: self.estimator.predict_proba(self.prepared(d)))
        return np.asarray(fn(X), dtype=float)[:, self.class_index]


def family(est: Any) -> Family:
    mod, name = type(est).__module__, type(est).__name__
    if mod.startswith("xgboost"):
        return "xgboost"
    if mod.startswith("lightgbm"):
        return "lightgbm"
    if mod.startswith("sklearn"):
        if name == "Pipeline":
            return "pipeline"
        if name in SKLEARN_TREES:
            return "sklearn_tree"
        if (mod.startswith("sklearn.linear_model") or name in ("LinearSVC", "LinearSVR")) \
                and hasattr(est, "coef_") and name not in GLM_LINK:
            return "linear"
    return "other"


def _lgb_booster(est: Any) -> Any:
    return getattr(est, "booster_", est)


def xgb_booster(est: Any) -> Any:
    """The Booster of an XGBoost scikit-learn estimator (or the Booster itself)."""
    return est.get_booster() if hasattr(est, "get_booster") else est


def gbdt_booster(est: Any) -> Any:
    """The Booster of an XGBoost or LightGBM model (scikit-learn estimator or Booster)."""
    return xgb_booster(est) if family(est) == "xgboost" else _lgb_booster(est)


def margin_output(est: Any, X: Any, task: Task, class_index: int) -> np.ndarray:
    """Native margin (log-odds for binary) of an XGBoost / LightGBM model for the explained class."""
    fam = family(est)
    if fam == "xgboost":
        booster = xgb_booster(est)
        m = booster.inplace_predict(X, predict_type="margin")
    else:
        m = _lgb_booster(est).predict(X, raw_score=True)
    m = np.asarray(m, dtype=float)
    if m.ndim == 2:
        return m[:, class_index]
    return -m if task == "binary" and class_index == 0 else m


def native_contributions(est: Any, X: Any, task: Task, class_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact path-dependent TreeSHAP from the library itself: (values (n, p), base values (n,))."""
    fam = family(est)
    if fam == "xgboost":
        import xgboost as xgb
        booster = xgb_booster(est)
        c = np.asarray(booster.predict(xgb.DMatrix(X, enable_categorical=True), pred_contribs=True), dtype=float)
        if c.ndim == 3:  # (n, classes, p + 1)
            c = c[:, class_index, :]
    else:
        c = np.asarray(_lgb_booster(est).predict(X, pred_contrib=True), dtype=float)
        p1 = X.shape[1] + 1
        if c.shape[1] != p1:  # multiclass: classes concatenated
            c = c[:, class_index * p1:(class_index + 1) * p1]
    if task == "binary" and class_index == 0:
        c = -c
    return c[:, :-1], c[:, -1]


def estimator_output(est: Any, X: Any, task: Task, class_index: int) -> tuple[np.ndarray, str]:
    """The output shap's model-specific explainers decompose for `est`, and its scale."""
    fam = family(est)
    if fam in ("xgboost", "lightgbm"):
        return margin_output(est, X, task, class_index), ("log_odds" if task == "binary" else "margin")
    if task == "regression":
        return np.asarray(est.predict(X), dtype=float).reshape(-1), "raw"
    if hasattr(est, "decision_function") and fam in ("linear", "sklearn_tree"):
        d = np.asarray(est.decision_function(X), dtype=float)
        if d.ndim == 2:
            return d[:, class_index], "margin"
        scale = "log_odds" if hasattr(est, "predict_proba") else "margin"
        return (-d if class_index == 0 else d), scale
    return np.asarray(est.predict_proba(X), dtype=float)[:, class_index], "probability"
