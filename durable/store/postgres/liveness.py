"""Which workers are alive: a session advisory lock, held on a connection while the process lives.

Each registered worker gets a key from the `worker_keys` sequence and takes
`pg_advisory_lock(namespace, key)` on the store's *control* connection
before its row appears in `workers`. The server drops session locks when
the connection ends, however the process died (kill -9 closes the socket;
the backend notices at once), so "nobody holds the lock" means "dead".
Claims check it with `pg_try_advisory_xact_lock` (the `sweep` function) and
release the dead worker's leases on the spot: no lease has to run out.

To take over *at once* rather than at the next claim, every store that has
workers runs a `Watcher`: a connection blocked in `pg_advisory_lock` on one
other live worker's key. The server grants it the moment that worker's
connection ends; the watcher lets go and NOTIFYs, and every engine (its own
too) sweeps and claims at once. Watchers form a ring over stores ordered by their lowest
worker key (each watches the nearest lower key, the lowest wraps around to
the highest), so every live store is watched by one other. Membership
changes arrive by NOTIFY and cancel the lock wait, so the watcher picks its
target again; the wait also times out every minute, in case a notification
was missed. Claims sweep too (every `sweep_interval` at most), so even
without a watcher a death is noticed at the engine's next poll.

The lock namespace (first key) is derived from the schema name, so two
durable schemas in one database never confuse each other's workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..wait import wait_event

__all__ = ["Watcher", "watch_target"]

log = logging.getLogger("durable.store.postgres")

REVIEW_EVERY = 60.0  # seconds: the longest a lock wait lasts before the ring is looked at again


def watch_target(mine: set[int], live: list[int]) -> int | None:
    """The worker key this store watches: the nearest lower key than its own, else the highest."""
    others = sorted(k for k in live if k not in mine)
    if not mine or not others:
        return None
    lowest = min(mine)
    below = [k for k in others if k < lowest]
    return below[-1] if below else others[-1]


class Watcher:
    """Waits on one other worker's lock; when the server grants it, that worker has died."""

    def __init__(self, connect: Callable[[], Awaitable[Any]], namespace: int, mine: Callable[[], set[int]],
                 on_death: Callable[[], Awaitable[None]]) -> None:
        self._connect = connect
        self._namespace = namespace
        self._mine = mine
        self._on_death = on_death
        self._changed = asyncio.Event()
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="durable-pg-watcher")

    def changed(self) -> None:
        """Workers came or went: pick the target again."""
        self._changed.set()

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()  # ends a lock wait at once; nothing on this connection needs a clean close
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self) -> None:
        import asyncpg

        try:
            await self._loop(asyncpg)
        finally:
            if self._conn is not None:  # connected just as stop() came: do not leave it open
                self._conn.terminate()
                self._conn = None

    async def _loop(self, asyncpg: Any) -> None:
        delay = 0.1
        while not self._stopping:
            try:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await self._connect()
                    await self._conn.execute(f"SET lock_timeout = '{int(REVIEW_EVERY)}s'")
                await self._watch_once(asyncpg)
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server went away, a failover: try again, a little later each time
                if self._stopping:
                    return
                log.warning("watching other durable workers failed (%s); retrying in %.1fs", exc, delay)
                if self._conn is not None:
                    self._conn.terminate()
                    self._conn = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _watch_once(self, asyncpg: Any) -> None:
        conn = self._conn
        self._changed.clear()
        live = [row[0] for row in await conn.fetch("SELECT key FROM workers WHERE NOT dead")]
        target = watch_target(self._mine(), live)
        if target is None:
            await wait_event(self._changed, REVIEW_EVERY)
            return
        lock = asyncio.ensure_future(conn.execute("SELECT pg_advisory_lock($1, $2)", self._namespace, target))
        changed = asyncio.ensure_future(self._changed.wait())
        try:
            await asyncio.wait((lock, changed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            if not lock.done():
                lock.cancel()  # asyncpg sends the server a cancel request; the connection stays usable
        # Wait for the lock request to end without taking on its exception: a cancellation of this
        # task (stop) must propagate, not be mistaken for the cancelled lock wait.
        await asyncio.wait((lock,))
        failure = None if lock.cancelled() else lock.exception()
        if lock.cancelled() or isinstance(failure, asyncpg.QueryCanceledError):
            # Workers came or went. If the lock was granted just before the cancel landed, the
            # target died in that instant: handle it like any other death.
            if not await conn.fetchval(_HOLDS, self._namespace & 0xFFFFFFFF, target):
                return
        elif isinstance(failure, asyncpg.LockNotAvailableError):
            return  # alive after REVIEW_EVERY: look at the ring again (a missed notification costs no more)
        elif failure is not None:
            raise failure
        # Granted: the worker died (or unregistered). Let go before sweeping, or the sweep
        # would see the lock held and take the dead worker for a live one.
        await conn.execute("SELECT pg_advisory_unlock($1, $2)", self._namespace, target)
        await self._on_death()


# pg_locks shows a two-key advisory lock as (classid, objid) = the keys read as unsigned (oid)
_HOLDS = ("SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
          "AND granted AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 2")
