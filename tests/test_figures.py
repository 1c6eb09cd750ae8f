"""Figures saved as data: valid JSON, redrawn identically, unknown kinds refused."""
import json

import numpy as np
import pytest

from audit import figures


def test_figure_spec_is_strict_json_and_redraws_identically(tmp_path):
    path = tmp_path / f"bars{figures.SUFFIX}"
    table = [{"feature": "age", "mean_abs": 0.5, "ci_low": 0.4, "ci_high": np.float64("nan")}]
    figures.save(path, "shap.global_bar", table=table, scale="log-odds")
    spec = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert spec == {"kind": "shap.global_bar", "data": {"table": [{"feature": "age", "mean_abs": 0.5, "ci_low": 0.4,
                                                                   "ci_high": None}], "scale": "log-odds"}}
    png = figures.draw(path.read_bytes())
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and figures.draw(path.read_bytes()) == png


def test_arrays_keep_missing_values_as_null(tmp_path):
    path = tmp_path / f"dep{figures.SUFFIX}"
    figures.save(path, "shap.dependence", feature="x", x=np.array([1.0, np.nan, 3.0]), phi=np.array([0.1, 0.2, -np.inf]),
                 categorical=False, scale="probability")
    data = json.loads(path.read_text())["data"]
    assert data["x"] == [1.0, None, 3.0] and data["phi"] == [0.1, 0.2, None]
    assert figures.draw(path.read_bytes())[:4] == b"\x89PNG"


def test_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown figure kind"):
        figures.save(tmp_path / "x.figure.json", "os.system", cmd="true")
    with pytest.raises(ValueError, match="unknown figure kind"):
        figures.draw(json.dumps({"kind": "builtins.eval", "data": {}}))
