"""Bundled policy packs (YAML data, shipped with the package)."""
