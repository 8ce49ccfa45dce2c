"""Helpers for the black-box API tests: polling with a deadline, no sleeps."""

from __future__ import annotations

import asyncio
import inspect
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

import durable

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A hung engine must fail the test quickly rather than stall the run.
    for item in items:
        if _HERE in Path(str(item.fspath)).parents and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(20))


async def wait_until(
    predicate: Callable[[], Any | Awaitable[Any]], timeout: float = 2.0, what: str = "condition"
) -> Any:
    """Poll `predicate` (sync or async) until it is truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.002)


async def wait_status(engine: durable.Engine, workflow_id: str, status: str, timeout: float = 2.0) -> None:
    """Wait until `engine.status(workflow_id)` reads `status` (the id may appear meanwhile)."""
    seen: list[str] = []

    async def check() -> bool:
        try:
            seen.append(await engine.status(workflow_id))
        except durable.WorkflowNotFoundError:  # a child may not exist yet
            seen.append("<not found>")
        return seen[-1] == status

    try:
        await wait_until(check, timeout, f"status {status!r}")
    except AssertionError:
        raise AssertionError(
            f"workflow {workflow_id!r}: expected status {status!r}, last saw {seen[-1]!r}"
        ) from None


_store = {"kind": "memory", "dir": None}


@pytest.fixture(autouse=True, params=["memory", "sqlite"])
def api_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every API test runs twice: on the in-memory store and on a SQLite file."""
    _store["kind"], _store["dir"] = request.param, tmp_path
    return request.param


def memory_engine(registry: durable.Registry, **kwargs: Any) -> durable.Engine:
    """An engine on this run's store: memory, or a fresh SQLite file per engine."""
    if _store["kind"] == "sqlite":
        directory = Path(_store["dir"])  # type: ignore[arg-type]
        path = directory / f"api-{len(list(directory.glob('api-*.db')))}.db"
        return durable.Engine(str(path), registry=registry, **kwargs)
    return durable.Engine("memory:", registry=registry, **kwargs)


def entry_key(entry: Any) -> tuple:
    """A comparable view of a journal Entry (exceptions compare by type and args)."""
    value = entry.value
    if isinstance(value, BaseException):
        value = ("exception", type(value).__qualname__, repr(value.args))
    return (entry.position, entry.kind, entry.name, repr(value))


def journal_keys(entries: list[Any]) -> list[tuple]:
    return [entry_key(e) for e in entries]


def shared_store() -> Any:
    """A store that several engines of one test open in turn: one MemoryStore, or one SQLite file."""
    if _store["kind"] == "sqlite":
        directory = Path(_store["dir"])  # type: ignore[arg-type]
        return str(directory / f"shared-{len(list(directory.glob('shared-*.db')))}.db")
    return durable.store.MemoryStore()
