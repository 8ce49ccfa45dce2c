"""The pytest plugin durable registers (entry point `pytest11: durable`).

It runs `async def` tests in a fresh event loop each, so a workflow test
needs no other plugin. If pytest-asyncio or anyio already handles a test,
this plugin leaves it alone.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest


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
