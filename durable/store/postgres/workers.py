"""This store's workers: their rows, their advisory locks on the control connection, and the
watcher over the others (the liveness design is in liveness.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from . import sql
from .convert import utf8
from .liveness import Watcher

__all__ = ["Members"]

log = logging.getLogger("durable.store.postgres")

Listener = Callable[[Any, int, str, str], None]


class Members:
    """Registers and unregisters workers on the control connection, which holds their locks and
    LISTENs; reconnects it (registering the workers again, under new keys) if it was lost."""

    def __init__(self, connect: Callable[[], Awaitable[Any]], namespace: int, listener: Listener,
                 on_death: Callable[[], Awaitable[None]], now: Callable[[], float], watch: bool) -> None:
        self._connect = connect
        self._now = now
        self._namespace = namespace
        self._listener = listener
        self._on_death = on_death
        self._watch = watch
        self._lock = asyncio.Lock()
        self.control: Any = None
        self._keys: dict[str, int] = {}  # worker id -> its key (= its advisory lock) while registered
        self._names: dict[str, list[bytes]] = {}  # worker id -> names, to register again after a reconnect
        self.watcher: Watcher | None = None

    async def open(self) -> Any:
        """Connect the control connection and LISTEN; it is returned for the schema migration."""
        self.control = await self._connect()
        await self._listen()
        return self.control

    async def _listen(self) -> None:
        await self.control.add_listener("durable", self._listener)
        await self.control.add_listener("durable_workers", self._listener)

    async def close(self) -> None:
        if self.watcher is not None:
            await self.watcher.stop()
            self.watcher = None
        conn, self.control = self.control, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 5)  # closing drops every worker lock it held
            except (asyncio.TimeoutError, Exception):
                conn.terminate()
        self._keys.clear()

    def key(self, worker: str) -> int:
        key = self._keys.get(worker)
        if key is None:
            raise RuntimeError(f"worker {worker!r} is not registered with this store; call register_worker first")
        return key

    def get(self, worker: str) -> int | None:
        return self._keys.get(worker)

    def names(self) -> set[str]:
        return {name.decode() for names in self._names.values() for name in names}

    @property
    def lost(self) -> bool:
        return self.control is None or self.control.is_closed()

    async def register(self, worker: str, names: list[bytes], now: float) -> None:
        async with self._lock:
            await self._reconnect()
            await self._add(worker, names, now)
            self._names[worker] = names
        if self._watch and self.watcher is None:
            self.watcher = Watcher(self._connect, self._namespace, lambda: set(self._keys.values()),
                                   self._on_death)
            self.watcher.start()

    async def _add(self, worker: str, names: list[bytes], now: float) -> None:
        conn = self.control
        key = self._keys.get(worker)
        if key is not None:
            await conn.execute(sql.SET_NAMES, key, names)
            return
        import asyncpg

        key = await conn.fetchval(sql.NEXT_WORKER_KEY)
        await conn.execute(sql.LOCK, self._namespace, key)  # before the row exists: none can think it dead
        try:
            async with conn.transaction():
                old = await conn.fetchrow(sql.WORKER_BY_NAME, utf8(worker))
                if old is not None:
                    if not old["dead"] and not await conn.fetchval(sql.TRY_LOCK_XACT, self._namespace, old["key"]):
                        raise RuntimeError(f"worker id {worker!r} is already in use by a live engine")
                    # The same worker id, left behind by a process that died: its leases are free now.
                    await conn.execute(sql.RELEASE_DEAD, old["key"], now)
                    await conn.execute(sql.DROP_WORKER, old["key"])
                try:
                    await conn.execute(sql.ADD_WORKER, key, utf8(worker), names, os.getpid(), socket.gethostname(),
                                       now)
                except asyncpg.UniqueViolationError:  # another process registered this id a moment ago
                    raise RuntimeError(f"worker id {worker!r} is already in use by a live engine") from None
                await conn.execute(sql.NOTIFY_WORKERS)
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.execute(sql.UNLOCK, self._namespace, key)
            raise
        self._keys[worker] = key

    async def reconnect(self) -> None:
        if self.lost:
            async with self._lock:
                await self._reconnect()

    async def _reconnect(self) -> None:
        """Losing the control connection dropped the workers' locks: other engines take their
        workflows over and writes under the old leases are fenced. New keys, new leases from here."""
        if not self.lost:
            return
        log.warning("the PostgreSQL control connection was lost; registering this store's workers again")
        self._keys.clear()
        self.control = await self._connect()
        await self._listen()
        for worker, names in self._names.items():
            await self._add(worker, names, self._now())

    async def unregister(self, worker: str) -> None:
        self._names.pop(worker, None)
        key = self._keys.pop(worker, None)
        if key is None:
            return
        async with self._lock:
            conn = self.control
            if self.lost:
                return  # the lock went with the connection: others sweep the leases
            try:
                async with conn.transaction():
                    await conn.execute(sql.RELEASE_CLEAN, key)
                    await conn.execute(sql.DROP_WORKER, key)
                    await conn.execute(sql.NOTIFY_WORKERS)
            finally:
                await conn.execute(sql.UNLOCK, self._namespace, key)
