"""The pytest plugin: async tests, engine factories, a virtual clock, an isolated registry."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import durable
from durable import call, receive, sleep
from durable.testing.plugin import sqlite_available

from .flows import reserve

ran: list[str] = []


async def test_async_tests_run() -> None:
    ran.append("async")
    assert ran == ["async"]


def test_the_async_test_above_really_ran() -> None:
    assert ran == ["async"]


def test_fixtures_are_fresh_per_test(durable_registry, virtual_clock, memory_engine) -> None:
    assert isinstance(durable_registry, durable.Registry) and len(durable_registry) == 0
    assert isinstance(virtual_clock, durable.VirtualClock)
    engine = memory_engine()
    assert isinstance(engine, durable.Engine)
    assert engine.clock is virtual_clock and engine.registry is durable_registry
    assert engine._state == "new"  # not opened: the test does `async with`


def _waiting_flow(registry: durable.Registry) -> Any:
    @registry.workflow(name="tp.wait")
    def wait() -> Any:
        first = yield call(reserve, "a")
        return [first, (yield receive("go"))]

    return wait


async def test_engines_from_one_factory_share_a_store_like_a_restart(memory_engine, durable_registry) -> None:
    wait = _waiting_flow(durable_registry)
    async with memory_engine() as engine:
        await engine.start(wait, id="w")
        await engine.signal("w", "go", 1)
    async with memory_engine() as engine:  # the second engine resumes what the first left
        assert await engine.result("w", timeout=5) == ["res-a", 1]


async def test_durable_engine_runs_on_every_backend(durable_engine, durable_registry) -> None:
    wait = _waiting_flow(durable_registry)
    async with durable_engine() as engine:
        handle = await engine.start(wait, id="w")
        await engine.signal("w", "go", "x")
        assert await handle.result(timeout=5) == ["res-a", "x"]


async def test_sqlite_engine_uses_a_file_in_tmp_path(sqlite_engine, tmp_path: Path, durable_registry) -> None:
    @durable_registry.workflow(name="tp.nap")
    def nap() -> Any:
        yield sleep(3600)
        return "rested"

    async with sqlite_engine() as engine:
        assert await (await engine.start(nap, id="n")).result(timeout=5) == "rested"
    assert (tmp_path / "durable.db").exists()
    async with sqlite_engine() as engine:
        assert await engine.status("n") == "completed"


def test_sqlite_is_available_in_this_checkout() -> None:
    assert sqlite_available() is None


def test_sqlite_tests_skip_with_a_reason_when_the_store_is_missing(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text("import sys\nsys.modules['durable.store.sqlite'] = None\n")
    (tmp_path / "test_x.py").write_text(textwrap.dedent("""
        def test_needs_sqlite(sqlite_engine):
            raise AssertionError("must not run")
    """))
    done = subprocess.run([sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout and "durable.store.sqlite is not available" in done.stdout
