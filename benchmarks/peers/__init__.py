"""Peer tools run in their own virtual environments (never imported into aiaudit's)."""
