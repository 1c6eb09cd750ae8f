"""The installed versions an audit or a document records, so a result can be reproduced."""
from __future__ import annotations

from importlib import metadata
from typing import Iterable

from . import __version__


def installed_versions(libraries: Iterable[str]) -> dict[str, str]:
    """aiaudit's version and each named library's; a library that is not installed is left out."""
    versions = {"aiaudit": __version__}
    for lib in libraries:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    return versions
