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
        """Create the home (0700 whatever the umask: the store is readable by its owner only)."""
        for folder in (self.home, self.audits_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            private(folder)
        if (path := self.sqlite_path) is not None and path.is_file():
            private(path)
        return self


def private(path: Path) -> None:
    """Owner-only permissions: 0700 for a directory, 0600 for a file (skipped where we are not the owner)."""
    try:
        if path.stat().st_uid == os.getuid():
            os.chmod(path, 0o700 if path.is_dir() else 0o600)
    except FileNotFoundError:
        pass
