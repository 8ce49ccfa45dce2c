"""The PostgreSQL store: many workers on many hosts share one database (see store.py, schema.py)."""

from .schema import SCHEMA_VERSION
from .store import PostgresStore

__all__ = ["SCHEMA_VERSION", "PostgresStore"]
