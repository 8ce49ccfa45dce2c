"""Stores: where journals live. One protocol, several backends.

`MemoryStore` (tests), `SQLiteStore` (the embedded default), `PostgresStore`
(many workers on many hosts). Backends other than memory are imported only
when asked for.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .base import Store
from .memory import MemoryStore
from .types import Claim, Created, Inbox, NewWorkflow, Signal, StoredEntry, WorkflowRecord, Write

if TYPE_CHECKING:
    from .postgres import PostgresStore
    from .sqlite import SQLiteStore

__all__ = [
    "Claim",
    "Created",
    "Inbox",
    "MemoryStore",
    "NewWorkflow",
    "PostgresStore",
    "SQLiteStore",
    "Signal",
    "Store",
    "StoredEntry",
    "WorkflowRecord",
    "Write",
    "open_store",
]


def __getattr__(name: str) -> Any:
    if name == "SQLiteStore":
        from .sqlite import SQLiteStore

        return SQLiteStore
    if name == "PostgresStore":
        from .postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module 'durable.store' has no attribute {name!r}")


def open_store(spec: str | os.PathLike[str] | Store) -> Store:
    """A store from what `Engine(store=...)` takes.

    A bare string or path is a SQLite file; `sqlite:///rel.db` and
    `sqlite:////abs/x.db` follow the URL convention; `postgresql://...` (or
    `postgres://`) is PostgreSQL; `memory:` keeps everything in this process.
    """
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str):
        if isinstance(spec, Store):
            return spec
        raise TypeError(f"Engine(store=...) takes a path, a URL or a Store, got {spec!r}")
    if spec in ("memory:", "memory://", ":memory:"):
        return MemoryStore()
    if spec.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(spec)
    if spec.startswith("sqlite:"):
        if not spec.startswith("sqlite:///"):
            raise ValueError(
                f"cannot read SQLite URL {spec!r}: use sqlite:///relative/path.db or sqlite:////absolute/path.db"
            )
        path = spec[len("sqlite:///"):]
        if not path:
            raise ValueError(f"SQLite URL {spec!r} names no file")
        from .sqlite import SQLiteStore

        return SQLiteStore(path)
    if "://" in spec:
        raise ValueError(f"unknown store URL {spec!r}: use a file path, sqlite:///..., postgresql://... or memory:")
    from .sqlite import SQLiteStore

    return SQLiteStore(spec)
