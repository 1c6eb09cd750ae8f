"""Fairness metrics on count tables, pinned against Fairlearn, AIF360 and the BiasAmp reference code."""
from __future__ import annotations

import csv
import logging

import numpy as np
import pandas as pd
import pytest
from scipy.stats import entropy
from sklearn.metrics import mutual_info_score

from audit.csvsafe import neutralise, write_csv, write_frame
from audit.metrics import amplification as amp
from audit.metrics import fairness as fm
from audit.metrics.proxies import proxy_strength

logging.getLogger().setLevel(logging.ERROR)  # aif360 prints optional-extra hints at import


def synthetic(n: int = 6000, seed: int = 3) -> pd.DataFrame:
    """Three attributes of different kinds, labels and predictions that depend on them."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "sex": rng.choice(["F", "M"], n, p=[0.4, 0.6]),
        "race": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]),
        "code": rng.choice([1.0, 2.0, np.nan], n, p=[0.5, 0.4, 0.1]),
        "flag": rng.choice([True, False], n),
    })
    base = 0.2 + 0.15 * (df.sex == "M") + 0.1 * (df.race == "a")
    df["y"] = (rng.random(n) < base).astype(int)
    df["y_hat"] = np.where(rng.random(n) < 0.75, df.y, (rng.random(n) < base + 0.05).astype(int))
    return df


def labels_of(df: pd.DataFrame, cols) -> pd.DataFrame:
    return pd.DataFrame({c: fm.group_labels(df[c]) for c in cols})


def analysis(table: fm.CountTable, attrs):
    groups, keep = table.groups(attrs)
    return groups, table.marginal(table.counts, attrs)[keep]


@pytest.mark.parametrize("attrs", [["sex"], ["race"], ["code"], ["flag"], ["sex", "race"], ["race", "code"]])
def test_group_metrics_and_disparities_match_fairlearn(attrs):
    from fairlearn import metrics as flm
    from sklearn.metrics import accuracy_score, precision_score
    df = synthetic()
    lab = labels_of(df, ["sex", "race", "code", "flag"])
    table = fm.count_table(lab, df.y.to_numpy(), df.y_hat.to_numpy(), ["0", "1"])
    groups, C = analysis(table, attrs)
    eligible = np.ones(len(groups), bool)
    st = fm.classification_stats(C, 1, eligible, ref=0)
    y, yh, sf = df.y, df.y_hat, lab[attrs]
    mf = flm.MetricFrame(
        metrics={"selection_rate": flm.selection_rate, "tpr": flm.true_positive_rate, "fpr": flm.false_positive_rate,
                 "fnr": flm.false_negative_rate, "precision": precision_score, "accuracy": accuracy_score,
                 "n": flm.count},
        y_true=y, y_pred=yh, sensitive_features=sf)
    by = mf.by_group
    keys = [tuple(g.split(fm.JOIN)) if len(attrs) > 1 else g for g in groups]
    for rate in ("selection_rate", "tpr", "fpr", "fnr", "precision", "accuracy", "n"):
        ours = st[f"group.{rate}"]
        theirs = np.array([by.loc[k, rate] for k in keys], dtype=float)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9, err_msg=rate)
    pairs = {
        "demographic_parity_difference": flm.demographic_parity_difference(y, yh, sensitive_features=sf),
        "demographic_parity_ratio": flm.demographic_parity_ratio(y, yh, sensitive_features=sf),
        "equalized_odds_difference": flm.equalized_odds_difference(y, yh, sensitive_features=sf),
        "equalized_odds_ratio": flm.equalized_odds_ratio(y, yh, sensitive_features=sf),
        "equal_opportunity_difference": flm.equal_opportunity_difference(y, yh, sensitive_features=sf),
        "equal_opportunity_ratio": flm.equal_opportunity_ratio(y, yh, sensitive_features=sf),
        "predictive_parity_difference": mf.difference()["precision"],
        "predictive_parity_ratio": mf.ratio()["precision"],
    }
    for key, want in pairs.items():
        assert float(st[key]) == pytest.approx(want, abs=1e-9), key


def test_count_tables_from_partitions_add_up_to_the_whole():
    df = synthetic()
    lab = labels_of(df, ["sex", "race"])
    whole = fm.count_table(lab, df.y.to_numpy(), df.y_hat.to_numpy(), ["0", "1"])
    # partitions see different group subsets, so their levels differ and must be aligned when added
    parts = [df[df.race == "c"], df[(df.race != "c") & (df.sex == "F")], df[(df.race != "c") & (df.sex == "M")]]
    tables = [fm.count_table(labels_of(p, ["sex", "race"]), p.y.to_numpy(), p.y_hat.to_numpy(), ["0", "1"]) for p in parts]
    assert tables[0].levels[1] == ("c",)
    total = tables[0] + tables[1] + tables[2]
    assert total.n == len(df)
    for attrs in (["sex"], ["race"], ["sex", "race"]):
        g_whole, c_whole = analysis(whole, attrs)
        g_sum, c_sum = analysis(total, attrs)
        assert dict(zip(g_whole, c_whole.tolist())) == dict(zip(g_sum, c_sum.tolist()))


def test_df_amplification_matches_aif360():
    from aif360.sklearn.metrics import df_bias_amplification, smoothed_edf
    df = synthetic()
    lab = labels_of(df, ["sex", "race"])
    table = fm.count_table(lab, df.y.to_numpy(), df.y_hat.to_numpy(), ["0", "1"])
    for attrs in (["sex"], ["race"], ["sex", "race"]):
        groups, C = analysis(table, attrs)
        ours = amp.df_amplification(C, np.ones(len(groups), bool), concentration=1.0)
        y = pd.Series(df.y.to_numpy(), index=pd.MultiIndex.from_frame(lab[attrs]))
        assert float(ours["df_amplification"]) == pytest.approx(
            df_bias_amplification(y, df.y_hat.to_numpy(), prot_attr=attrs), abs=1e-12)
        assert float(ours["df_epsilon_labels"]) == pytest.approx(smoothed_edf(y, prot_attr=attrs), abs=1e-12)


def reference_biasamp_attribute_to_task(task_labels, attribute_labels, task_preds, task_labels_train,
                                        attribute_labels_train):
    """Transcribed from princetonvisualai/directional-bias-amp, directional_biasamp.py (row-level, one-hot)."""
    num_t, num_a = task_labels.shape[1], attribute_labels.shape[1]
    p_at = np.zeros((num_a, num_t))
    p_a_p_t = np.zeros((num_a, num_t))
    num_train = len(task_labels_train)
    for a in range(num_a):
        for t in range(num_t):
            t_indices = np.where(task_labels_train[:, t] == 1)[0]
            a_indices = np.where(attribute_labels_train[:, a] == 1)[0]
            at_indices = set(t_indices) & set(a_indices)
            p_a_p_t[a][t] = (len(t_indices) / num_train) * (len(a_indices) / num_train)
            p_at[a][t] = len(at_indices) / num_train
    y_at = np.sign(p_at - p_a_p_t)
    t_cond_a = np.zeros((num_a, num_t))
    that_cond_a = np.zeros((num_a, num_t))
    for a in range(num_a):
        for t in range(num_t):
            t_cond_a[a][t] = np.mean(task_labels[:, t][np.where(attribute_labels[:, a] == 1)[0]])
            that_cond_a[a][t] = np.mean(task_preds[:, t][np.where(attribute_labels[:, a] == 1)[0]])
    return np.nanmean(y_at * (that_cond_a - t_cond_a))


@pytest.mark.parametrize("k", [2, 3])
def test_biasamp_matches_reference_code(k):
    rng = np.random.default_rng(k)
    n = 3000
    groups = ["a", "b", "c"]
    g_test, g_train = rng.choice(3, n, p=[0.5, 0.3, 0.2]), rng.choice(3, n, p=[0.5, 0.3, 0.2])
    y_test = np.minimum(k - 1, rng.binomial(k - 1, 0.3 + 0.15 * g_test / 2))
    y_train = np.minimum(k - 1, rng.binomial(k - 1, 0.3 + 0.15 * g_train / 2))
    y_hat = np.where(rng.random(n) < 0.7, y_test, rng.integers(0, k, n))
    onehot = lambda v, m: np.eye(m)[v]  # noqa: E731
    want = reference_biasamp_attribute_to_task(onehot(y_test, k), onehot(g_test, 3), onehot(y_hat, k),
                                               onehot(y_train, k), onehot(g_train, 3))
    classes = [str(c) for c in range(k)]
    table = fm.count_table(pd.DataFrame({"g": np.array(groups)[g_test]}), y_test, y_hat, classes)
    _, C = analysis(table, ["g"])
    train = np.zeros((3, k))
    np.add.at(train, (g_train, y_train), 1)
    got = amp.biasamp_attribute_to_task(C, amp.training_direction(train), np.ones(3, bool))
    assert float(got) == pytest.approx(want, abs=1e-12)
    if k == 2:  # binary closed form: mean over groups of s_a (P(ŷ=1|a) - P(y=1|a))
        s = np.sign(train[:, 1] / train.sum(1) - train[:, 1].sum() / train.sum())
        closed = np.mean([s[a] * (np.mean(y_hat[g_test == a]) - np.mean(y_test[g_test == a])) for a in range(3)])
        assert float(got) == pytest.approx(closed, abs=1e-12)


def test_group_labels_handle_every_attribute_kind():
    assert fm.group_labels(pd.Series([1.0, 2.0, np.nan])).tolist() == ["1", "2", "unknown"]
    assert fm.group_labels(pd.Series([True, False, None], dtype=object)).tolist() == ["True", "False", "unknown"]
    assert fm.group_labels(pd.Series(pd.Categorical(["x", None, "y"]))).tolist() == ["x", "unknown", "y"]
    ages = pd.Series(np.arange(18, 80))
    bins = fm.numeric_bins(ages, max_levels=10)
    assert bins is not None and len(bins) == 3
    lab = fm.group_labels(ages, bins)
    assert lab.nunique() == 4 and lab.iloc[0].startswith("<") and lab.iloc[-1].startswith(">=")
    assert fm.numeric_bins(pd.Series([0, 1, 2] * 5), max_levels=10) is None


def test_never_predicted_positive_group_gives_zero_ratio_and_undefined_precision():
    df = synthetic(2000)
    df.loc[df.race == "c", "y_hat"] = 0
    table = fm.count_table(labels_of(df, ["race"]), df.y.to_numpy(), df.y_hat.to_numpy(), ["0", "1"])
    groups, C = analysis(table, ["race"])
    st = fm.classification_stats(C, 1, np.ones(len(groups), bool), 0)
    c = groups.index("c")
    assert st["group.selection_rate"][c] == 0 and np.isnan(st["group.precision"][c])
    assert float(st["demographic_parity_ratio"]) == 0.0
    assert np.isfinite(st["predictive_parity_difference"])  # the undefined group is left out, not propagated


def test_proxy_strength_finds_a_copy_and_ignores_noise():
    rng = np.random.default_rng(0)
    n = 4000
    groups = rng.choice(["f", "m"], n)
    copy = pd.Series(np.where(groups == "f", "wife", "husband"))
    noise = pd.Series(rng.normal(size=n))
    multi = rng.choice(["a", "b", "c"], n)
    assert proxy_strength(copy, groups, ["f", "m"])["auc"] == pytest.approx(1.0)
    weak = proxy_strength(noise, groups, ["f", "m"])
    assert weak["auc"] < 0.6 and weak["nmi"] < 0.01
    shifted = pd.Series(rng.normal(size=n) + (multi == "c") * 3)
    strong = proxy_strength(shifted, multi, ["a", "b", "c"])
    assert strong["group"] == "c" and strong["auc"] > 0.9
    with_missing = pd.Series(np.where(rng.random(n) < 0.1, None, rng.choice(["x", "y", "z", "w"], n)))
    h = entropy(np.unique(multi, return_counts=True)[1])
    expected = mutual_info_score(multi, with_missing.fillna("<na>")) / h
    assert proxy_strength(with_missing, multi, ["a"])["nmi"] == pytest.approx(expected, rel=1e-12)


def test_csv_export_neutralises_formulas(tmp_path):
    rows = [{"group": "=HYPERLINK(\"x\")", "n": 5, "rate": -0.25, "note": "+1", "at": "@SUM(A1)", "ok": "plain"}]
    path = write_csv(tmp_path / "t.csv", rows)
    with path.open(encoding="utf-8-sig") as f:
        got = list(csv.DictReader(f))[0]
    assert got["group"].startswith("'=") and got["note"] == "'+1" and got["at"].startswith("'@")
    assert got["rate"] == "-0.25" and got["ok"] == "plain"
    assert neutralise(-3) == -3 and neutralise("-x") == "'-x"
    frame = pd.DataFrame(rows * 2).astype({"group": "category", "note": "string"})
    frame.loc[1, ["n", "ok"]] = [7, None]
    assert write_frame(tmp_path / "f.csv", frame, list(rows[0])).read_bytes() == \
        write_csv(tmp_path / "r.csv", frame.astype(object).where(frame.notna(), None).to_dict("records")).read_bytes()
