"""MLflow `python_function` loader for models registered by aiaudit (no pickle involved)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .model_io import META_FILE, ModelMeta, load_model_dir


class _Wrapper:
    def __init__(self, model):
        self._model = model

    def predict(self, model_input: pd.DataFrame, params=None):
        if self._model.task == "regression":
            return self._model.predict(model_input)
        return self._model.predict_proba(model_input)[:, -1] if self._model.task == "binary" else self._model.predict(model_input)


def _load_pyfunc(data_path: str):
    meta_file = next(Path(data_path).rglob(META_FILE))
    meta = ModelMeta.model_validate_json(meta_file.read_text())
    return _Wrapper(load_model_dir(meta_file.parent, meta.sha256))
