"""Which workers are alive: an exclusive lock on a file, held while the process lives.

The kernel releases a `flock` when its process dies, however it dies
(kill -9 included), so a new engine can take over a dead worker's
workflows at once instead of waiting for a lease to run out. Locks belong
to open file descriptions, so two engines in one process exclude each other
too. The same directory holds the notify file that engines touch when they
create work for each other.

A child made by `fork()` (multiprocessing's default on Linux) inherits the
lock's file descriptor, and with it the lock: the worker would look alive
until the child exits too. So the child closes its copies at once. That
leaves the parent's lock alone (the lock goes only when every descriptor of
it is closed), and the child cannot use the parent's store anyway.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
import weakref

__all__ = ["WorkerLocks"]

# Every descriptor of a lock file is opened and closed under this lock, and
# fork() waits for it: a child never inherits one that is not in `_held`.
_fork_lock = threading.Lock()
_instances: weakref.WeakSet[WorkerLocks] = weakref.WeakSet()


def _before_fork() -> None:
    _fork_lock.acquire()


def _after_fork_in_parent() -> None:
    _fork_lock.release()


def _after_fork_in_child() -> None:
    for locks in list(_instances):
        for fd in locks._held.values():
            try:
                os.close(fd)  # the parent's descriptor still holds the lock
            except OSError:
                pass
        locks._held.clear()
    _fork_lock.release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


class WorkerLocks:
    def __init__(self, db_path: str) -> None:
        self.directory = f"{db_path}-workers"
        self.notify_path = os.path.join(self.directory, "notify")
        self._held: dict[str, int] = {}
        _instances.add(self)

    def prepare(self) -> None:
        os.makedirs(self.directory, exist_ok=True)
        if not os.path.exists(self.notify_path):
            with open(self.notify_path, "ab"):
                pass

    @staticmethod
    def file_name(worker: str) -> str:
        return hashlib.blake2b(worker.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest() + ".lock"

    def acquire(self, worker: str) -> str:
        """Lock this worker's file for as long as the process lives (if not already); its name."""
        name = self.file_name(worker)
        with _fork_lock:
            if worker in self._held:
                return name
            fd = os.open(os.path.join(self.directory, name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RuntimeError(f"worker id {worker!r} is already in use by a live engine") from None
            self._held[worker] = fd
        return name

    def release(self, worker: str) -> None:
        with _fork_lock:
            fd = self._held.pop(worker, None)
            if fd is None:
                return
            try:
                os.unlink(os.path.join(self.directory, self.file_name(worker)))
            except FileNotFoundError:
                pass
            os.close(fd)  # closing drops the lock

    def alive(self, worker: str, lock_name: str) -> bool:
        """True if some process still holds `worker`'s lock."""
        if worker in self._held:
            return True
        path = os.path.join(self.directory, lock_name)
        with _fork_lock:  # a child must not inherit this probe while it holds the lock
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                return False
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
                return False
            finally:
                os.close(fd)

    def forget(self, lock_name: str) -> None:
        try:
            os.unlink(os.path.join(self.directory, lock_name))
        except FileNotFoundError:
            pass

    def notify(self) -> None:
        """Tell engines in other processes that there may be new work."""
        # Explicit nanoseconds: the kernel's own timestamps are coarse (a few
        # ms), and two touches within one tick would look like none.
        stamp = time.time_ns()
        try:
            os.utime(self.notify_path, ns=(stamp, stamp))
        except FileNotFoundError:
            self.prepare()

    def notify_stamp(self) -> int:
        try:
            return os.stat(self.notify_path).st_mtime_ns
        except FileNotFoundError:
            return 0
