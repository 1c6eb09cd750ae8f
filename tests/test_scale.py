"""Map over partitions + associative reduce: local streaming and Dask agree exactly on counts."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from audit.scale.backends import run_dask, run_local
from audit.scale.partials import MapPlan
from conftest import ROOT


@pytest.fixture(scope="module")
def big_adult(tmp_path_factory):
    df = pd.read_csv(ROOT / "data" / "adult.csv.gz")
    big = df.sample(120_000, replace=True, random_state=1).reset_index(drop=True)
    path = tmp_path_factory.mktemp("scale") / "adult.parquet"
    big.to_parquet(path, row_group_size=25_000)
    return path, big


@pytest.fixture(scope="module")
def plan(registry, demo_models):
    model = registry.load(registry.resolve("models:/adult-income-xgb@candidate"))
    return MapPlan(model=model, label="income", positive_label=1, protected=("sex", "race"), sample_per_stratum=50, seed=3)


def test_local_streaming_equals_in_memory_and_dask(big_adult, plan):
    path, big = big_adult
    cols = plan.model.feature_names + ["income", "sex", "race"]
    local, stats = run_local(path, cols, plan, chunk_rows=30_000)
    assert stats.chunks == 4 and local.rows == len(big)
    dask_result, dstats = run_dask(path, cols, plan)
    assert dstats.backend == "dask" and dstats.chunks >= 2
    assert dask_result.rows == local.rows
    assert np.array_equal(dask_result.groups.counts, local.groups.counts)
    assert dask_result.groups.levels == local.groups.levels
    assert np.array_equal(dask_result.histogram.counts, local.histogram.counts)
    assert np.array_equal(dask_result.sample["__aiaudit_sample_key__"].to_numpy(),
                          local.sample["__aiaudit_sample_key__"].to_numpy())
    # the reduced tables reproduce the in-memory figures
    score = plan.model.predict_proba(big)[:, 1].astype(float)
    y = big["income"].to_numpy()
    m = local.histogram.metrics()
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, score > 0.5), abs=1e-12)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, score), abs=1e-9)
    assert abs(m["roc_auc"] - skm.roc_auc_score(y, score)) <= m["roc_auc_error_bound"] + 1e-12
    sel = big.assign(pred=(score > 0.5)).groupby("sex")["pred"].mean()
    C = local.groups.marginal(local.groups.counts, ["sex"])
    for i, g in enumerate(local.groups.groups(["sex"])[0]):
        assert C[i, :, 1].sum() / C[i].sum() == pytest.approx(sel[g], abs=1e-12)
    # the sample is stratified by label x protected groups, at most k rows each
    strata = local.sample.groupby(["income", "sex", "race"]).size()
    assert strata.max() <= 50 and len(strata) == big.groupby(["income", "sex", "race"]).ngroups


def _streaming_spec(tmp_path, backend: str):
    import yaml
    from conftest import copy_example
    spec_path = copy_example("adult", tmp_path / backend)
    df = pd.read_csv(ROOT / "data" / "adult.csv.gz")
    df.to_parquet(spec_path.parent / "adult.parquet", row_group_size=10_000)
    spec = yaml.safe_load(spec_path.read_text())
    spec["dataset"]["path"] = "adult.parquet"
    spec.update(checks=["performance", "fairness"], execution={"mode": "streaming", "backend": backend})
    spec_path.write_text(yaml.safe_dump(spec))
    return spec_path


def test_streamed_audit_matches_in_memory_audit_on_dask_and_locally(engine, adult_audit, tmp_path):
    results = {b: engine.run(engine.prepare(_streaming_spec(tmp_path, b))) for b in ("local", "dask")}
    local, dask_r = results["local"], results["dask"]
    assert local.dataset.rows == dask_r.dataset.rows == adult_audit.dataset.rows == 15_060
    assert local.dataset.sample["backend"] == "local" and dask_r.dataset.sample["backend"] == "dask"
    count_keys = [k for k in adult_audit.metrics if k.startswith("fairness.") and k.split(".")[-1] not in ("ci_low", "ci_high")
                  and ("selection_rate" in k or "demographic_parity" in k or "equalized_odds" in k)]
    count_keys += ["performance.accuracy", "performance.balanced_accuracy"]
    assert len(count_keys) > 10
    for k in count_keys:
        assert local.metrics[k] == dask_r.metrics[k], k              # Dask equals local exactly
        assert local.metrics[k] == pytest.approx(adult_audit.metrics[k], abs=1e-12), k  # and equals in-memory
    assert abs(local.metrics["performance.roc_auc"] - adult_audit.metrics["performance.roc_auc"]) \
        <= local.metrics["performance.roc_auc.error_bound"] + 1e-12
    assert local.checks["performance"].details["method"].startswith("multinomial bootstrap")
