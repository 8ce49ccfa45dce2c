"""The Engine: opens a store, claims workflows, drives them, answers the public API."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import uuid as _uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from ..clock import Clock, SystemClock
from ..codecs.base import Codec, Serializer
from ..codecs.pipeline import DEFAULT_MAX_PAYLOAD, Pipeline
from ..errors import Cancelled, CodecError, WorkflowExistsError, WorkflowFailedError, WorkflowNotFoundError
from ..journal import Journal
from ..registry import Registry, Workflow, default_registry, make_workflow
from ..store import Store, open_store
from ..store.types import FINISHED, Claim, NewWorkflow, WorkflowRecord
from ..store.validate import check_id, check_name
from .committer import Committer
from .handle import Handle
from .recorder import DIGEST_KEY as _DIGEST_KEY
from .recorder import DIGEST_KEY_CONTEXT as _DIGEST_KEY_CONTEXT
from .recorder import Recorder
from .run import Run
from .worker import Worker, not_registered

__all__ = ["Engine"]

log = logging.getLogger("durable")

P = ParamSpec("P")
R = TypeVar("R")



class Engine(Worker):
    """Runs workflows durably on a store. Use as `async with Engine("app.db") as engine:`.

    `store` is a file path (SQLite), `"sqlite:///rel.db"`, `"sqlite:////abs.db"`,
    `"postgresql://..."`, `"memory:"`, or a Store instance. `codecs` run after
    the `serializer` (default JsonSerializer) on every payload, in order
    (compress first, then encrypt). Entering opens the store, starts the
    worker and resumes every unfinished workflow registered in `registry`.
    With `worker=False` it is a client only: it starts, signals, cancels and
    inspects workflows, and leaves running them to worker processes. With
    `warm=True` (the default) entering also replays waiting workflows in the
    background (up to `max_cached`), so a signal or timer later finds them
    in memory instead of replaying from the start.
    """

    def __init__(
        self,
        store: str | os.PathLike[str] | Store = "app.db",
        *,
        codecs: Sequence[Codec] = (),
        serializer: Serializer | None = None,
        registry: Registry | None = None,
        clock: Clock | None = None,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        max_recovery_attempts: int = 5,
        lease: float = 30.0,
        max_active: int = 10_000,
        max_cached: int = 10_000,
        activity_threads: int | None = None,
        worker_id: str | None = None,
        poll_interval: float = 1.0,
        worker: bool = True,
        warm: bool = True,
    ) -> None:
        if max_recovery_attempts < 0:
            raise ValueError("Engine(max_recovery_attempts=...) must not be negative")
        if lease <= 0:
            raise ValueError("Engine(lease=...) must be positive seconds")
        self.store: Store = open_store(store)
        self.pipeline = Pipeline(serializer, codecs, max_payload=max_payload)
        self.registry = registry if registry is not None else default_registry
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.max_recovery_attempts = max_recovery_attempts
        self.lease = float(lease)
        self.max_active = max_active
        self.max_cached = max_cached
        self.poll_interval = poll_interval
        self.runs_workflows = worker
        self.warm = warm
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{_uuid.uuid4().hex[:8]}"
        self.stats: Counter[str] = Counter()
        self._activity_threads = activity_threads
        self._recorder = Recorder(self.pipeline)
        self._store = self.store
        self._clock = self.clock
        self._committer = Committer(self.store, self.clock.now)
        self._executor: ThreadPoolExecutor | None = None
        self._active: dict[str, Run] = {}
        self._parked: OrderedDict[str, Run] = OrderedDict()
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._result_waiting = 0
        self.suspects = 0  # active runs suspected of killing a worker (see Run.suspect)
        self._retrying: dict[str, int] = {}  # workflow id -> lease token, after a store failure
        self._warm_blocked: dict[str, tuple[int, str]] = {}  # id -> (token, reason): replay failed at warm-up
        self._tasks: list[asyncio.Task[Any]] = []
        self._kick_event: asyncio.Event | None = None
        self._names: frozenset[str] = frozenset()
        self._state = "new"

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> Engine:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the store, start the worker, resume unfinished workflows (in the background)."""
        if self._state != "new":
            raise RuntimeError(f"this Engine is {self._state}; create a new Engine to open again")
        self._state = "opening"
        await self.store.open()
        try:
            await self._load_digest_key()
            self._executor = ThreadPoolExecutor(
                max_workers=self._activity_threads or min(32, (os.cpu_count() or 1) + 4),
                thread_name_prefix="durable-activity",
            )
            self._kick_event = asyncio.Event()
            self._committer.start()
            if self.runs_workflows:
                self._names = self.registry.names()
                now = self.clock.now()
                await self.store.register_worker(self.worker_id, self._names, now)
                # Blocked runs get another chance at every start (code may have been fixed).
                await self.store.unblock(None, self._names, now)
                self.clock.subscribe(self._kick)
                loop = asyncio.get_running_loop()
                self._tasks = [
                    loop.create_task(self._work(), name="durable-worker"),
                    loop.create_task(self._renew(), name="durable-lease-renewal"),
                ]
                if self.warm:
                    self._tasks.append(loop.create_task(self._warm_up(), name="durable-warm-up"))
            else:
                self._tasks = [asyncio.get_running_loop().create_task(self._watch(), name="durable-watch")]
        except BaseException:
            await self.store.close()
            self._state = "closed"
            raise
        self._state = "open"

    async def close(self) -> None:
        """Stop cleanly: in-flight work is either recorded or redone on the next start."""
        if self._state in ("closed", "new"):
            self._state = "closed"
            return
        self._state = "closing"
        for task in self._tasks:
            task.cancel()
        runs = [run.task for run in self._active.values() if run.task is not None]
        for run in list(self._active.values()):
            run.stop()
        await asyncio.gather(*self._tasks, *runs, return_exceptions=True)
        await self._committer.stop()
        try:
            if self.runs_workflows:
                await self.store.unregister_worker(self.worker_id)
        finally:
            await self.store.close()
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
            unsubscribe = getattr(self.clock, "unsubscribe", None)
            if unsubscribe is not None:
                unsubscribe(self._kick)
            for futures in self._waiters.values():
                for future in futures:
                    if not future.done():
                        future.set_result(None)
            self._state = "closed"

    def _require_open(self) -> None:
        if self._state != "open":
            raise RuntimeError(
                f"this Engine is {self._state}; use it inside `async with Engine(...) as engine:`"
            )

    async def _load_digest_key(self) -> None:
        stored = await self.store.get_meta(_DIGEST_KEY)
        if stored is None:
            if not self.pipeline.secret:
                return
            fresh = self.pipeline.dump(os.urandom(32), _DIGEST_KEY_CONTEXT)
            stored = await self.store.set_meta(_DIGEST_KEY, fresh)
        try:
            key = self.pipeline.load(stored, _DIGEST_KEY_CONTEXT)
        except CodecError as exc:
            # Not fatal: each run that needs a keyed digest is blocked naming this, the
            # others go on, and the next engine with the right key resumes the blocked.
            self.pipeline.digest_key_problem = str(exc)
            if self.pipeline.secret:
                log.warning("cannot read this store's digest key with the configured codecs (%s): "
                            "workflows that call activities will be blocked until the key is configured", exc)
            return
        self.pipeline.set_digest_key(key)

    # -- starting and controlling workflows ---------------------------------------------

    async def start(self, fn: Callable[P, Any], /, *args: Any, id: str | None = None, **kwargs: Any) -> Handle[Any]:
        """Start workflow `fn` with these arguments; idempotent by `id` (default: a new uuid).

        An `id` that exists returns a handle to the existing workflow and starts
        nothing; if it runs another workflow function, WorkflowExistsError.
        """
        self._require_open()
        wf = fn if isinstance(fn, Workflow) else make_workflow(fn, None)
        self._registry_add(wf)
        workflow_id = str(_uuid.uuid4()) if id is None else check_id(id)
        # The first run gets the arguments decoded from these bytes, as a replay would.
        payload, args, kwargs = self._recorder.start_args(workflow_id, 0, args, kwargs, name=wf.name)
        local = self.runs_workflows and len(self._active) < self.max_active
        new = NewWorkflow(workflow_id, wf.name, payload, self.clock.now(),
                          lease_owner=self.worker_id if local else None, lease_s=self.lease)
        created = await self.store.create(new)
        if not created.created:
            if created.record.name != wf.name:
                raise WorkflowExistsError(workflow_id, existing=created.record.name, requested=wf.name)
            return Handle(self, workflow_id, wf.name)
        self.stats["started"] += 1
        if created.token is not None:
            record = created.record
            claim = Claim(workflow_id, wf.name, 0, created.token, record.status, payload, None, 0,
                          False, record.attempts, parent_id=None)
            self._activate(claim, fresh=(args, kwargs))
        return Handle(self, workflow_id, wf.name)

    def handle(self, workflow_id: str) -> Handle[Any]:
        """A handle to an existing workflow by id (nothing is checked until it is used)."""
        return Handle(self, workflow_id, None)

    async def signal(self, workflow_id: str, name: str, payload: Any = None) -> None:
        """Send signal `name` with `payload`; durable once this returns."""
        self._require_open()
        check_name(name, "signal name")
        data = self._recorder.dump_signal(workflow_id, name, payload)
        await self.store.signal(workflow_id, name, data, self.clock.now())
        self._poke_local(workflow_id)

    async def cancel(self, workflow_id: str) -> None:
        """Throw `durable.Cancelled` into the workflow at its current wait (or its next one)."""
        self._require_open()
        if await self.store.cancel(workflow_id, self.clock.now()):
            self._poke_local(workflow_id)

    async def unblock(self, workflow_id: str) -> bool:
        """Retry a blocked workflow now (after fixing its cause); False if it was not blocked."""
        self._require_open()
        if await self.store.get(workflow_id) is None:
            raise WorkflowNotFoundError(workflow_id)
        count = await self.store.unblock([workflow_id], None, self.clock.now())
        found = self._warm_blocked.pop(workflow_id, None) is not None  # tried again at its next claim
        self._kick()
        return bool(count) or found

    # -- reading ---------------------------------------------------------------------------

    async def status(self, workflow_id: str) -> str:
        """"running", "waiting", "completed", "failed", "cancelled" or "blocked"."""
        record = await self._record(workflow_id)
        if record.status in ("running", "waiting") and await self._blocked_unwritten(record) is not None:
            return "blocked"
        return record.status

    async def describe(self, workflow_id: str) -> WorkflowRecord:
        """The stored record of a workflow (status, times, blocked reason, lease).

        Status and reason agree with `status`: a workflow no live worker has
        registered reads "blocked" with that reason, though nothing is written.
        """
        record = await self._record(workflow_id)
        if record.status in ("running", "waiting"):
            reason = await self._blocked_unwritten(record)
            if reason is not None:
                return dataclasses.replace(record, status="blocked", blocked_reason=reason)
        return record

    async def _blocked_unwritten(self, record: WorkflowRecord) -> str | None:
        """Why a running or waiting workflow is blocked though the store does not say so; None if it is not.

        Its function is registered nowhere, or its replay at warm-up failed and
        nobody has claimed it since.
        """
        if not self._runnable(record.name) and record.name not in await self.store.live_names():
            return not_registered(record.name)
        found = self._warm_blocked.get(record.id)
        if found is not None:
            if found[0] == record.token and record.lease_owner is None:
                return found[1]
            if record.lease_owner == self.worker_id and record.id in self._active:
                return found[1]  # claimed here to record that block: not written yet
            del self._warm_blocked[record.id]  # claimed since by another worker: it decides
        return None

    async def list(self, *, status: str | None = None, name: str | None = None, limit: int = 100,
                   after: str | None = None) -> list[WorkflowRecord]:
        """Stored workflows, ordered by id; page with `after`."""
        return await self.store.list(status=status, name=name, limit=limit, after=after)

    async def journal(self, workflow_id: str) -> Journal:
        """The current run's entries, decoded, in position order."""
        record = await self._record(workflow_id)
        rec = self._recorder
        entries = []
        async for chunk in self.store.load(workflow_id):
            entries.extend(rec.entry_for_people(workflow_id, record.run, e) for e in chunk)
        return Journal(entries, workflow_id=workflow_id, workflow=record.name, run=record.run,
                       digest_key=self.pipeline.digest_key)

    async def result(self, workflow_id: str, timeout: float | None = None) -> Any:
        """The workflow's return value, waiting for it.

        Raises WorkflowFailedError if it failed, durable.Cancelled if it was
        cancelled, TimeoutError if `timeout` seconds pass first.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        self._result_waiting += 1
        if getattr(self.clock, "skips_when_idle", False):
            self._kick()  # the worker may now jump the virtual clock to the next timer
        try:
            while True:
                record = await self._record(workflow_id)
                if record.status in FINISHED:
                    return self._outcome(record)
                # Woken when this engine finishes it, or when the store reports
                # work done elsewhere; the poll interval is only a backstop.
                future = loop.create_future()
                self._waiters.setdefault(workflow_id, []).append(future)
                wait = self.poll_interval if deadline is None else min(self.poll_interval, deadline - loop.time())
                if wait <= 0:
                    raise TimeoutError(f"workflow {workflow_id!r} did not finish within {timeout}s")
                await asyncio.wait((future,), timeout=wait)
        finally:
            self._result_waiting -= 1
            futures = self._waiters.get(workflow_id)
            if futures is not None:
                futures[:] = [f for f in futures if not f.done()]
                if not futures:
                    del self._waiters[workflow_id]

    def _outcome(self, record: WorkflowRecord) -> Any:
        rec = self._recorder
        if record.status == "completed":
            return rec.load_result(record.id, record.run, record.result)  # type: ignore[arg-type]
        failure = rec.load_failure(record.id, record.run, record.result)  # type: ignore[arg-type]
        cause = rec.exception(failure)
        if record.status == "cancelled":
            raise cause if isinstance(cause, Cancelled) else Cancelled(workflow_id=record.id)
        raise WorkflowFailedError(
            workflow_id=record.id, type=failure.get("type", ""), message=failure.get("message", ""), cause=cause
        )

    async def _record(self, workflow_id: str) -> WorkflowRecord:
        record = await self.store.get(workflow_id)
        if record is None:
            raise WorkflowNotFoundError(workflow_id)
        return record

    # -- the worker --------------------------------------------------------------------------

    def _runnable(self, name: str) -> bool:
        return name in self.registry

    def _registry_add(self, wf: Workflow[Any, Any]) -> None:
        self.registry.add(wf)
        if self.runs_workflows and wf.name not in self._names:
            self._names = self.registry.names()
            if self._state == "open":
                asyncio.get_running_loop().create_task(
                    self.store.register_worker(self.worker_id, self._names, self.clock.now())
                )

    def _poke_local(self, workflow_id: str) -> None:
        run = self._active.get(workflow_id)
        if run is not None:
            run.poked()

    def _finished(self, workflow_id: str) -> None:
        for future in self._waiters.pop(workflow_id, ()):
            if not future.done():
                future.set_result(None)
