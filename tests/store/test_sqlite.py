"""What only the SQLite store promises: its schema, settings and process rules."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

import durable
from durable import call
from durable.store.sqlite import SCHEMA_VERSION, SQLiteStore

reg = durable.Registry()


@durable.activity(name="sq.double")
async def double(x: int) -> int:
    return x * 2


@reg.workflow(name="sq.flow")
def flow(n: int):
    return (yield call(double, n))


async def test_the_tables_are_readable_with_plain_sql(tmp_path: Path) -> None:
    db = tmp_path / "plain.db"
    async with durable.Engine(str(db), registry=reg) as engine:
        await engine.start(flow, 21, id="wf-'quoted'")
        assert await engine.result("wf-'quoted'", timeout=5) == 42
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT id, name, status FROM workflows").fetchall() == [("wf-'quoted'", "sq.flow", "completed")]
        rows = conn.execute("SELECT position, kind, name, failed FROM journal_view WHERE workflow_id = ?",
                            ("wf-'quoted'",)).fetchall()
        assert rows == [(0, "call", "sq.double", 0)]


async def test_a_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "newer.db"
    async with durable.Engine(str(db), registry=reg):
        pass
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="newer than this version of durable"):
        async with durable.Engine(str(db), registry=reg):
            pass
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


async def test_a_foreign_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "theirs.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(RuntimeError, match="did not create"):
        async with durable.Engine(str(db), registry=reg):
            pass
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["customers"]


async def test_synchronous_normal_is_an_option(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "normal.db", synchronous="NORMAL")
    async with durable.Engine(store, registry=reg) as engine:
        await engine.start(flow, 1, id="n")
        assert await engine.result("n", timeout=5) == 2
    with pytest.raises(ValueError, match="synchronous"):
        SQLiteStore(tmp_path / "x.db", synchronous="OFF")


def test_paths_and_urls(tmp_path: Path) -> None:
    from durable.store import open_store

    assert open_store(str(tmp_path / "a.db")).path == str(tmp_path / "a.db")  # type: ignore[attr-defined]
    assert open_store(f"sqlite:///{tmp_path}/b.db").path == f"{tmp_path}/b.db"  # type: ignore[attr-defined]
    relative = open_store("sqlite:///rel.db")
    assert relative.path == os.path.abspath("rel.db")  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="memory"):
        SQLiteStore(":memory:")
    with pytest.raises(ValueError, match="sqlite:///"):
        open_store("sqlite://host/x.db")


async def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        async with durable.Engine(str(tmp_path / "no" / "such" / "dir.db"), registry=reg):
            pass


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
async def test_a_store_is_not_used_across_fork(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "fork.db")
    await store.open()
    try:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: the parent's store must refuse to work here
            os.close(read)
            try:
                store._check_process()
                message = b"no error"
            except RuntimeError as exc:
                message = str(exc).encode()
            os.write(write, message)
            os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            said = pipe.read().decode()
        os.waitpid(pid, 0)
        assert "after fork() open a new Engine" in said
        assert await store.get("anything") is None  # the parent's store still works
    finally:
        await store.close()


def test_the_schema_doc_names_every_table() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "sqlite.md").read_text()
    with sqlite3.connect(":memory:") as conn:
        from durable.store.sqlite.schema import migrate

        migrate(conn, ":memory:")
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                                             "AND name NOT LIKE 'sqlite_%'")]
    missing = [t for t in tables if f"`{t}`" not in doc]
    assert not missing, f"docs/sqlite.md does not describe {missing}"
