"""SHAP values on the raw input columns, with the explainer chosen for the model.

Routes (first that applies):
- linear models (also as a Pipeline's last step): `shap.LinearExplainer`, interventional;
- tree ensembles (XGBoost, LightGBM, scikit-learn forests and boosting):
  interventional `shap.TreeExplainer` against the background when shap computes it correctly
  for this model (checked on probe rows), otherwise exact path-dependent TreeSHAP: for XGBoost
  from per-leaf Shapley tables (`path_tables`, several times faster than `pred_contribs` and
  checked against it on probe rows), else the library's own `pred_contribs` for XGBoost /
  LightGBM, `shap.TreeExplainer` for scikit-learn;
- anything else (or a Pipeline whose preprocessing cannot be mapped back): a budgeted
  `shap.PermutationExplainer` over the raw columns.

The background always goes through `shap.maskers.Independent(bg, max_samples=len(bg))`, so
shap does not silently cut it to 100 rows; the size actually used is read back from the
explainer (`background_size`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from .encoding import TabularEncoder
from .models import (ModelAdapter, estimator_output, family, gbdt_booster, margin_output, native_contributions,
                     xgb_booster)
from .path_tables import PathTables, booster_categories
from .pipeline_map import PipelineSplit, split_pipeline

FeaturePerturbation = Literal["auto", "interventional", "tree_path_dependent"]
PROBE_ROWS = 32
NATIVE_TREESHAP = {"xgboost": "xgboost pred_contribs", "lightgbm": "lightgbm pred_contrib"}  # the libraries' own


@dataclass
class ShapResult:
    values: np.ndarray          # (n, p) attributions on the raw columns
    base_values: np.ndarray     # (n,)
    output: np.ndarray          # (n,) the model's own output on the explained scale
    feature_names: list[str]
    shap_additivity_check: str = "not_run"   # passed | failed | not_run (shap's own check)

    @property
    def additivity_error(self) -> np.ndarray:
        return np.abs(self.values.sum(axis=1) + self.base_values - self.output)


@dataclass
class _Route:
    kind: str                 # linear | tree | path_table | native | permutation
    explainer_name: str
    feature_perturbation: str
    space: str                # raw | transformed | encoded
    target: Any = None
    explainer: Any = None
    notes: list[str] = field(default_factory=list)
    base_value: float = 0.0   # path_table: the ensemble's expected output (constant per row)


def _masker(data: np.ndarray | pd.DataFrame) -> Any:
    import shap
    return shap.maskers.Independent(data, max_samples=len(data))


def _numeric(Xs: Any) -> np.ndarray:
    """A float matrix for shap's tree code: pandas categories become their codes."""
    if isinstance(Xs, pd.DataFrame):
        cols = [Xs[c].cat.codes.replace(-1, np.nan).to_numpy(float) if isinstance(Xs[c].dtype, pd.CategoricalDtype)
                else pd.to_numeric(Xs[c], errors="raise").to_numpy(float) for c in Xs.columns]
        return np.column_stack(cols) if cols else np.empty((len(Xs), 0))
    return np.asarray(Xs, dtype=float)


def _xgboost_categorical(est: Any) -> bool:
    if family(est) != "xgboost":
        return False
    booster = xgb_booster(est)
    return "c" in (booster.feature_types or [])


def _background_rows(explainer: Any) -> int | None:
    """Rows of background data the shap explainer really holds."""
    masker = getattr(explainer, "masker", None)
    data = getattr(masker, "data", None)
    if data is None:
        data = getattr(explainer, "data", None)
    return None if data is None else int(np.asarray(data).shape[0])


class ShapExplainer:
    """One SHAP explainer for a model and a background sample (raw rows)."""

    def __init__(self, model: ModelAdapter, background: pd.DataFrame, *,
                 feature_perturbation: FeaturePerturbation = "auto", permutations: int = 3,
                 max_background_agnostic: int = 100, seed: int = 0, encoder: TabularEncoder | None = None):
        import shap
        self.model = model
        self.features = list(model.feature_names)
        self.requested = feature_perturbation
        self.permutations = permutations
        self.seed = seed
        self.shap_version = shap.__version__
        self.background = background.reset_index(drop=True)
        self.background_positions = np.arange(len(self.background))
        self.encoder = encoder or TabularEncoder.fit([self.background], self.features, model.categories)
        self.split: PipelineSplit | None = None
        self.max_evals: int | None = None
        self.route = self._choose(max_background_agnostic)
        self._code_reader = self._reads_codes()

    # -- choosing ---------------------------------------------------------------------
    def _space(self, X: pd.DataFrame) -> Any:
        if self.route_space == "transformed":
            return self.split.transform(X)
        if self.route_space == "encoded":
            self.encoder.extend(X)
            return self.encoder.encode(X)
        return self.model.prepared(X)

    def _choose(self, max_background_agnostic: int) -> _Route:
        est, notes = self.model.estimator, []
        fam = family(est)
        target, self.route_space = est, "raw"
        if fam == "pipeline":
            self.split = split_pipeline(est, self.features, self.background.head(200))
            final_fam = family(est.steps[-1][1])
            if self.split is None:
                notes.append("the Pipeline's preprocessing could not be mapped back to the raw columns; "
                             "explained model-agnostically on the raw columns")
                fam = "other"
            elif final_fam in ("linear", "sklearn_tree", "xgboost", "lightgbm"):
                target, fam, self.route_space = self.split.final, final_fam, "transformed"
                notes.append("explained on the transformed columns; contributions of the columns derived from "
                             "one raw column (e.g. its one-hot indicators) are summed into that column")
            else:
                notes.append(f"no fast SHAP explainer for a {type(est.steps[-1][1]).__name__}; "
                             "explained model-agnostically on the raw columns")
                fam = "other"
        if fam == "linear":
            if self.requested == "tree_path_dependent":
                notes.append("tree_path_dependent applies to trees only; the linear model is explained interventionally")
            return self._linear(target, notes)
        if fam in ("xgboost", "lightgbm", "sklearn_tree"):
            if self.requested in ("auto", "interventional"):
                route, why = self._tree_interventional(target)
                if route is not None:
                    route.notes = notes
                    return route
                if self.requested == "interventional":
                    notes.append(f"interventional TreeSHAP unavailable ({why}); explained with the "
                                 "model-agnostic Permutation explainer to keep the interventional value function")
                    return self._permutation(notes, max_background_agnostic)
                notes.append(f"interventional TreeSHAP unavailable ({why}); used exact path-dependent TreeSHAP, "
                             "which uses the trees' training cover instead of the background")
            return self._tree_path(target, fam, notes)
        return self._permutation(notes, max_background_agnostic)

    def _linear(self, target: Any, notes: list[str]) -> _Route:
        import shap
        bg = self._space(self.background)
        explainer = shap.LinearExplainer(target, _masker(bg))
        return _Route("linear", "shap.LinearExplainer", "interventional", self.route_space, target, explainer, notes)

    def _tree_interventional(self, target: Any) -> tuple[_Route | None, str]:
        import shap
        if _xgboost_categorical(target):  # shap's tree parser raises for these after a costly parse
            return None, "shap's TreeExplainer does not support XGBoost's categorical splits"
        bg = self._space(self.background)
        try:
            bg_num = _numeric(bg)
        except (TypeError, ValueError):
            return None, "the model's inputs include text columns"
        try:
            explainer = shap.TreeExplainer(target, data=_masker(bg_num), feature_perturbation="interventional",
                                           model_output="raw")
            route = _Route("tree", "shap.TreeExplainer", "interventional", self.route_space, target, explainer)
            probe = bg_num[:PROBE_ROWS]
            vals, base = self._tree_values(route, probe, check=False)
            f, _ = estimator_output(target, bg.iloc[:PROBE_ROWS] if isinstance(bg, pd.DataFrame) else probe,
                                    self.model.task, self.model.class_index)
            err = np.abs(vals.sum(1) + base - f).max()
            if not err <= 1e-3 * max(1.0, float(np.abs(f).max())):
                return None, f"shap's tree model disagrees with the model's own output by {err:.3g} on probe rows"
            return route, ""
        except Exception as e:  # shap raises for unsupported structures (e.g. categorical splits)
            return None, f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"

    def _path_tables(self, target: Any) -> tuple[_Route | None, str]:
        """Exact TreeSHAP from Shapley tables, if they represent this booster and match the library's
        own TreeSHAP (XGBoost pred_contribs, LightGBM pred_contrib) on probe rows."""
        booster = gbdt_booster(target)
        native = NATIVE_TREESHAP[family(target)]
        why = PathTables.supports(booster)
        if why:
            return None, why
        try:
            tables = PathTables(booster, self.model.class_index)
            if not tables.usable:
                return None, tables.unusable
            probe = self._space(self.background.head(PROBE_ROWS))
            expected, base = native_contributions(target, probe, self.model.task, self.model.class_index)
            route = _Route("path_table", f"aiaudit path-table TreeSHAP (exact; equals {native})",
                           "tree_path_dependent", self.route_space, target, tables, base_value=float(base[0]))
            err = float(np.abs(self._table_values(route, probe) - expected).max(initial=0.0))
        except (ValueError, TypeError, KeyError) as e:  # a model structure or input the tables do not read
            return None, f"{type(e).__name__}: {str(e)[:160]}"
        if not err <= 1e-4 * max(1.0, float(np.abs(expected).max(initial=0.0))):
            return None, f"the tables disagree with {native} by {err:.3g} on probe rows"
        return route, ""

    def _table_values(self, route: _Route, Xs: Any) -> np.ndarray:
        values = route.explainer.contributions(Xs)
        return -values if self.model.task == "binary" and self.model.class_index == 0 else values

    def _tree_path(self, target: Any, fam: str, notes: list[str]) -> _Route:
        import shap
        if fam in ("xgboost", "lightgbm"):
            route, why = self._path_tables(target)
            if route is not None:
                route.notes = notes
                return route
            notes.append(f"Shapley tables not used ({why}); {NATIVE_TREESHAP[fam]} computed the values")
            lib = "xgboost Booster.predict(pred_contribs=True)" if fam == "xgboost" else \
                "lightgbm Booster.predict(pred_contrib=True)"
            return _Route("native", lib, "tree_path_dependent", self.route_space, target, None, notes)
        explainer = shap.TreeExplainer(target, feature_perturbation="tree_path_dependent", model_output="raw")
        return _Route("tree", "shap.TreeExplainer", "tree_path_dependent", self.route_space, target, explainer, notes)

    def _permutation(self, notes: list[str], max_background: int) -> _Route:
        import shap
        self.route_space = "encoded"
        if len(self.background) > max_background:
            rng = np.random.default_rng(self.seed)
            self.background_positions = np.sort(rng.choice(len(self.background), max_background, replace=False))
            notes.append(f"background subsampled to {max_background} rows for the model-agnostic explainer")
        bg = self.encoder.encode(self.background.iloc[self.background_positions])
        p = len(self.features)
        self.max_evals = self.permutations * (2 * p + 1)
        explainer = shap.PermutationExplainer(self._agnostic_output, _masker(bg), seed=self.seed)
        return _Route("permutation", "shap.PermutationExplainer", "interventional", "encoded", None, explainer, notes)

    # -- outputs ------------------------------------------------------------------------
    def _agnostic_output(self, A: np.ndarray) -> np.ndarray:
        return self.model.raw_output(self.encoder.decode(np.asarray(A, dtype=float)))

    @property
    def output_scale(self) -> str:
        if self.route.kind == "permutation":
            return "raw" if self.model.task == "regression" else "probability"
        probe = self.background.head(2)
        return estimator_output(self.route.target, self._space(probe), self.model.task, self.model.class_index)[1]

    def output(self, X: pd.DataFrame) -> np.ndarray:
        """The explained output f(x) for raw rows, computed by the model itself."""
        if self.route.kind == "permutation":
            return self.model.raw_output(X[self.features])
        return estimator_output(self.route.target, self._space(X), self.model.task, self.model.class_index)[0]

    def output_encoded(self, A: np.ndarray) -> np.ndarray:
        """`output` of encoded rows (`self.encoder`'s matrix), as LIME and the deletion curves perturb them."""
        reader = self._code_reader
        if reader is None or any(len(self.encoder.categories[self.features[i]]) != n
                                 for i, n in zip(reader[1], reader[2])):  # the encoder has grown since
            return self.output(self.encoder.decode(A))
        return self._read_codes(reader, A)

    def _read_codes(self, reader: tuple[Any, np.ndarray, np.ndarray], A: np.ndarray) -> np.ndarray:
        booster, cat_cols, n_cats = reader
        A = np.array(A, dtype=np.float32 if family(booster) == "xgboost" else np.float64)  # as each library reads
        codes = A[:, cat_cols]  # read a perturbed code as `decode` does
        A[:, cat_cols] = np.where(np.isfinite(codes), np.clip(np.rint(codes), 0, n_cats - 1), np.nan)
        return margin_output(booster, A, self.model.task, self.model.class_index)

    def _reads_codes(self) -> tuple[Any, np.ndarray, np.ndarray] | None:
        """An XGBoost or LightGBM booster reads the encoder's codes directly, without the DataFrame
        round trip, when its stored categories are exactly the encoder's and it explains the raw
        columns; checked on probe rows. Returns (booster, categorical column indices, their sizes) or None."""
        fam = family(self.route.target)
        if self.route.kind not in ("path_table", "native") or self.route_space != "raw" \
                or fam not in ("xgboost", "lightgbm"):
            return None
        booster, cats = gbdt_booster(self.route.target), self.encoder.categories
        if fam == "xgboost":
            names, stored = list(booster.feature_names or []), booster_categories(booster)
        else:  # LightGBM keeps the categories of the training frame's categorical columns, in column order
            names, kept = booster.feature_name(), getattr(booster, "pandas_categorical", None) or []
            cat_features = [f for f in self.features if f in cats]
            if len(kept) != len(cat_features):
                return None
            stored = dict(zip(cat_features, kept))
        if names != self.features or set(stored) != set(cats) or \
                any([str(v) for v in stored[c]] != [str(v) for v in cats[c]] for c in cats):
            return None
        cat_cols = np.array([i for i, c in enumerate(self.features) if c in cats], dtype=int)
        reader = (booster, cat_cols, np.array([len(cats[self.features[i]]) for i in cat_cols], dtype=np.float32))
        probe = self.background.head(PROBE_ROWS)
        try:
            same = np.array_equal(self._read_codes(reader, self.encoder.encode(probe)), self.output(probe))
        except (ValueError, TypeError):
            same = False
        return reader if same else None

    @property
    def background_size(self) -> int | None:
        """Background rows the explainer really uses (None: path-dependent, no background)."""
        return None if self.route.explainer is None or self.route.feature_perturbation != "interventional" \
            else _background_rows(self.route.explainer)

    @property
    def cost_per_row(self) -> int:
        """Model evaluations per explained row (what the Permutation budget counts)."""
        if self.route.kind == "permutation":
            return int(self.max_evals * (self.background_size or 1))
        return 1

    def provenance(self) -> dict[str, Any]:
        return {"explainer": self.route.explainer_name, "route": self.route.kind,
                "feature_perturbation": self.route.feature_perturbation,
                "requested_feature_perturbation": self.requested,
                "background_size": self.background_size, "output_scale": self.output_scale,
                "explained_space": self.route.space, "model_family": family(self.model.estimator),
                "max_evals": self.max_evals, "seed": self.seed if self.route.kind == "permutation" else None,
                "shap_version": self.shap_version, "notes": list(self.route.notes),
                "pipeline_map": self.split.describe() if self.split is not None and self.route.space == "transformed" else None}

    # -- explaining ---------------------------------------------------------------------
    def _tree_values(self, route: _Route, Xs: Any, check: bool) -> tuple[np.ndarray, np.ndarray]:
        exp = route.explainer(_numeric(Xs) if route.feature_perturbation == "interventional" else Xs,
                              check_additivity=check)
        return self._orient(exp.values, exp.base_values)

    def _orient(self, values: np.ndarray, base: Any) -> tuple[np.ndarray, np.ndarray]:
        values = np.asarray(values, dtype=float)
        base = np.asarray(base, dtype=float)
        k = self.model.class_index
        if values.ndim == 3:
            values = values[:, :, k]
            base = base[:, k] if base.ndim == 2 else (base[k] if base.ndim == 1 and base.size > 1 else base)
        elif self.model.task == "binary" and k == 0:
            values, base = -values, -base
        return values, np.broadcast_to(base.reshape(-1) if base.size > 1 else base.reshape(()), (values.shape[0],)).copy()

    def explain(self, X: pd.DataFrame) -> ShapResult:
        X = X[self.features].reset_index(drop=True)
        route, check = self.route, "not_run"
        Xs = self._space(X)
        if route.kind == "path_table":
            values, base = self._table_values(route, Xs), np.full(len(X), route.base_value)
        elif route.kind == "native":
            values, base = native_contributions(route.target, Xs, self.model.task, self.model.class_index)
        elif route.kind == "tree":
            try:
                values, base = self._tree_values(route, Xs, check=True)
                check = "passed"
            except Exception as e:
                if "Additivity" not in str(e):
                    raise
                values, base = self._tree_values(route, Xs, check=False)
                check = "failed"
        elif route.kind == "linear":
            exp = route.explainer(np.asarray(Xs, dtype=float))
            values, base = self._orient(exp.values, exp.base_values)
        else:
            exp = route.explainer(np.asarray(Xs, dtype=float), max_evals=self.max_evals, silent=True)
            values, base = np.asarray(exp.values, dtype=float), np.asarray(exp.base_values, dtype=float).reshape(-1)
        if route.space == "transformed":
            values = self.split.aggregate(values)
        output = self.model.raw_output(X) if route.kind == "permutation" else \
            estimator_output(route.target, Xs, self.model.task, self.model.class_index)[0]
        return ShapResult(values=values, base_values=base, output=output, feature_names=self.features,
                          shap_additivity_check=check)
