"""One contract suite over every store: the `store` fixture is parametrized by backend."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from durable.store import MemoryStore, Store

BACKENDS = ["memory", "sqlite", "postgres"]  # postgres: a throwaway cluster (tests/pgcluster.py), skipped if none


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

    dsn = request.getfixturevalue("pg_dsn")  # a fresh database per test
    return lambda: open_store(dsn)
