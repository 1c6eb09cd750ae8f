"""Shapley-table TreeSHAP equals XGBoost's pred_contribs, LightGBM's pred_contrib and shap's TreeExplainer."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import lightgbm as lgb
import shap
import xgboost as xgb

from conftest import ROOT
from interpret import path_tables
from interpret.models import ModelAdapter
from interpret.path_tables import PathTables
from interpret.shap_explain import ShapExplainer


def _contribs(booster: xgb.Booster, X: pd.DataFrame) -> np.ndarray:
    return booster.predict(xgb.DMatrix(X, enable_categorical=True), pred_contribs=True)


@pytest.fixture(scope="module")
def adult_frame() -> pd.DataFrame:
    df = pd.read_csv(ROOT / "data" / "adult.csv.gz")
    X = df.drop(columns=["income", "split", "sex", "race"]).head(4000).copy()
    for c in X.columns:
        if not pd.api.types.is_numeric_dtype(X[c]):
            X[c] = X[c].astype("category")
    rng = np.random.default_rng(0)   # missing values in both kinds of column, routed by default directions
    X.loc[rng.random(len(X)) < 0.05, "age"] = np.nan
    X.loc[rng.random(len(X)) < 0.05, "occupation"] = np.nan
    return X.assign(income=df["income"].head(4000).to_numpy())


def test_tables_equal_pred_contribs_with_categorical_splits_and_missing_values(adult_frame):
    X, y = adult_frame.drop(columns="income"), adult_frame["income"]
    est = xgb.XGBClassifier(n_estimators=60, max_depth=6, tree_method="hist", enable_categorical=True, n_jobs=1,
                            random_state=0).fit(X.iloc[:3000], y.iloc[:3000])
    booster = est.get_booster()
    tables = PathTables(booster)
    assert tables.usable and tables.max_path_features <= 6 and tables.trees == 60
    assert (tables.cat_row >= 0).any(), "the model must exercise categorical splits"
    rows = X.iloc[3000:]
    ref = _contribs(booster, rows)
    mine = tables.contributions(rows)
    assert np.abs(mine - ref[:, :-1]).max() < 1e-4
    # additivity: contributions + XGBoost's bias reproduce the margin
    margin = est.predict(rows, output_margin=True)
    assert np.allclose(mine.sum(1) + ref[:, -1], margin, atol=1e-4)


def test_tables_recode_categories_like_xgboost(adult_frame):
    """XGBoost re-codes categories against the training ones; the tables must read them the same way."""
    X, y = adult_frame.drop(columns="income"), adult_frame["income"]
    est = xgb.XGBClassifier(n_estimators=20, max_depth=4, tree_method="hist", enable_categorical=True, n_jobs=1
                            ).fit(X.iloc[:3000], y.iloc[:3000])
    rows = X.iloc[3000:3300].copy()
    rows["occupation"] = rows["occupation"].cat.reorder_categories(rows["occupation"].cat.categories[::-1])
    assert not (rows["occupation"].cat.codes.to_numpy() == X.iloc[3000:3300]["occupation"].cat.codes.to_numpy()).all()
    ref = _contribs(est.get_booster(), rows)
    assert np.abs(PathTables(est.get_booster()).contributions(rows) - ref[:, :-1]).max() < 1e-4


def test_tables_cover_multiclass_and_regression_and_match_shap():
    from sklearn.datasets import load_diabetes, load_iris
    Xi, yi = load_iris(return_X_y=True)
    clf = xgb.XGBClassifier(n_estimators=30, max_depth=3, n_jobs=1).fit(Xi, yi)
    ref = _contribs(clf.get_booster(), pd.DataFrame(Xi))
    for k in range(3):
        assert np.abs(PathTables(clf.get_booster(), k).contributions(Xi) - ref[:, k, :-1]).max() < 1e-4
    Xd, yd = load_diabetes(return_X_y=True)
    reg = xgb.XGBRegressor(n_estimators=40, max_depth=5, n_jobs=1).fit(Xd, yd)
    mine = PathTables(reg.get_booster()).contributions(Xd)
    via_shap = shap.TreeExplainer(reg, feature_perturbation="tree_path_dependent")(Xd).values
    assert np.abs(mine - via_shap).max() < 1e-3 * np.abs(via_shap).max()


def test_explainer_uses_tables_and_falls_back_to_pred_contribs(adult_frame, monkeypatch):
    X, y = adult_frame.drop(columns="income"), adult_frame["income"]
    est = xgb.XGBClassifier(n_estimators=20, max_depth=4, tree_method="hist", enable_categorical=True, n_jobs=1
                            ).fit(X.iloc[:3000], y.iloc[:3000])
    features = list(X.columns)
    ad = ModelAdapter(est, features, "binary", 0, prepare=lambda d: d[features])  # class 0: signs flip
    ex = ShapExplainer(ad, X.iloc[:200])
    assert ex.route.kind == "path_table"
    res = ex.explain(X.iloc[3000:3400])
    ref = -_contribs(est.get_booster(), X.iloc[3000:3400])
    assert np.abs(res.values - ref[:, :-1]).max() < 1e-4 and np.allclose(res.base_values, ref[:, -1], atol=1e-5)
    assert res.additivity_error.max() < 1e-4

    monkeypatch.setattr(path_tables, "MAX_TABLE_ENTRIES", 10)
    small = ShapExplainer(ad, X.iloc[:200])
    assert small.route.kind == "native"
    assert any("table entries" in n for n in small.provenance()["notes"])
    assert np.abs(small.explain(X.iloc[3000:3400]).values - res.values).max() < 1e-4


def test_non_tree_boosters_are_left_to_xgboost():
    from sklearn.datasets import load_iris
    Xi, yi = load_iris(return_X_y=True)
    dart = xgb.XGBClassifier(booster="dart", n_estimators=5, n_jobs=1).fit(Xi, yi == 1)
    assert "dart" in PathTables.supports(dart.get_booster())
    assert PathTables.supports(xgb.XGBClassifier(n_estimators=5, n_jobs=1).fit(Xi, yi == 1).get_booster()) is None


@pytest.mark.parametrize("missing", [{}, {"use_missing": False}, {"zero_as_missing": True}],
                         ids=["nan-missing", "nan-as-zero", "zero-missing"])
def test_tables_equal_lightgbm_pred_contrib(adult_frame, missing):
    """Every LightGBM missing-value rule, categorical splits with missing categories, and each class."""
    X, y = adult_frame.drop(columns="income"), adult_frame["income"]
    X = X.assign(capital_gain=X["capital_gain"].where(X.index % 7 != 0))   # zeros and missing values
    est = lgb.LGBMClassifier(n_estimators=40, num_leaves=31, verbose=-1, n_jobs=1, **missing).fit(X.iloc[:3000],
                                                                                                  y.iloc[:3000])
    rows = X.iloc[3000:]
    tables = PathTables(est.booster_)
    assert tables.usable and tables.trees == 40
    assert np.abs(tables.contributions(rows) - est.booster_.predict(rows, pred_contrib=True)[:, :-1]).max() < 1e-9

    three = (X["education_num"] > 9).astype(int) + (X["hours_per_week"] > 40).astype(int)
    multi = lgb.LGBMClassifier(n_estimators=15, num_leaves=15, verbose=-1, n_jobs=1, **missing).fit(
        X.iloc[:3000], three.iloc[:3000])
    ref = multi.booster_.predict(rows, pred_contrib=True).reshape(len(rows), 3, -1)
    for k in range(3):
        assert np.abs(PathTables(multi.booster_, k).contributions(rows) - ref[:, k, :-1]).max() < 1e-9


def test_lightgbm_explainer_uses_tables_and_leaves_averaged_or_linear_trees_to_lightgbm(adult_frame):
    X, y = adult_frame.drop(columns="income"), adult_frame["income"]
    features = list(X.columns)
    est = lgb.LGBMClassifier(n_estimators=30, verbose=-1, n_jobs=1).fit(X.iloc[:3000], y.iloc[:3000])
    ad = ModelAdapter(est, features, "binary", 1, prepare=lambda d: d[features])
    ex = ShapExplainer(ad, X.iloc[:200])
    assert ex.route.kind == "path_table" and "lightgbm pred_contrib" in ex.route.explainer_name
    res = ex.explain(X.iloc[3000:3300])
    ref = est.booster_.predict(X.iloc[3000:3300], pred_contrib=True)
    assert np.abs(res.values - ref[:, :-1]).max() < 1e-9 and np.allclose(res.base_values, ref[:, -1])

    numeric = X.select_dtypes("number").iloc[:3000]
    forest = lgb.LGBMClassifier(boosting_type="rf", bagging_freq=1, bagging_fraction=0.7, n_estimators=5,
                                verbose=-1, n_jobs=1).fit(numeric, y.iloc[:3000])
    assert "averages its trees" in PathTables(forest.booster_).unusable
    linear = lgb.LGBMClassifier(linear_tree=True, n_estimators=5, verbose=-1, n_jobs=1).fit(numeric.fillna(0),
                                                                                           y.iloc[:3000])
    assert "linear-tree leaves" in PathTables(linear.booster_).unusable
    cols = list(numeric.columns)
    fallback = ShapExplainer(ModelAdapter(forest, cols, "binary", 1, prepare=lambda d: d[cols]), numeric.iloc[:200],
                             feature_perturbation="tree_path_dependent")
    assert fallback.route.kind == "native"
    assert any("averages its trees" in n for n in fallback.provenance()["notes"])


def test_pipeline_with_sparse_one_hot_input_is_explained_from_tables():
    """XGBoost reads absent sparse entries as missing; the explanation must follow the model that runs."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder
    df = pd.read_csv(ROOT / "data" / "german_credit.csv.gz")
    cats, nums = ["status", "credit_history", "purpose", "savings"], ["duration", "credit_amount", "age"]
    X, y = df[cats + nums], df["good_credit"]
    pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), cats)], remainder="passthrough",
                            sparse_threshold=1.0)
    pipe = Pipeline([("pre", pre), ("model", xgb.XGBClassifier(n_estimators=30, max_depth=3, n_jobs=1))]).fit(X, y)
    assert hasattr(pre.transform(X.head(5)), "toarray"), "the transformed input must be sparse for this test"
    features = list(X.columns)
    ad = ModelAdapter(pipe, features, "binary", 1, predict_proba=pipe.predict_proba)
    ex = ShapExplainer(ad, X.iloc[:300], feature_perturbation="tree_path_dependent")
    assert ex.route.kind == "path_table" and ex.route.space == "transformed"
    res = ex.explain(X.iloc[300:600])
    native = pipe[-1].get_booster().predict(xgb.DMatrix(pre.transform(X.iloc[300:600])), pred_contribs=True)
    assert np.allclose(res.values.sum(1), native[:, :-1].sum(1), atol=1e-4)   # one-hot columns summed per raw column
    p = pipe.predict_proba(X.iloc[300:600])[:, 1]
    assert np.allclose(res.output, np.log(p / (1 - p)), atol=1e-4)          # the pipeline's own output
    assert res.additivity_error.max() < 1e-4


def test_encoded_rows_reach_xgboost_directly_with_the_same_outputs(adult_frame):
    from interpret.encoding import TabularEncoder
    X, y = adult_frame.drop(columns="income"), adult_frame["income"]
    est = xgb.XGBClassifier(n_estimators=30, max_depth=4, tree_method="hist", enable_categorical=True, n_jobs=1
                            ).fit(X.iloc[:3000], y.iloc[:3000])
    features = list(X.columns)
    cats = {c: list(X[c].cat.categories) for c in features if isinstance(X[c].dtype, pd.CategoricalDtype)}
    ad = ModelAdapter(est, features, "binary", 1, prepare=lambda d: d[features], categories=cats)
    encoder = TabularEncoder.fit([X], features, cats)
    direct = ShapExplainer(ad, X.iloc[:200], encoder=encoder)
    assert direct._code_reader is not None
    rng = np.random.default_rng(1)
    A = encoder.encode(X.iloc[3000:3600])
    A = A + rng.normal(0, 0.7, A.shape) * (rng.random(A.shape) < 0.4)   # off-grid codes, as LIME samples them
    A[rng.random(A.shape) < 0.05] = np.nan
    expected = est.predict(encoder.decode(A), output_margin=True)
    assert np.array_equal(direct.output_encoded(A), expected.astype(float))
    # once the encoder grows, its new codes reach the model as the new category (which this booster
    # refuses), not clipped onto a known one
    encoder.extend(pd.DataFrame({c: ["never seen"] if c == "workclass" else X[c].iloc[:1].tolist() for c in features}))
    B = encoder.encode(X.iloc[3000:3010])
    B[:, features.index("workclass")] = len(cats["workclass"])
    with pytest.raises(xgb.core.XGBoostError, match="not in the training set"):
        direct.output_encoded(B)
    # an encoder with a category the booster never saw keeps the DataFrame round trip
    extra = TabularEncoder(features, {c: v + ["unseen"] if c == "workclass" else v for c, v in cats.items()})
    assert ShapExplainer(ad, X.iloc[:200], encoder=extra)._code_reader is None


def test_encoded_rows_reach_lightgbm_directly_with_the_same_outputs(adult_frame):
    from interpret.encoding import TabularEncoder
    X, y = adult_frame.drop(columns="income"), adult_frame["income"]
    est = lgb.LGBMClassifier(n_estimators=30, verbose=-1, n_jobs=1).fit(X.iloc[:3000], y.iloc[:3000])
    features = list(X.columns)
    cats = {c: list(X[c].cat.categories) for c in features if isinstance(X[c].dtype, pd.CategoricalDtype)}
    ad = ModelAdapter(est, features, "binary", 1, prepare=lambda d: d[features], categories=cats)
    encoder = TabularEncoder.fit([X], features, cats)
    direct = ShapExplainer(ad, X.iloc[:200], encoder=encoder)
    assert direct.route.kind == "path_table" and direct._code_reader is not None
    rng = np.random.default_rng(2)
    A = encoder.encode(X.iloc[3000:3600])
    A = A + rng.normal(0, 0.7, A.shape) * (rng.random(A.shape) < 0.4)   # off-grid values and codes, as LIME draws
    A[rng.random(A.shape) < 0.05] = np.nan
    expected = est.predict(encoder.decode(A), raw_score=True)
    assert np.array_equal(direct.output_encoded(A), expected.astype(float))
    reordered = {c: v[::-1] if c == "occupation" else v for c, v in cats.items()}   # codes that mean other things
    assert ShapExplainer(ad, X.iloc[:200], encoder=TabularEncoder(features, reordered))._code_reader is None
