"""Group commit: every write submitted while a commit is in flight joins the next one.

No timer and no batch size to tune: with one workflow each commit carries
one write, and with a thousand the writes that pile up during one fsync all
share the next.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..store.base import Store
from ..store.types import Write

__all__ = ["Committer"]


class Committer:
    def __init__(self, store: Store, now: Callable[[], float], max_batch: int = 2000) -> None:
        self._store = store
        self._sync = getattr(store, "commit_sync", None)
        self._now = now
        self._max_batch = max_batch
        self._queue: list[tuple[Write, asyncio.Future[str]]] = []
        self._wakeup: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.commits = 0
        self.writes = 0

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="durable-committer")

    @property
    def sync(self) -> bool:
        """True if the store commits in-process at once (see `commit_now`)."""
        return self._sync is not None

    def commit_now(self, write: Write) -> str:
        """Commit on an in-process store without awaiting: batching would only add latency."""
        assert self._sync is not None
        self.commits += 1
        self.writes += 1
        return self._sync((write,), self._now())[0]

    async def submit(self, write: Write) -> str:
        """Commit `write` with whatever else is waiting; its outcome (OK, FENCED, CONFLICT)."""
        if self._sync is not None:
            return self.commit_now(write)
        return await self.enqueue(write)

    def enqueue(self, write: Write) -> asyncio.Future[str]:
        """Queue `write` for the next group commit; the future of its outcome."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._push(write, future)
        return future

    def then(self, write: Write, done: Callable[[str | None, BaseException | None], None]) -> None:
        """Queue `write`; call `done(outcome, None)` once committed, or `done(None, error)`.

        The hot path: no future per write, and no event-loop round between the
        commit and what it unblocks. `done` must not raise.
        """
        self._push(write, done)

    def _push(self, write: Write, waiter: Any) -> None:
        self._queue.append((write, waiter))
        if len(self._queue) == 1 and self._wakeup is not None:
            self._idle.clear()  # type: ignore[union-attr]
            self._wakeup.set()

    async def _run(self) -> None:
        assert self._wakeup is not None and self._idle is not None
        while True:
            if not self._queue:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            try:
                outcomes = await self._store.commit([w for w, _ in batch], self._now())
            except asyncio.CancelledError:
                for _, waiter in batch:
                    _settle(waiter, None, None, cancelled=True)
                raise
            except Exception as exc:
                if isinstance(exc, (ValueError, TypeError)) and len(batch) > 1:
                    # One write the store refuses (a name over its limit) must not fail
                    # the others it shares a group with: commit them one by one.
                    await self._one_by_one(batch)
                    continue
                for _, waiter in batch:
                    _settle(waiter, None, exc)
                continue
            self.commits += 1
            self.writes += len(batch)
            for (_, waiter), outcome in zip(batch, outcomes):
                _settle(waiter, outcome, None)

    async def _one_by_one(self, batch: list[tuple[Write, Any]]) -> None:
        for write, waiter in batch:
            try:
                [outcome] = await self._store.commit([write], self._now())
            except Exception as exc:
                _settle(waiter, None, exc)
            else:
                self.commits += 1
                self.writes += 1
                _settle(waiter, outcome, None)

    async def stop(self) -> None:
        """Commit what is queued, then stop."""
        if self._queue and self._task is not None and not self._task.done() and self._idle is not None:
            await self._idle.wait()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for _, waiter in self._queue:
            _settle(waiter, None, None, cancelled=True)
        self._queue.clear()


def _settle(waiter: Any, outcome: str | None, error: BaseException | None, cancelled: bool = False) -> None:
    if isinstance(waiter, asyncio.Future):
        if waiter.done():
            return
        if cancelled:
            waiter.cancel()
        elif error is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(outcome)  # type: ignore[arg-type]
    elif not cancelled:  # a cancelled commit means the engine is closing: nothing to resume
        waiter(outcome, error)
