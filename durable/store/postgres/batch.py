"""Group reads and creates: concurrent requests by key share one statement.

The engine asks for one workflow at a time (a run reads its inbox, a
`result()` polls its record, `start()` creates one row), but a thousand
runs ask at once. Each request on its own is a round trip and, for a
create, a transaction with its own WAL flush; together they queue for the
pool. Like the committer for writes: while one batch is in flight, new
requests wait and then go together in the next. A lone request goes at
once (the next turn of the event loop), so nothing waits on a timer.

A request always goes in a batch that starts after it was made, so it sees
every commit that finished before it was made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from itertools import islice
from typing import Generic, TypeVar

__all__ = ["Batcher"]

K = TypeVar("K")
I = TypeVar("I")  # noqa: E741
V = TypeVar("V")


class Batcher(Generic[K, I, V]):
    """`await batcher(key, item)`: `run({key: item, ...})` answers many at once, `{key: value}`.

    Requests for a key already waiting share its answer, or with `first_only`
    only the first gets it and the others get None (for creates: one of two
    concurrent creates of an id creates it).
    """

    def __init__(self, run: Callable[[dict[K, I]], Awaitable[dict[K, V]]], *, limit: int = 1000,
                 first_only: bool = False) -> None:
        self._run = run
        self._limit = limit
        self._first_only = first_only
        self._waiting: dict[K, tuple[I, list[asyncio.Future[V | None]]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, key: K, item: I) -> V | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V | None] = loop.create_future()
        waiting = self._waiting.get(key)
        if waiting is None:
            self._waiting[key] = (item, [future])
        else:
            waiting[1].append(future)
        if self._task is None:
            self._task = loop.create_task(self._drain(), name="durable-pg-batch")
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                keys = list(islice(self._waiting, self._limit))
                batch = {key: self._waiting.pop(key) for key in keys}
                try:
                    found = await self._run({key: item for key, (item, _) in batch.items()})
                except asyncio.CancelledError:
                    self._cancel(futures for _, futures in batch.values())
                    raise
                except Exception as exc:
                    for _, futures in batch.values():
                        for future in futures:
                            if not future.done():
                                future.set_exception(exc)
                    continue
                for key, (_, futures) in batch.items():
                    value = found.get(key)
                    for index, future in enumerate(futures):
                        if not future.done():
                            future.set_result(value if index == 0 or not self._first_only else None)
        finally:
            self._task = None

    def close(self) -> None:
        """Cancel the batch in flight and every waiting request (the store is closing)."""
        if self._task is not None:
            self._task.cancel()
        self._cancel(futures for _, futures in self._waiting.values())
        self._waiting.clear()

    @staticmethod
    def _cancel(groups: Iterable[list[asyncio.Future[V | None]]]) -> None:
        for futures in groups:
            for future in futures:
                future.cancel()
