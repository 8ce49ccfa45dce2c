"""One contract suite over every store: the `store` fixture is parametrized by backend."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from durable.store import MemoryStore, Store

BACKENDS = ["memory", "sqlite"]
if os.environ.get("DURABLE_POSTGRES_DSN"):
    BACKENDS.append("postgres")


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, tmp_path) -> Callable[[], Store]:  # type: ignore[no-untyped-def]
    """A factory of unopened stores over one database (call it twice for two processes' views)."""
    backend = request.param
    if backend == "memory":
        shared = MemoryStore()
        return lambda: shared
    if backend == "sqlite":
        from durable.store.sqlite import SQLiteStore

        path = str(tmp_path / "contract.db")
        return lambda: SQLiteStore(path)
    from durable.store import open_store

    dsn = os.environ["DURABLE_POSTGRES_DSN"]
    return lambda: open_store(dsn)
