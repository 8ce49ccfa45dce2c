"""A thread that owns one SQLite connection and runs what the event loop hands it.

The writer runs every operation queued while it was busy in one
`BEGIN IMMEDIATE` transaction, each inside a savepoint so one failing
operation (a fenced write, an unknown id) does not undo the others: group
commit, one fsync for the lot. The reader runs queries one after another on
its own connection, which WAL lets proceed while the writer commits. Results
go back to the loop in one callback per batch.

Neither thread dies of a failure. SQLite itself rolls back the whole
transaction on some errors (a full disk, an I/O error, out of memory): then
the operation that met the error fails with it, and the others of the batch
run again once in a new transaction (one oversized write must not fail all
its neighbours); if that one is lost too, they all fail with its error and
the engine retries them later. A connection left unusable is reopened for
the next batch.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["DbThread", "TxnDict"]

log = logging.getLogger("durable.store.sqlite")

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")
Op = Callable[[sqlite3.Connection], Any]
Result = tuple["asyncio.Future[Any]", bool, Any]

_STOP = object()
_MAX_BATCH = 4096


class TxnDict(Generic[K, V]):
    """A cache of what the writer learned from the database (ids of rows).

    An entry added by an operation is dropped if the operation fails, and
    kept for later transactions only once its transaction commits: a row
    rolled back leaves its id free for the next insert, so remembering it
    would point at the wrong row.
    """

    __slots__ = ("_by_op", "_known", "_new")

    def __init__(self) -> None:
        self._known: dict[K, V] = {}  # committed
        self._new: dict[K, V] = {}  # added in the open transaction
        self._by_op: list[K] = []  # of those, the keys the running operation added

    def get(self, key: K) -> V | None:
        found = self._known.get(key)
        return self._new.get(key) if found is None else found

    def put(self, key: K, value: V) -> None:
        self._new[key] = value
        self._by_op.append(key)

    def op_ended(self, ok: bool) -> None:
        if not ok:
            for key in self._by_op:
                self._new.pop(key, None)
        self._by_op.clear()

    def txn_ended(self, committed: bool) -> None:
        if committed:
            self._known.update(self._new)
        self._new.clear()
        self._by_op.clear()


class DbThread:
    """One connection in one thread. `on_op_end(ok)` is called in the writer
    after each operation (False: it was rolled back), `on_txn_end(committed)`
    after each transaction."""

    def __init__(self, name: str, connect: Callable[[], sqlite3.Connection], *, writer: bool,
                 on_op_end: Callable[[bool], None] | None = None,
                 on_txn_end: Callable[[bool], None] | None = None) -> None:
        self._name = name
        self._connect = connect
        self._writer = writer
        self._on_op_end = on_op_end or _ignore
        self._on_txn_end = on_txn_end or _ignore
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: sqlite3.Connection | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._closing = False
        self._closing_lock = threading.Lock()
        self.batches = 0  # transactions (writer) or batches of reads (reader)
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
        with self._closing_lock:  # nothing goes in behind _STOP, where nobody would run it
            if self._closing:
                raise RuntimeError("the SQLite store is closed")
            self._queue.put((op, future))
        return future

    def stop(self) -> None:
        """Run what is queued, then stop the thread and close its connection."""
        if self._thread is None:
            return
        with self._closing_lock:
            self._closing = True
            self._queue.put(_STOP)
        self._thread.join()
        self._thread = None

    # -- the thread -------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._conn = self._connect()
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
                self._run(batch)
                if stop:
                    return
        finally:
            if self._conn is not None:
                try:
                    self._conn.close()
                except sqlite3.Error:
                    pass

    def _run(self, batch: list[Any]) -> None:
        try:
            results = self._transaction(batch) if self._writer else self._each(batch)
        except BaseException as exc:  # never leave a caller waiting, whatever went wrong
            log.exception("the SQLite %s thread failed a batch (this is a bug in durable)",
                          "writer" if self._writer else "reader")
            results = [(future, False, exc) for _, future in batch]
            if self._writer:
                try:
                    self._end_transaction()
                    self._on_txn_end(False)
                except BaseException:  # noqa: BLE001 - already reported
                    pass
        self.batches += 1
        self.ops += len(batch)
        try:
            self._loop.call_soon_threadsafe(_resolve, results)  # type: ignore[union-attr]
        except RuntimeError:  # the event loop is closed: nobody waits for these any more
            pass

    def _connection(self) -> sqlite3.Connection:
        """The connection, reopened if a failure left it unusable (raises if that fails: next batch tries again)."""
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _end_transaction(self) -> None:
        """Roll back whatever transaction a failure left open; a connection that cannot is reopened later."""
        conn = self._conn
        if conn is None or not conn.in_transaction:
            return
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        if conn.in_transaction:
            self._conn = None
            try:
                conn.close()
            except sqlite3.Error:
                pass

    def _each(self, batch: list[Any]) -> list[Result]:
        results = []
        for op, future in batch:
            try:
                results.append((future, True, op(self._connection())))
            except BaseException as exc:
                results.append((future, False, exc))
            # A read left inside its transaction would pin an old snapshot (and the WAL) forever.
            if self._conn is not None and self._conn.in_transaction:
                self._end_transaction()
        return results

    def _transaction(self, batch: list[Any], again: bool = True) -> list[Result]:
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            self._end_transaction()
            return [(future, False, exc) for _, future in batch]
        results: list[Result] = []
        execute = conn.execute
        for op, future in batch:
            try:
                execute("SAVEPOINT op")
                value = op(conn)
                execute("RELEASE op")
            except BaseException as exc:
                self._on_op_end(False)
                if not self._undo_op(conn):
                    # SQLite rolled back the whole transaction (SQLITE_FULL, IOERR, NOMEM...),
                    # or it cannot be trusted: nothing of this batch is recorded.
                    self._end_transaction()
                    self._on_txn_end(False)
                    rest = [item for item in batch if item[1] is not future]
                    if again and rest:
                        return [(future, False, exc), *self._transaction(rest, again=False)]
                    failed = {id(f): error for f, ok, error in results if not ok}  # keep their own errors
                    return [(f, False, failed.get(id(f), exc)) for _, f in batch]
                results.append((future, False, exc))
            else:
                self._on_op_end(True)
                results.append((future, True, value))
        try:
            execute("COMMIT")
        except BaseException as exc:
            self._end_transaction()
            self._on_txn_end(False)
            return [(future, False, exc) for _, future in batch]
        try:
            self._on_txn_end(True)
        except Exception:  # the commit stands: report it as done
            log.exception("after a SQLite commit (this is a bug in durable)")
        return results

    @staticmethod
    def _undo_op(conn: sqlite3.Connection) -> bool:
        """Roll back the failed operation's savepoint; False if the transaction is gone with it."""
        if not conn.in_transaction:
            return False
        try:
            conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
        except sqlite3.Error:
            return False
        return conn.in_transaction


def _ignore(_: bool) -> None:
    pass


def _resolve(results: list[Result]) -> None:
    for future, ok, value in results:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
