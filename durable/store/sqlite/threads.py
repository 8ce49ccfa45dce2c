"""A thread that owns one SQLite connection and runs what the event loop hands it.

The writer runs every operation queued while it was busy in one
`BEGIN IMMEDIATE` transaction, each inside a savepoint so one failing
operation (a fenced write, an unknown id) does not undo the others: group
commit, one fsync for the lot. The reader runs queries one after another on
its own connection, which WAL lets proceed while the writer commits. Results
go back to the loop in one callback per batch.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["DbThread"]

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]

_STOP = object()
_MAX_BATCH = 4096


class DbThread:
    def __init__(self, name: str, connect: Callable[[], sqlite3.Connection], *, writer: bool,
                 after_commit: Callable[[], None] | None = None) -> None:
        self._name = name
        self._connect = connect
        self._writer = writer
        self._after_commit = after_commit
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self.batches = 0
        self.ops = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._main, name=self._name, daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            raise self._startup_error

    def submit(self, op: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        if self._loop is None:
            raise RuntimeError("the SQLite store is not open; use it inside `async with Engine(...)`")
        future: asyncio.Future[T] = self._loop.create_future()
        self._queue.put((op, future))
        return future

    def stop(self) -> None:
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join()
        self._thread = None

    # -- the thread -------------------------------------------------------------

    def _main(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        get = self._queue.get
        get_nowait = self._queue.get_nowait
        try:
            while True:
                item = get()
                if item is _STOP:
                    return
                batch = [item]
                stop = False
                while len(batch) < _MAX_BATCH:
                    try:
                        item = get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stop = True
                        break
                    batch.append(item)
                results = self._transaction(conn, batch) if self._writer else self._each(conn, batch)
                self.batches += 1
                self.ops += len(batch)
                self._loop.call_soon_threadsafe(_resolve, results)  # type: ignore[union-attr]
                if stop:
                    return
        finally:
            conn.close()

    @staticmethod
    def _each(conn: sqlite3.Connection, batch: list[Any]) -> list[tuple[asyncio.Future[Any], bool, Any]]:
        results = []
        for op, future in batch:
            try:
                results.append((future, True, op(conn)))
            except BaseException as exc:
                results.append((future, False, exc))
        return results

    def _transaction(self, conn: sqlite3.Connection, batch: list[Any]) -> list[tuple[asyncio.Future[Any], bool, Any]]:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            return [(future, False, exc) for _, future in batch]
        results = []
        execute = conn.execute
        for op, future in batch:
            execute("SAVEPOINT op")
            try:
                value = op(conn)
            except BaseException as exc:
                execute("ROLLBACK TO op")
                execute("RELEASE op")
                results.append((future, False, exc))
            else:
                execute("RELEASE op")
                results.append((future, True, value))
        try:
            execute("COMMIT")
        except BaseException as exc:
            try:
                execute("ROLLBACK")
            except sqlite3.Error:
                pass
            return [(future, False, exc) for _, future in batch]
        if self._after_commit is not None:
            self._after_commit()
        return results


def _resolve(results: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in results:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
