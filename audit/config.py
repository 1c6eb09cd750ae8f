"""Where aiaudit keeps its state: one home directory, one MLflow tracking URI."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    tracking_uri: str

    @property
    def audits_dir(self) -> Path:
        return self.home / "audits"

    @property
    def artifacts_uri(self) -> str:
        return (self.home / "mlartifacts").resolve().as_uri()

    @property
    def records_db(self) -> Path:
        return self.home / "records.db"

    @classmethod
    def from_env(cls, home: str | os.PathLike | None = None) -> "Settings":
        """`AIAUDIT_HOME` (default `./.aiaudit`); `MLFLOW_TRACKING_URI` overrides the SQLite store."""
        root = Path(home or os.environ.get("AIAUDIT_HOME") or ".aiaudit").resolve()
        uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow.db'}"
        return cls(home=root, tracking_uri=uri)

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file behind the tracking URI, or None for a server or other store."""
        prefix = "sqlite:///"
        return Path(self.tracking_uri[len(prefix):]) if self.tracking_uri.startswith(prefix) else None

    def store_exists(self) -> bool:
        """Whether there is anything to read: False for a fresh home (opening it would create the databases)."""
        path = self.sqlite_path
        return path is None or path.is_file()

    def ensure(self) -> "Settings":
        self.home.mkdir(parents=True, exist_ok=True)
        self.audits_dir.mkdir(exist_ok=True)
        return self
