"""The embedded SQLite store (the default): see store.py and schema.py."""

from .schema import SCHEMA_VERSION
from .store import SQLiteStore

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]
