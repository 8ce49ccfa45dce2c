"""Shared pytest configuration for the whole test suite."""

from __future__ import annotations

import os

from hypothesis import settings

# "ci": bounded and reproducible; "dev": the default, still modest so the
# suite stays fast. Pick with HYPOTHESIS_PROFILE, or set CI to get "ci".
settings.register_profile("ci", max_examples=50, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("dev", max_examples=100, deadline=None)

settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


# -- PostgreSQL: one throwaway cluster per session, one fresh database per test that asks ----------

import asyncio  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def pg_server():  # type: ignore[no-untyped-def]
    """A PostgreSQL server for this session: (its DSN, the databases tests made on it).

    DURABLE_POSTGRES_DSN names an existing server to use instead (the databases tests create there
    are dropped at the end); otherwise a throwaway PostgreSQL 15 cluster is started in a temp dir
    and removed at the end, databases and all. Skips the tests that need it if neither works.
    """
    import pgcluster

    made: list[str] = []
    external = os.environ.get("DURABLE_POSTGRES_DSN")
    if external:
        yield external, made
        for dsn in made:  # DROP DATABASE forces a checkpoint: once per database, at the end only
            asyncio.run(pgcluster.drop_database(dsn))
        return
    reason = pgcluster.unavailable()
    if reason is not None:
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    cluster = pgcluster.Cluster.start()
    try:
        yield cluster.dsn, made
    finally:
        cluster.stop()


@pytest.fixture
def pg_dsn(pg_server) -> str:  # type: ignore[no-untyped-def]
    """A fresh, empty database on the session's PostgreSQL server: its DSN."""
    import pgcluster

    server, made = pg_server
    dsn = asyncio.run(pgcluster.new_database(server))
    made.append(dsn)
    return dsn
