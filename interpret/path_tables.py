"""Exact path-dependent TreeSHAP for XGBoost and LightGBM tree ensembles, from per-leaf Shapley tables.

Path-dependent TreeSHAP (the algorithm behind XGBoost's `pred_contribs`) values each leaf's
root-to-leaf path as a product game: a feature on the path either follows the row (one
fraction, 0 or 1: does the row satisfy every split on that feature along the path) or is
averaged over the training cover (zero fraction, the product of the cover ratios). A leaf's
contribution to a row therefore depends only on which of its path's k features the row
satisfies, one of 2**k masks. Precomputing the k Shapley values of every mask of every leaf
once per model (Fast TreeSHAP v2, Yang 2021) turns explaining a row into one comparison per
split and k additions per leaf, in compiled code over all rows in parallel. The values equal
XGBoost's `pred_contribs` and LightGBM's `pred_contrib` (whose covers are training row counts)
up to float rounding; `PathTables.supports` and `.unusable` name what is not covered (non-tree
boosters, vector or linear leaves, averaged forests, paths too long for the tables' memory
bound) so the caller can use the library instead.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numba import njit, prange

MAX_TABLE_ENTRIES = 1 << 24   # float64 entries: 128 MB; depth <= 8 ensembles of a few hundred trees fit


@njit(cache=True, nogil=True)
def _fill_tables(k: np.ndarray, z: np.ndarray, value: np.ndarray, offset: np.ndarray, total: int) -> np.ndarray:
    table = np.zeros(total)
    width = z.shape[1]
    coef = np.zeros(width + 1)
    weight = np.zeros(width + 1)
    for p in range(k.shape[0]):
        kp = k[p]
        if kp == 0:
            continue
        # Shapley weight of a coalition of s others among kp players: 1 / (kp * C(kp-1, s))
        binom = 1.0
        for s in range(kp):
            weight[s] = 1.0 / (kp * binom)
            binom = binom * (kp - 1 - s) / (s + 1)
        for mask in range(1 << kp):
            for e in range(kp):
                coef[0] = 1.0
                deg = 0
                for i in range(kp):
                    if i == e:
                        continue
                    o = float((mask >> i) & 1)
                    zi = z[p, i]
                    coef[deg + 1] = coef[deg] * o
                    for s in range(deg, 0, -1):
                        coef[s] = coef[s] * zi + coef[s - 1] * o
                    coef[0] = coef[0] * zi
                    deg += 1
                acc = 0.0
                for s in range(deg + 1):
                    acc += coef[s] * weight[s]
                table[offset[p] + mask * kp + e] = value[p] * (float((mask >> e) & 1) - z[p, e]) * acc
    return table


ROW_BLOCK = 128  # rows explained together: their split outcomes and sums stay in cache

# How a node reads its feature value (missing values and the comparison):
XGB = 0               # XGBoost: missing -> default branch; left if x < threshold; categories in the set go right
LGB_NAN_MISSING = 1   # LightGBM, missing_type NaN: missing -> default branch; left if x <= threshold
LGB_NAN_AS_ZERO = 2   # LightGBM, missing_type None: missing reads as 0
LGB_ZERO_MISSING = 3  # LightGBM, missing_type Zero: missing reads as 0, and 0 takes the default branch
ZERO = 1e-35          # LightGBM's kZeroThreshold
MISSING_RULES = {"NaN": LGB_NAN_MISSING, "None": LGB_NAN_AS_ZERO, "Zero": LGB_ZERO_MISSING}  # dump_model's missing_type


@njit(parallel=True, cache=True, nogil=True)
def _contributions(X: np.ndarray, feature: np.ndarray, threshold: np.ndarray, default_left: np.ndarray,
                   rule_of: np.ndarray, cat_row: np.ndarray, cat_member: np.ndarray, path_node: np.ndarray,
                   path_left: np.ndarray, path_elem: np.ndarray, path_len: np.ndarray, k: np.ndarray,
                   elem_feature: np.ndarray, offset: np.ndarray, table: np.ndarray, n_features: int) -> np.ndarray:
    """Blocks of rows in parallel; within a block, leaf by leaf over the rows, so each leaf's path
    and table slice are read once per block and the inner loops run over contiguous rows."""
    n = X.shape[0]
    out = np.zeros((n, n_features))
    n_nodes = feature.shape[0]
    n_cats = cat_member.shape[1]
    for blk in prange((n + ROW_BLOCK - 1) // ROW_BLOCK):
        r0 = blk * ROW_BLOCK
        m = min(n, r0 + ROW_BLOCK) - r0
        left = np.empty((n_nodes, m), np.bool_)
        for j in range(n_nodes):
            f, t, dl, cr, rule = feature[j], threshold[j], default_left[j], cat_row[j], rule_of[j]
            for i in range(m):
                x = X[r0 + i, f]
                if np.isnan(x):
                    if rule < LGB_NAN_AS_ZERO:
                        left[j, i] = dl
                        continue
                    x = 0.0
                if cr >= 0:
                    c = int(x) if 0 <= x < n_cats else -1
                    if rule == XGB:  # categories in the node's set go right, anything else left
                        left[j, i] = not (c >= 0 and x == c and cat_member[cr, c])
                    else:            # LightGBM: the (truncated) category in the set goes left
                        left[j, i] = c >= 0 and cat_member[cr, c]
                elif rule == XGB:
                    left[j, i] = x < t
                elif rule == LGB_ZERO_MISSING and -ZERO <= x <= ZERO:
                    left[j, i] = dl
                else:
                    left[j, i] = x <= t
        acc = np.zeros((n_features, m))
        mask = np.empty(m, np.int64)
        for p in range(k.shape[0]):
            kp = k[p]
            if kp == 0:
                continue
            mask[:] = (1 << kp) - 1
            for d in range(path_len[p]):
                node, want, bit = path_node[p, d], path_left[p, d], np.int64(1) << path_elem[p, d]
                for i in range(m):
                    if left[node, i] != want:
                        mask[i] &= ~bit
            base = offset[p]
            for e in range(kp):
                row = acc[elem_feature[p, e]]
                for i in range(m):
                    row[i] += table[base + mask[i] * kp + e]
        for i in range(m):
            for f in range(n_features):
                out[r0 + i, f] = acc[f, i]
    return out


@dataclass
class _Paths:
    """Internal nodes (global indices) and root-to-leaf paths of the trees read so far."""
    node_feature: list[int] = field(default_factory=list)
    node_threshold: list[float] = field(default_factory=list)
    node_default_left: list[bool] = field(default_factory=list)
    node_rule: list[int] = field(default_factory=list)
    node_cat_row: list[int] = field(default_factory=list)
    cat_sets: list[list[int]] = field(default_factory=list)
    value: list[float] = field(default_factory=list)       # per leaf
    nodes: list[list[int]] = field(default_factory=list)   # per leaf: the internal nodes on its path,
    lefts: list[list[bool]] = field(default_factory=list)  # the direction taken at each,
    elems: list[list[int]] = field(default_factory=list)   # and the path feature (element) each splits on
    feats: list[list[int]] = field(default_factory=list)   # per leaf: its path's distinct features
    zs: list[list[float]] = field(default_factory=list)    # and their zero fractions


def _tree_paths(tree: dict[str, Any], into: _Paths) -> None:
    """Append one tree's internal nodes and leaf paths to `into`."""
    lc, rc, split = tree["left_children"], tree["right_children"], tree["split_indices"]
    cover, cond = tree["sum_hessian"], tree["split_conditions"]
    split_type = tree.get("split_type") or [0] * len(lc)
    cat_nodes = dict(zip(tree.get("categories_nodes", []),
                         zip(tree.get("categories_segments", []), tree.get("categories_sizes", []))))
    cats = tree.get("categories", [])
    rules = tree.get("rules") or [XGB] * len(lc)
    local = {}
    for node in range(len(lc)):
        if lc[node] == -1:
            continue
        local[node] = len(into.node_feature)
        into.node_feature.append(split[node])
        into.node_threshold.append(cond[node])
        into.node_default_left.append(bool(tree["default_left"][node]))
        into.node_rule.append(rules[node])
        if split_type[node] == 1:
            seg, size = cat_nodes[node]
            into.node_cat_row.append(len(into.cat_sets))
            into.cat_sets.append(cats[seg:seg + size])
        else:
            into.node_cat_row.append(-1)

    def walk(node: int, nodes: list, lefts: list, elems: list, feats: list, zs: list) -> None:
        if lc[node] == -1:
            for target, v in ((into.value, cond[node]), (into.nodes, nodes), (into.lefts, lefts),
                              (into.elems, elems), (into.feats, feats), (into.zs, zs)):
                target.append(v)
            return
        f = split[node]
        e = feats.index(f) if f in feats else len(feats)
        for child, went_left in ((lc[node], True), (rc[node], False)):
            ratio = cover[child] / cover[node]
            child_z = zs[:e] + [zs[e] * ratio] + zs[e + 1:] if e < len(feats) else zs + [ratio]
            walk(child, nodes + [local[node]], lefts + [went_left], elems + [e],
                 feats if e < len(feats) else feats + [f], child_z)

    walk(0, [], [], [], [], [])


def _padded(rows: list[list[Any]], dtype: Any) -> np.ndarray:
    """Ragged rows as a zero-padded matrix (at least one column)."""
    lengths = np.fromiter(map(len, rows), np.int64, len(rows))
    out = np.zeros((len(rows), max(int(lengths.max(initial=0)), 1)), dtype=dtype)
    out[np.arange(out.shape[1]) < lengths[:, None]] = [x for row in rows for x in row]  # row-major, like the mask
    return out


def booster_categories(booster: Any) -> dict[str, list[Any]]:
    """The categories XGBoost (>= 3.1) stored at training; it re-codes inputs against them."""
    try:
        cats = booster.get_categories(export_to_arrow=True)
    except (AttributeError, TypeError):
        return {}
    if cats.empty():
        return {}
    return {name: values.to_pylist() for name, values in cats.to_arrow() if values is not None}


def _lightgbm_tree(root: dict[str, Any]) -> dict[str, Any]:
    """A LightGBM tree (`dump_model` nesting) as XGBoost's flat JSON arrays, plus each node's rule."""
    keys = ("left_children", "right_children", "split_indices", "split_conditions", "sum_hessian", "default_left",
            "split_type", "rules")
    t: dict[str, Any] = {k: [] for k in keys}
    t.update(categories_nodes=[], categories_segments=[], categories_sizes=[], categories=[])
    stack: list[tuple[dict[str, Any], int | None, bool]] = [(root, None, True)]
    while stack:
        nd, parent, is_left = stack.pop()
        i = len(t["left_children"])
        for k in keys:
            t[k].append(0)
        if parent is not None:
            t["left_children" if is_left else "right_children"][parent] = i
        if "split_feature" not in nd:
            if "leaf_coeff" in nd:
                raise ValueError("linear-tree leaves")
            t["left_children"][i] = t["right_children"][i] = -1
            t["split_conditions"][i], t["sum_hessian"][i] = float(nd["leaf_value"]), float(nd["leaf_count"])
            continue
        t["split_indices"][i], t["sum_hessian"][i] = int(nd["split_feature"]), float(nd["internal_count"])
        if nd["decision_type"] == "==":   # categories listed "a||b||c" go left; missing goes right
            codes = [int(c) for c in str(nd["threshold"]).split("||")]
            t["split_type"][i], t["rules"][i] = 1, LGB_NAN_MISSING
            t["categories_nodes"].append(i)
            t["categories_segments"].append(len(t["categories"]))
            t["categories_sizes"].append(len(codes))
            t["categories"].extend(codes)
        else:
            t["split_conditions"][i], t["default_left"][i] = float(nd["threshold"]), int(nd["default_left"])
            t["rules"][i] = MISSING_RULES[nd["missing_type"]]
        stack += [(nd["right_child"], i, False), (nd["left_child"], i, True)]
    return t


class PathTables:
    """Shapley tables of an XGBoost or LightGBM booster's trees for one output (class), built once per model."""

    def __init__(self, booster: Any, class_index: int = 0):
        self.lightgbm = type(booster).__module__.startswith("lightgbm")
        self.unusable: str | None = None   # why these tables cannot be built within the memory bound
        read = self._lightgbm_trees if self.lightgbm else self._xgboost_trees
        trees = read(booster, class_index)
        paths = _Paths()
        for tree in trees:
            _tree_paths(tree, paths)
        self.k = np.fromiter(map(len, paths.feats), np.int64, len(paths.feats))
        sizes = (1 << self.k) * self.k
        self.offset = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.entries = int(sizes.sum())
        z = _padded(paths.zs, np.float64)
        self.elem_feature = _padded(paths.feats, np.int64)
        self.path_node = _padded(paths.nodes, np.int64)
        self.path_left = _padded(paths.lefts, np.bool_)
        self.path_elem = _padded(paths.elems, np.int64)
        self.path_len = np.fromiter(map(len, paths.nodes), np.int64, len(paths.nodes))
        values = np.asarray(paths.value, dtype=np.float64)
        self.feature = np.asarray(paths.node_feature, dtype=np.int64)
        self.threshold = np.asarray(paths.node_threshold, dtype=np.float64)
        self.default_left = np.asarray(paths.node_default_left, dtype=np.bool_)
        self.rule = np.asarray(paths.node_rule, dtype=np.int64)
        self.cat_row = np.asarray(paths.node_cat_row, dtype=np.int64)
        self.trees = len(trees)
        self.max_path_features = int(self.k.max(initial=0))
        n_cats = max((max(c) + 1 for c in paths.cat_sets if c), default=0)
        if self.unusable is None and self.entries > MAX_TABLE_ENTRIES:
            self.unusable = f"its leaf paths need {self.entries:,} table entries (bound {MAX_TABLE_ENTRIES:,})"
        elif self.unusable is None and len(paths.cat_sets) * n_cats > 8 * MAX_TABLE_ENTRIES:
            self.unusable = f"its categorical splits need a {len(paths.cat_sets):,} x {n_cats:,} membership matrix"
        self.cat_member = np.zeros((max(len(paths.cat_sets), 1), max(n_cats, 1)) if self.unusable is None else (1, 1),
                                   dtype=np.bool_)
        if self.unusable is None:
            self.cat_member[np.repeat(np.arange(len(paths.cat_sets)), [len(c) for c in paths.cat_sets]),
                            [c for cs in paths.cat_sets for c in cs]] = True
        self.table = _fill_tables(self.k, z, values, self.offset, self.entries) if self.unusable is None else None

    def _xgboost_trees(self, booster: Any, class_index: int) -> list[dict[str, Any]]:
        self.feature_names = list(booster.feature_names or [])
        self.categories = booster_categories(booster)
        model = json.loads(booster.save_raw(raw_format="json"))
        trees_json = model["learner"]["gradient_booster"]["model"]
        self.n_features = int(model["learner"]["learner_model_param"]["num_feature"])
        n_class = int(model["learner"]["learner_model_param"]["num_class"])
        trees = [tree for tree, cls in zip(trees_json["trees"], trees_json["tree_info"])
                 if n_class <= 1 or cls == class_index]
        for tree in trees:  # XGBoost compares in float32
            tree["split_conditions"] = np.asarray(tree["split_conditions"], dtype=np.float32).tolist()
        return trees

    def _lightgbm_trees(self, booster: Any, class_index: int) -> list[dict[str, Any]]:
        model = booster.dump_model()
        self.feature_names = list(model.get("feature_names") or [])
        self.n_features = int(model["max_feature_idx"]) + 1
        self.pandas_categorical = model.get("pandas_categorical") or []
        self.categories = {}
        if model.get("average_output"):
            self.unusable = "it averages its trees (random-forest mode)"
            return []
        per_iteration = int(model.get("num_tree_per_iteration", 1))
        try:
            return [_lightgbm_tree(info["tree_structure"]) for info in model["tree_info"]
                    if per_iteration <= 1 or info["tree_index"] % per_iteration == class_index]
        except ValueError as e:
            self.unusable = f"it has {e}"
            return []

    @staticmethod
    def supports(booster: Any) -> str | None:
        """Why the tables cannot represent this booster, or None when they can (LightGBM boosters:
        known once their trees are read; see `unusable`)."""
        if type(booster).__module__.startswith("lightgbm"):
            return None
        config = json.loads(booster.save_config())
        learner = config["learner"]
        if learner["gradient_booster"]["name"] != "gbtree":
            return f"booster '{learner['gradient_booster']['name']}' is not a plain tree ensemble"
        if int(learner["learner_model_param"].get("num_target", "1")) > 1:
            return "multi-output trees"
        return None

    @property
    def usable(self) -> bool:
        return self.unusable is None

    def numeric(self, X: Any) -> np.ndarray:
        """Rows as the library reads them: category codes of the training categories, NaN for
        missing; float32 for XGBoost, float64 for LightGBM."""
        dtype = np.float64 if self.lightgbm else np.float32
        if not isinstance(X, pd.DataFrame):
            return np.asarray(X, dtype=dtype)
        names = self.feature_names if set(self.feature_names) <= set(X.columns) else list(X.columns)
        categories = self.categories
        if self.lightgbm:  # LightGBM pairs its stored categories with the frame's categorical columns in order
            cat_cols = [c for c in names if isinstance(X[c].dtype, pd.CategoricalDtype)]
            if len(cat_cols) != len(self.pandas_categorical):
                raise ValueError(f"{len(cat_cols)} categorical columns for {len(self.pandas_categorical)} "
                                 "categorical features at training")
            categories = dict(zip(cat_cols, self.pandas_categorical))
        cols = []
        for name in names:
            col = X[name]
            if isinstance(col.dtype, pd.CategoricalDtype):
                codes = (pd.Categorical(col, categories=categories[name]) if name in categories else col.cat).codes
                cols.append(np.where(codes < 0, np.nan, codes).astype(dtype))
            else:
                cols.append(pd.to_numeric(col, errors="raise").to_numpy(dtype))
        return np.column_stack(cols) if cols else np.empty((len(X), 0), dtype)

    def contributions(self, X: Any) -> np.ndarray:
        """Per-feature contributions (n, p) of the rows, in the booster's feature order."""
        Xn = np.ascontiguousarray(self.numeric(X))
        return _contributions(Xn, self.feature, self.threshold, self.default_left, self.rule, self.cat_row,
                              self.cat_member, self.path_node, self.path_left, self.path_elem, self.path_len, self.k,
                              self.elem_feature, self.offset, self.table, self.n_features)


def warm_up() -> None:
    """Compile the kernels into numba's on-disk cache (`make install` runs this once), so the
    first audit in a fresh environment does not spend seconds compiling."""
    import lightgbm as lgb
    import xgboost as xgb
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    booster = xgb.train({"max_depth": 2, "nthread": 1}, xgb.DMatrix(X, label=X[:, 0] > 0), num_boost_round=2)
    PathTables(booster).contributions(X)   # float32 rows
    lgb_booster = lgb.train({"num_leaves": 4, "min_data_in_leaf": 5, "verbose": -1, "num_threads": 1},
                            lgb.Dataset(X, label=X[:, 0] > 0), num_boost_round=2)
    PathTables(lgb_booster).contributions(X)   # float64 rows


if __name__ == "__main__":
    warm_up()
