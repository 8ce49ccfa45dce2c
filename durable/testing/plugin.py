"""The pytest plugin durable registers (entry point `pytest11: durable`).

It runs `async def` tests in a fresh event loop each, so a workflow test
needs no other plugin. If pytest-asyncio or anyio already handles a test,
this plugin leaves it alone.

Fixtures (all synchronous: engines come back un-opened, for `async with`):

- `virtual_clock`: a `VirtualClock` at 2024-01-01 00:00 UTC.
- `durable_registry`: an empty `Registry`, so tests do not share workflows.
- `memory_engine(**options)`: a factory of engines on one `MemoryStore`
  per test (a second engine sees what the first recorded, like a restart),
  with the virtual clock and the isolated registry unless told otherwise.
- `sqlite_engine(**options)`: the same on a SQLite file in `tmp_path`;
  the test is skipped if the SQLite store cannot be imported.
- `durable_engine(**options)`: parametrized over both backends, for tests
  that must hold on every store.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..clock import VirtualClock
from ..engine import Engine
from ..registry import Registry
from ..store.memory import MemoryStore

__all__ = ["START"]

START = _dt.datetime(2024, 1, 1, tzinfo=_dt.timezone.utc)

EngineFactory = Callable[..., Engine]


def _handled_elsewhere(item: pytest.Function) -> bool:
    return any(item.get_closest_marker(m) is not None for m in ("asyncio", "anyio", "trio"))


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    func = pyfuncitem.obj
    if not inspect.iscoroutinefunction(func) or _handled_elsewhere(pyfuncitem):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    asyncio.run(func(**kwargs))
    return True


@pytest.fixture
def virtual_clock() -> VirtualClock:
    """A virtual clock at 2024-01-01 00:00 UTC: sleeps pass as soon as a result() waits on them."""
    return VirtualClock(START)


@pytest.fixture
def durable_registry() -> Registry:
    """An empty workflow registry of this test's own."""
    return Registry()


def _defaults(options: dict[str, Any], clock: VirtualClock, registry: Registry) -> dict[str, Any]:
    options.setdefault("clock", clock)
    options.setdefault("registry", registry)
    return options


@pytest.fixture
def memory_engine(virtual_clock: VirtualClock, durable_registry: Registry) -> EngineFactory:
    """`memory_engine(**options)` -> an un-opened Engine on this test's MemoryStore."""
    store = MemoryStore()

    def make(**options: Any) -> Engine:
        return Engine(options.pop("store", store), **_defaults(options, virtual_clock, durable_registry))

    return make


def sqlite_available() -> str | None:
    """None if the SQLite store imports, else why not."""
    try:
        from ..store.sqlite import SQLiteStore  # noqa: F401
    except Exception as exc:  # ImportError, or an error inside a half-written module
        return f"durable.store.sqlite is not available ({type(exc).__name__}: {exc})"
    return None


@pytest.fixture
def sqlite_engine(tmp_path: Path, virtual_clock: VirtualClock, durable_registry: Registry) -> EngineFactory:
    """`sqlite_engine(**options)` -> an un-opened Engine on `tmp_path/durable.db` (one file per test)."""
    reason = sqlite_available()
    if reason is not None:
        pytest.skip(reason)
    path = str(tmp_path / "durable.db")

    def make(**options: Any) -> Engine:
        return Engine(options.pop("store", path), **_defaults(options, virtual_clock, durable_registry))

    return make


@pytest.fixture(params=["memory", "sqlite"])
def durable_engine(request: pytest.FixtureRequest) -> EngineFactory:
    """Each test using it runs once per backend: an engine factory on memory, then on SQLite."""
    return request.getfixturevalue(f"{request.param}_engine")
