"""One workflow run in memory: its driver, what it waits on, and the loop that advances it.

A run is *active* while this worker holds its lease: it reacts to outcomes
(activity results, timers, signals), commits what they recorded, and only
then starts what depends on them (commit before side effect). When nothing
is left in flight it *parks*: its wake-up time goes to the store, the lease
is released, and the live generator stays cached for the next claim.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ..driver import CANCELLED, CONTINUED, DONE, FAILED, WAITING, Driver, Leaf
from ..errors import (
    CodecError,
    NondeterminismError,
    SerializationError,
)
from ..registry import Workflow
from ..store.types import FINISHED, OK, Claim, NewWorkflow, Signal, Write
from .waits import Waits

if TYPE_CHECKING:
    from .core import Engine

__all__ = ["BLOCKS", "Run", "block_reason"]

log = logging.getLogger("durable")

_BLOCKING = (NondeterminismError, CodecError, SerializationError)


class Blocked(Exception):
    """The run cannot go on here until its cause is fixed; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# What a replay or step may raise that blocks the run (anything else from an
# async step is a store failure: retried, never blocked).
BLOCKS = (Blocked, AssertionError, *_BLOCKING)


def block_reason(exc: BaseException) -> str:
    """The reason stored with a run blocked by `exc`."""
    if isinstance(exc, Blocked):
        return exc.reason
    if isinstance(exc, _BLOCKING):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc} (this is a bug in durable)"


class Run(Waits):
    def __init__(self, engine: Engine, claim: Claim, wf: Workflow[Any, Any], parent_id: str | None) -> None:
        self.engine = engine
        self.id = claim.id
        self.name = claim.name
        self.wf = wf
        self.run = claim.run
        self.token = claim.token
        self.args_payload = claim.args
        self.pending_blob = claim.pending
        self.committed_pending = claim.pending
        self.parent_id = parent_id
        self.poke = claim.poke
        self.cancel_requested = claim.cancel_requested
        self.driver: Driver | None = None
        self.deadlines: dict[int, float] = {}  # sleeps, receive timeouts, retry backoffs
        self.attempts: dict[int, list[Any]] = {}  # position -> [attempts made, last error record]
        self.tasks: dict[int, tuple[int, asyncio.Future[Any]]] = {}  # position -> (attempt, future)
        self.timers: dict[int, Any] = {}
        self.children: dict[int, str] = {}
        self.child_outcomes: dict[int, tuple[bool, Any]] = {}
        self.inbox: list[Signal] | None = None
        self.events: list[tuple[Any, ...]] = []
        self.busy = False  # an async step (replay, inbox read, commit) is in flight
        self.advancing = False  # _advance is on the stack: events just queue
        self.done = False  # exited: parked, finished, lost or blocked
        self.stale = True  # inbox and children need reading
        # What the next write carries
        self.to_start: list[Leaf] = []
        self.consumed: list[int] = []
        self.creates: list[NewWorkflow] = []
        self.cancels: list[str] = []
        self.clear_cancel = False
        self.pending_dirty = False
        # Nothing is written on a claim alone: a worker that dies before its
        # first write leaves the count of claims without progress growing.
        self.dirty = False
        self.parked = False
        self.task: asyncio.Task[None] | None = None
        # What the store last heard of this run under this lease: a write that
        # changes none of it only appends entries (Write.touch False).
        self.touched = False
        self.written = ("", -1)
        # Its last two claims ended without a write (two crashes in a row): maybe it kills workers.
        self.suspect = claim.attempts > 2

    # -- events from the outside -------------------------------------------------

    def notify(self, event: tuple[Any, ...]) -> None:
        """An outcome or a poke arrived: handle it now, or after the async step in flight."""
        self.events.append(event)
        if not self.busy and not self.advancing and not self.done:
            self._advance()

    def poked(self) -> None:
        self.notify(("poke",))

    def notify_outcome(self, position: int, attempt: int, ok: bool, value: Any) -> None:
        """An activity attempt ended (called on the loop)."""
        self.notify(("activity", position, attempt, ok, value))

    def adopt(self, claim: Claim) -> None:
        """Take a fresh claim on this cached run."""
        self.token = claim.token
        self.poke = max(self.poke, claim.poke)
        self.cancel_requested = self.cancel_requested or claim.cancel_requested
        self.stale = True
        self.parked = False
        self.done = False
        self.touched = False
        self.suspect = claim.attempts > 2

    # -- the loop --------------------------------------------------------------------
    # Callbacks, not a task per run: an activity's outcome is handled in the
    # callback that reports it, and a commit's in the callback that resolves
    # it, so a step costs no task switch of its own. Only the few async steps
    # (replay, reading the inbox, recording a block) run as short tasks, with
    # `busy` set so events wait for them.

    def begin(self) -> None:
        """Start advancing after a claim, replaying first if there is no live generator."""
        if self.driver is None:
            self._spawn(self._replay)
        else:
            self._advance()

    def start_fresh(self, args: tuple, kwargs: dict) -> None:
        """A workflow this engine has just created: its journal and inbox are empty.

        A signal sent since its creation pokes it like any other, so skipping
        the reads loses nothing.
        """
        driver = self._new_driver(args, kwargs)
        assert driver is not None
        driver.feed((), last=True)
        driver.start()
        self.inbox = []
        self.stale = False

    def stop(self) -> None:
        """The engine is closing: stop everything in flight; what is not recorded is redone later."""
        self.done = True
        if self.task is not None:
            self.task.cancel()
        self._stop_all()

    def _spawn(self, step: Any, *args: Any) -> None:
        """Run `step(*args)` (a coroutine function) as a task; events wait until it ends."""
        self.busy = True
        self.task = asyncio.get_running_loop().create_task(self._async_step(step, args),
                                                           name=f"durable-run:{self.id[:64]}")

    async def _async_step(self, step: Any, args: tuple) -> None:
        try:
            await step(*args)
        except asyncio.CancelledError:
            self.busy = False
            raise
        except BaseException as exc:  # noqa: BLE001 - recorded as a block, or re-raised below
            self.busy = False
            self.task = None
            if not isinstance(exc, Exception):
                raise
            if isinstance(exc, BLOCKS):
                self._fail(exc)
            else:
                self._store_trouble(exc)  # the store failed a read: try again later, block nothing
            return
        self.busy = False
        self.task = None
        self._advance()

    def _advance(self) -> None:
        if self.done or self.busy or self.advancing:
            return
        self.advancing = True
        try:
            self._advance_loop()
        except Exception as exc:
            self._fail(exc)
        finally:
            self.advancing = False

    def _advance_loop(self) -> None:
        driver = self.driver
        assert driver is not None
        committer = self.engine._committer
        while not self.done:
            if self.stale:
                self._spawn(self._refresh)
                return
            self._react()
            if self.stale and not driver.finished:
                continue  # a poke arrived: read the inbox before deciding anything
            final = driver.finished
            parking = not final and not self.tasks and not self.to_start and not self.events
            if self.dirty or self.pending_dirty or driver.outbox or final or parking:
                write = self._write(final, parking)
                if committer.sync:
                    try:
                        outcome = committer.commit_now(write)
                    except Exception as exc:
                        self._commit_failed(exc)
                        return
                    if not self._after_commit(write, final, parking, outcome):
                        return
                    driver = self.driver
                    assert driver is not None
                    if self.events or self.stale or driver.fresh or driver.outbox or driver.state != WAITING:
                        continue  # something new (or the next run after continue_as_new)
                    return
                self.busy = True
                committer.then(write, lambda outcome, error: self._on_commit(write, final, parking, outcome, error))
                return
            if self.to_start:
                self._start_all()  # nothing new to make durable first
            if not self.events:
                return  # idle until the next outcome, timer or poke

    def _on_commit(self, write: Write, final: bool, parking: bool, outcome: str | None,
                   error: BaseException | None) -> None:
        self.busy = False
        if self.done:
            return
        if error is not None:
            self._commit_failed(error)
            return
        self.advancing = True
        try:
            if self._after_commit(write, final, parking, outcome):  # type: ignore[arg-type]
                driver = self.driver
                assert driver is not None
                if self.events or self.stale or driver.fresh or driver.outbox or driver.state != WAITING:
                    self._advance_loop()
        except Exception as exc:
            self._fail(exc)
        finally:
            self.advancing = False

    def _after_commit(self, write: Write, final: bool, parking: bool, outcome: str) -> bool:
        """Act on a commit's outcome; True if the run goes on in this worker."""
        driver = self.driver
        assert driver is not None
        if outcome != OK:
            log.info("workflow %r: lease lost (%s); leaving it to its new owner", self.id, outcome)
            self._stop_all()
            self._exit(cache=False)
            return False
        self._committed(write, final)
        if final:
            if driver.state == CONTINUED:
                self._next_run(write)
                return True
            self._exit(cache=False)
            return False
        if parking:
            self.parked = True
            self._exit(cache=True)
            return False
        return True

    def _exit(self, *, cache: bool) -> None:
        self.done = True
        self.engine._run_exit(self, cache=cache)

    def _fail(self, exc: BaseException) -> None:
        if not isinstance(exc, (Blocked, *_BLOCKING)):
            log.error("workflow %r: internal error", self.id, exc_info=exc)
        self._spawn(self._block, block_reason(exc))

    def _commit_failed(self, exc: BaseException) -> None:
        # Stores check a write before changing anything and refuse what cannot be
        # stored (a name over the limit) with ValueError or TypeError: retrying
        # would refuse it forever, so the run is blocked with the reason.
        if isinstance(exc, (ValueError, TypeError)):
            self._fail(Blocked(f"the store refused this workflow's next write: {exc}"))
        else:
            self._store_trouble(exc)

    def _store_trouble(self, exc: BaseException) -> None:
        """The store failed (a lost connection, a full disk): not the workflow's fault.

        Nothing is written and nothing is blocked. The run leaves memory (what
        was not committed is redone), and the engine takes it up again from the
        store a little later if this worker still holds its lease.
        """
        log.warning("workflow %r: the store failed (%s: %s); retrying shortly", self.id,
                    type(exc).__name__, exc, exc_info=exc)
        self._stop_all()
        self._exit(cache=False)
        self.engine._retry_later(self.id, self.token)

    async def replay_only(self) -> None:
        """Replay to the current wait and stop: no lease is held, nothing is written."""
        await self._replay()
        self.parked = True

    # -- replay ------------------------------------------------------------------------

    async def _replay(self) -> None:
        engine = self.engine
        rec = engine._recorder
        try:
            args, kwargs = rec.load_args(self.id, self.run, self.args_payload, name=self.name)
            state = rec.load_pending(self.id, self.run, self.pending_blob)
        except (CodecError, SerializationError) as exc:
            raise Blocked(f"cannot decode the stored arguments or state: {exc}") from None
        self._load_state(state)
        driver = self._new_driver(args, kwargs)
        if driver is None:
            return
        started = False
        async for chunk in engine._store.load(self.id):
            driver.feed(chunk)
            if not started:
                started = True
                driver.start()
        driver.feed((), last=True)
        if not started:
            driver.start()
        engine.stats["replayed"] += driver.replayed

    def _new_driver(self, args: tuple, kwargs: dict) -> Driver | None:
        engine = self.engine
        rec = engine._recorder
        wid, run = self.id, self.run
        clock = engine._clock
        try:
            gen = self.wf.fn(*args, **kwargs)
        except Exception as exc:  # wrong arguments for the function: the workflow fails
            gen = _raising(exc)
        self.driver = Driver(
            gen,
            workflow_id=wid,
            workflow=self.name,
            digest=rec.digester(wid),
            decode=rec.decoder(wid, run),
            live=lambda effect, position: rec.pure(wid, run, effect, position, clock),
        )
        return self.driver

    def _load_state(self, state: dict[str, Any]) -> None:
        self.deadlines = {int(k): v for k, v in state.get("d", {}).items()}
        self.attempts = {int(k): v for k, v in state.get("a", {}).items()}
        self.children = {int(k): v for k, v in state.get("c", {}).items()}

    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        if self.deadlines:
            state["d"] = {str(k): v for k, v in self.deadlines.items()}
        if self.attempts:
            state["a"] = {str(k): v for k, v in self.attempts.items()}
        if self.children:
            state["c"] = {str(k): v for k, v in self.children.items()}
        return state

    # -- committing --------------------------------------------------------------------------

    def _write(self, final: bool, parking: bool) -> Write:
        engine = self.engine
        rec = engine._recorder
        driver = self.driver
        assert driver is not None
        now = engine._clock.now()
        dirty_state = self.pending_dirty
        if dirty_state:
            self.pending_blob = rec.dump_pending(self.id, self.run, self._state())
            self.pending_dirty = False
        write = Write(self.id, self.token, "running", now, driver.take_outbox(), self.pending_blob)
        write.seen_poke = self.poke
        extras = bool(self.consumed or self.creates or self.cancels or self.clear_cancel)
        if extras:  # rare: most steps only add entries
            write.consumed, write.creates, write.cancel = self.consumed, self.creates, self.cancels
            write.clear_cancel = self.clear_cancel
            self.consumed, self.creates, self.cancels, self.clear_cancel = [], [], [], False
        if final:
            self._finish(write)
        elif parking:
            wanted = [d for p, d in self.deadlines.items() if driver.wants(p)]
            write.status = "waiting"
            write.ready_at = min(wanted) if wanted else None
            write.release = True
        shape = (write.status, write.seen_poke)
        write.touch = not self.touched or final or parking or dirty_state or extras or shape != self.written
        self.touched = True
        self.written = shape
        self.dirty = False
        return write

    def _finish(self, write: Write) -> None:
        driver = self.driver
        assert driver is not None
        rec = self.engine._recorder
        write.release = True
        write.ready_at = None
        write.pending = None
        if self.parent_id is not None:
            write.wake = [self.parent_id]
        state = driver.state
        if state == CONTINUED:
            effect = driver.result
            try:
                write.new_run = rec.dump_args(self.id, self.run + 1, effect.args, effect.kwargs, name=self.name)
            except SerializationError as exc:
                driver.state, driver.result = FAILED, exc
                state = FAILED
            else:
                write.status, write.release, write.wake = "running", False, ()
                write.ready_at = self.engine._clock.now()
                return
        if state == DONE:
            try:
                write.result = rec.dump_result(self.id, self.run, driver.result)
                write.status = "completed"
                return
            except SerializationError as exc:
                driver.state, driver.result = FAILED, exc
                state = FAILED
        write.status = "cancelled" if state == CANCELLED else "failed"
        write.result = rec.dump_failure(self.id, self.run, driver.result)

    def _committed(self, write: Write, final: bool) -> None:
        self.committed_pending = write.pending
        engine = self.engine
        if engine._warm_blocked:
            engine._warm_blocked.pop(self.id, None)  # it wrote: whatever warm-up found is settled
        if self.suspect:
            self.suspect = False  # it wrote: progress, so the next suspect may run
            engine.suspects -= 1
            engine._kick()
        if write.wake:
            for target in write.wake:
                engine._poke_local(target)
        if write.cancel:
            for target in write.cancel:
                engine._poke_local(target)
        if final:
            self._stop_all()
            if write.status in FINISHED:
                engine._finished(self.id)
            return
        if write.creates:
            engine._kick()
        self._start_all()
        if write.release:
            for timer in self.timers.values():
                timer.cancel()
            self.timers.clear()
            return
        driver = self.driver
        assert driver is not None
        clock = engine._clock
        for position, deadline in self.deadlines.items():
            if position not in self.timers and driver.wants(position) and position not in self.tasks:
                self.timers[position] = clock.call_at(deadline, _timer_event(self, position, deadline))

    def _next_run(self, write: Write) -> None:
        """continue_as_new committed: start the next run with an empty journal, same lease."""
        assert write.new_run is not None
        self.run += 1
        self.args_payload = write.new_run
        self.pending_blob = self.committed_pending = None
        self.touched = False
        self.deadlines, self.attempts, self.children, self.child_outcomes = {}, {}, {}, {}
        self.inbox = None
        self.stale = True
        args, kwargs = self.engine._recorder.load_args(self.id, self.run, write.new_run, name=self.name)
        driver = self._new_driver(args, kwargs)
        assert driver is not None
        driver.feed((), last=True)
        driver.start()
        self.dirty = True

    def _stop_all(self) -> None:
        for _, future in self.tasks.values():
            future.cancel()
        self.tasks.clear()
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()

    async def _block(self, reason: str) -> None:
        engine = self.engine
        self._stop_all()
        log.warning("workflow %r is blocked: %s", self.id, reason)
        # The journal and the stored state stay as last committed.
        write = Write(self.id, self.token, "blocked", None, (), self.committed_pending, release=True,
                      blocked_reason=reason, seen_poke=self.poke)
        try:
            await engine._committer.submit(write)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("workflow %r: could not record that it is blocked", self.id)
        self._exit(cache=False)


def _timer_event(run: Run, position: int, deadline: float) -> Any:
    return lambda: run.notify(("timer", position, deadline))


def _raising(exc: BaseException) -> Any:
    raise exc
    yield  # pragma: no cover - makes this a generator

