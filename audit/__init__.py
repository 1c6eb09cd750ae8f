"""aiaudit: the audit spine (spec, engine, checks, registry, store, documents, CLI)."""

__version__ = "0.1.0"
