"""A corpus of malformed and hostile inputs: each gives one readable error, writes nothing, crashes nothing."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from audit.errors import AuditInputError
from audit.spec import load_spec
from conftest import ROOT, copy_example, run_cli
from test_spine import store_snapshot


def _edit(spec_path: Path, change) -> None:
    spec = yaml.safe_load(spec_path.read_text())
    change(spec)
    spec_path.write_text(yaml.safe_dump(spec, allow_unicode=True))


def _dataset(spec_path: Path, frame: pd.DataFrame, name: str = "hostile.csv") -> None:
    path = spec_path.parent / name
    frame.to_csv(path, index=False)
    _edit(spec_path, lambda s: s["dataset"].update(path=name, split_column=None))


def _credit() -> pd.DataFrame:
    df = pd.read_csv(ROOT / "data" / "german_credit.csv.gz")
    return df[df["split"] == "test"].drop(columns=["split"]).reset_index(drop=True)


def truncated_yaml(p):
    p.write_text(p.read_text()[: len(p.read_text()) // 2] + "\n  protected: [sex\n")


def non_utf8(p):
    p.write_bytes(b"name: caf\xe9\nmodel: models:/x/1\n")


def enormous_value(p):
    _edit(p, lambda s: s.update(name="x" * 3_000_000))


def huge_seed(p):
    _edit(p, lambda s: s.update(seed=10 ** 40))


def wrong_type(p):
    _edit(p, lambda s: s["dataset"].update(protected="sex"))


def path_traversal_name(p):
    _edit(p, lambda s: s.update(name="../../etc/passwd"))


def html_in_name(p):
    _edit(p, lambda s: s.update(name="<script>alert(1)</script>"))


def yaml_list_top(p):
    p.write_text("- just\n- a list\n")


def alias_bomb(p):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [*{chr(96 + i)}, *{chr(96 + i)}, *{chr(96 + i)}, *{chr(96 + i)}]")
    p.write_text("\n".join(lines) + "\nname: bomb\nmodel: models:/x/1\ndataset: {path: x.csv}\nchecks: *l\n")


def empty_dataset(p):
    _dataset(p, _credit().head(0))


def header_only_csv(p):
    (p.parent / "empty.csv").write_text("")
    _edit(p, lambda s: s["dataset"].update(path="empty.csv", split_column=None))


def single_class_label(p):
    _dataset(p, _credit().assign(good_credit=1))


def all_nan_feature(p):
    _dataset(p, _credit().assign(credit_amount=np.nan))


def text_in_numeric_column(p):
    _dataset(p, _credit().assign(duration="=HYPERLINK(\"http://x\")"))


def million_groups(p):
    df = _credit()
    big = df.sample(1_200_000, replace=True, random_state=0).reset_index(drop=True)
    big["sex"] = np.arange(len(big)).astype(str)
    path = p.parent / "big.parquet"
    big.to_parquet(path)
    _edit(p, lambda s: s["dataset"].update(path="big.parquet", split_column=None))


def non_utf8_dataset(p):
    (p.parent / "latin1.csv").write_bytes("sex,good_credit\nm\xe4nnlich,1\n".encode("latin-1"))
    _edit(p, lambda s: s["dataset"].update(path="latin1.csv", split_column=None))


def missing_label_values(p):
    df = _credit()
    df.loc[::7, "good_credit"] = np.nan
    _dataset(p, df)


def three_class_label(p):
    df = _credit()
    df.loc[::5, "good_credit"] = 2
    _dataset(p, df)


def truncated_gzip(p):
    raw = (ROOT / "data" / "german_credit.csv.gz").read_bytes()
    (p.parent / "cut.csv.gz").write_bytes(raw[: len(raw) // 2])
    _edit(p, lambda s: s["dataset"].update(path="cut.csv.gz"))


def non_utf8_deep_in_file(p):
    """The first bad byte is on line 2, column 80: pandas reports a position inside its read buffer."""
    text = _credit().to_csv(index=False).encode()
    first_line = text.index(b"\n") + 1
    at = first_line + 79
    (p.parent / "bad.csv").write_bytes(text[:at] + b"\xff" + text[at + 1:])
    _edit(p, lambda s: s["dataset"].update(path="bad.csv", split_column=None))


CORPUS = {
    "three-class label vs binary model": (three_class_label, "has 3 classes (0, 1, 2); the model is binary"),
    "truncated gzip": (truncated_gzip, "truncated gzip file"),
    "non-utf8 byte deep in the file": (non_utf8_deep_in_file, "line 2, column 80"),
    "truncated yaml": (truncated_yaml, "malformed YAML"),
    "non-utf8 spec": (non_utf8, "UTF-8"),
    "enormous value": (enormous_value, "larger than"),
    "huge seed": (huge_seed, "seed"),
    "wrong type": (wrong_type, "dataset.protected"),
    "path traversal in name": (path_traversal_name, "name"),
    "html in name": (html_in_name, "name"),
    "top-level list": (yaml_list_top, "mapping"),
    "yaml alias bomb": (alias_bomb, "checks"),
    "empty dataset": (empty_dataset, "no rows"),
    "empty file": (header_only_csv, "empty"),
    "single-class label": (single_class_label, "single class"),
    "all-NaN model column": (all_nan_feature, "entirely empty"),
    "text in numeric column": (text_in_numeric_column, "must be numeric"),
    "millions of groups": (million_groups, "distinct groups"),
    "non-utf8 dataset": (non_utf8_dataset, "UTF-8"),
    "missing label values": (missing_label_values, "missing values"),
}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_hostile_spec_or_dataset_gives_one_line_error(case, engine, settings, tmp_path):
    spec_path = copy_example("credit", tmp_path)
    _edit(spec_path, lambda s: s.pop("system_card", None))
    breaker, needle = CORPUS[case]
    breaker(spec_path)
    before = store_snapshot(settings)
    with pytest.raises(AuditInputError) as info:
        engine.prepare(spec_path)
    message = str(info.value)
    assert needle in message, message
    assert "\n" not in message and len(message) < 600
    assert store_snapshot(settings) == before


@pytest.mark.parametrize("case", ["truncated yaml", "millions of groups", "html in name"])
def test_hostile_inputs_through_the_cli(case, demo_models, settings, tmp_path):
    spec_path = copy_example("credit", tmp_path)
    CORPUS[case][0](spec_path)
    before = store_snapshot(settings)
    proc = run_cli("run", str(spec_path))
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert store_snapshot(settings) == before


class _Exploit:
    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_never_executed(demo_models, settings, tmp_path):
    marker = tmp_path / "pwned"
    payload = _Exploit()
    payload.marker = marker
    for suffix in (".pkl", ".joblib", ".skops", ".ubj", ".txt"):
        evil = tmp_path / f"evil{suffix}"
        evil.write_bytes(pickle.dumps(payload))
        proc = run_cli("register", str(evil), "--name", "evil", "--data", str(ROOT / "data/german_credit.csv.gz"))
        assert proc.returncode == 2, (suffix, proc.stderr)
        assert not marker.exists(), f"pickle payload executed via {suffix}"
    assert "untrusted" in run_cli("register", str(tmp_path / "evil.pkl"), "--name", "evil",
                                  "--data", str(ROOT / "data/german_credit.csv.gz")).stderr


def test_tampered_registered_artifact_is_refused(demo_models, registry, tmp_path):
    from audit.errors import IntegrityError
    from audit.model_io import META_FILE
    ref = registry.resolve("models:/compas-recidivism-lgbm@candidate")
    model = registry.load(ref)
    stored = next(Path(registry.settings.home, "mlartifacts").rglob(META_FILE), None)
    assert stored is not None
    # tamper with the stored artifact of this version (the copy MLflow serves)
    mv = registry.client.get_model_version(ref.name, ref.version)
    import mlflow
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=ref.uri, dst_path=str(tmp_path / "dl")))
    model_file = next(local.rglob(model.meta.file))
    source_root = Path(registry.settings.home, "mlartifacts")
    candidates = [p for p in source_root.rglob(model.meta.file) if p.read_bytes() == model_file.read_bytes()]
    assert candidates, mv.source
    original = candidates[0].read_bytes()
    try:
        candidates[0].write_bytes(original.replace(b"tree", b"tref", 1))
        with pytest.raises(IntegrityError, match="tampered"):
            registry.load(ref)
    finally:
        candidates[0].write_bytes(original)
    assert registry.load(ref).meta.sha256 == model.meta.sha256


ANY_YAML = st.recursive(
    st.none() | st.booleans() | st.integers(-10 ** 12, 10 ** 12) | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25)
SPEC_KEYS = ["name", "model", "dataset", "system_card", "policy", "domain", "checks", "seed"]


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.dictionaries(st.sampled_from(SPEC_KEYS) | st.text(max_size=8), ANY_YAML, max_size=8))
def test_fuzz_spec_parser_never_crashes(doc, tmp_path):
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    try:
        load_spec(path)
    except AuditInputError as e:
        assert "\n" not in str(e)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=400))
def test_fuzz_spec_parser_raw_bytes(raw, tmp_path):
    path = tmp_path / "raw.yaml"
    path.write_bytes(raw)
    try:
        load_spec(path)
    except AuditInputError:
        pass
