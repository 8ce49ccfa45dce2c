"""The worker half of the Engine: claiming workflows and keeping them moving.

It claims ready workflows (at most one suspected of crashing workers at a
time), turns each claim into a `Run`, idles until there is work (a store
notification, a local kick, the next timer), renews the leases of what it
runs, warms the cache of waiting workflows at start, and takes a run up
again after a store failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from ..clock import Clock
from ..registry import Registry
from ..store.base import Store
from ..store.types import Claim, Write
from .run import BLOCKS, Run, block_reason

if TYPE_CHECKING:
    from .committer import Committer

__all__ = ["Worker", "not_registered"]

log = logging.getLogger("durable")


def not_registered(name: str) -> str:
    """The reason a workflow whose function nobody registered is blocked."""
    return (f"workflow {name!r} is not registered in this engine's registry, and no live worker on "
            "this store registers it; it resumes once an engine whose registry has it runs (import "
            "the module that defines it, or register it with @workflow(name=...))")


class Worker:
    """Mixed into `Engine`; the state it uses is set up in `Engine.__init__`."""

    store: Store
    registry: Registry
    clock: Clock
    worker_id: str
    lease: float
    max_active: int
    max_cached: int
    max_recovery_attempts: int
    poll_interval: float
    suspects: int
    stats: Any
    _state: str
    _names: frozenset[str]
    _active: dict[str, Run]
    _parked: OrderedDict[str, Run]
    _waiters: dict[str, list[asyncio.Future[None]]]
    _result_waiting: int
    _kick_event: asyncio.Event | None
    _tasks: list[asyncio.Task[Any]]
    _retrying: dict[str, int]
    _warm_blocked: dict[str, tuple[int, str]]
    _committer: Committer

    def _kick(self) -> None:
        if self._kick_event is not None:
            self._kick_event.set()

    async def _work(self) -> None:
        store = self.store
        while True:
            assert self._kick_event is not None
            self._kick_event.clear()
            self._names = self.registry.names()
            capacity = self.max_active - len(self._active)
            try:
                # One workflow suspected of killing a worker at a time, so a
                # poison pill crashes alone and innocent bystanders recover.
                suspects = 0 if self.suspects else 1
                claims = await store.claim(self.worker_id, self._names, max(0, min(capacity, 500)),
                                           self.lease, self.clock.now(), suspects)
            except Exception:
                log.exception("claiming work failed; retrying")
                await asyncio.sleep(self.poll_interval)
                continue
            fresh = 0
            for claim in claims:
                fresh += not claim.held
                self._on_claim(claim)
            if fresh and fresh >= min(capacity, 500):
                continue  # there may be more
            await self._idle(fresh == 0)

    async def _idle(self, nothing_claimed: bool) -> None:
        assert self._kick_event is not None
        clock = self.clock
        timeout = self.poll_interval
        upcoming = await self.store.next_ready(self._names)
        if upcoming is not None:
            delay = upcoming - clock.now()
            if delay <= 0 and not nothing_claimed and len(self._active) < self.max_active:
                return
            if getattr(clock, "skips_when_idle", False):
                if self._result_waiting and not self._active and delay > 0:
                    clock.set(upcoming)  # type: ignore[attr-defined]
                    return
            else:
                timeout = min(timeout, max(delay, 0.001))
        if self._kick_event.is_set():
            return
        store_wait = asyncio.ensure_future(self.store.wait_for_work(timeout))
        kick_wait = asyncio.ensure_future(self._kick_event.wait())
        try:
            await asyncio.wait((store_wait, kick_wait), return_when=asyncio.FIRST_COMPLETED)
        finally:
            store_wait.cancel()
            kick_wait.cancel()
        if store_wait.done() and not store_wait.cancelled():
            self._wake_waiters()  # the store saw activity: a workflow may have finished elsewhere

    def _wake_waiters(self) -> None:
        for futures in self._waiters.values():
            for future in futures:
                if not future.done():
                    future.set_result(None)

    async def _watch(self) -> None:
        """In a client engine: wake result() callers when the store reports activity."""
        while True:
            await self.store.wait_for_work(self.poll_interval)
            self._wake_waiters()

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            if self._active or self._retrying:
                try:
                    await self.store.renew(self.worker_id, [*self._active, *self._retrying], self.lease)
                except Exception:
                    log.exception("renewing leases failed; will retry")

    def _on_claim(self, claim: Claim) -> None:
        if claim.held:
            run = self._active.get(claim.id)
            if run is not None:
                run.poked()
            return
        if claim.attempts > self.max_recovery_attempts + 1:
            crashes = claim.attempts - 1
            reason = (f"workflow {claim.id!r} crashed its worker {crashes} times in a row without "
                      f"recording progress (Engine(max_recovery_attempts={self.max_recovery_attempts})); "
                      "fix the cause, then unblock it or restart the engine")
            self._block_claim(claim, reason)
            return
        self._activate(claim)

    def _activate(self, claim: Claim, fresh: tuple[tuple, dict] | None = None) -> None:
        wf = self.registry.get(claim.name)
        if wf is None:
            self._block_claim(claim, not_registered(claim.name))
            return
        run = self._parked.pop(claim.id, None)
        # A cached generator is current if nobody else held the lease since:
        # every claim takes the next token.
        if run is not None and run.run == claim.run and claim.token == run.token + 1:
            run.adopt(claim)
        else:
            run = Run(self, claim, wf, claim.parent_id)
            if fresh is not None:
                try:
                    run.start_fresh(*fresh)  # created just now: nothing to read back from the store
                except BLOCKS as exc:  # e.g. no digest key for its first call: blocked, start() still returns
                    self._active[claim.id] = run
                    run._fail(exc)  # noqa: SLF001
                    return
        self._active[claim.id] = run
        if run.suspect:
            self.suspects += 1
        run.begin()

    async def _warm_up(self) -> None:
        """Replay waiting workflows to their current wait, without taking them.

        Nothing is written: a warmed generator is used only if the next claim
        proves nobody held the lease since it was read (see `_activate`).
        """
        after: str | None = None
        warmed = 0
        while warmed < self.max_cached:
            records = await self.store.list(status="waiting", after=after, limit=200)
            if not records:
                break
            after = records[-1].id
            for record in records:
                wf = self.registry.get(record.name)
                if wf is None or record.lease_owner is not None or record.id in self._active:
                    continue
                if record.id in self._parked:
                    continue
                claim = Claim(record.id, record.name, record.run, record.token, record.status, record.args,
                              record.pending, 0, record.cancel_requested, 0, parent_id=record.parent_id)
                run = Run(self, claim, wf, record.parent_id)
                try:
                    await run.replay_only()
                except Exception as exc:
                    if isinstance(exc, BLOCKS):
                        await self._blocked_at_warm_up(record.id, record.token, block_reason(exc))
                    else:  # a store failure: the next claim tries again
                        log.debug("warm-up of workflow %r skipped: %s", record.id, exc)
                    continue
                if record.id not in self._active and record.id not in self._parked and self._state == "open":
                    self._parked[record.id] = run
                    warmed += 1
        self.stats["warmed"] += warmed

    async def _blocked_at_warm_up(self, workflow_id: str, token: int, reason: str) -> None:
        """A waiting workflow's replay failed at warm-up (changed code, say): it is blocked now.

        Its status reads "blocked" with the reason at once, without waiting
        for its next signal or timer (maybe days away). A store that can
        `poke` a workflow makes it ready, so a worker claims it and records
        the block the usual way, with the lease; with any other store the
        block is recorded at its next claim.
        """
        self._warm_blocked[workflow_id] = (token, reason)
        poke = getattr(self.store, "poke", None)
        if poke is None:
            log.warning("workflow %r is blocked: %s", workflow_id, reason)
            return
        try:
            await poke(workflow_id, self.clock.now())
        except Exception:  # the store failed: the block is recorded at its next claim instead
            log.warning("workflow %r is blocked: %s", workflow_id, reason, exc_info=True)

    def _block_claim(self, claim: Claim, reason: str) -> None:
        log.warning("workflow %r is blocked: %s", claim.id, reason)
        write = Write(claim.id, claim.token, "blocked", None, (), claim.pending, release=True,
                      blocked_reason=reason, seen_poke=claim.poke)
        asyncio.get_running_loop().create_task(self._committer.submit(write))

    def _run_exit(self, run: Run, *, cache: bool) -> None:
        if self._active.get(run.id) is run:
            del self._active[run.id]
            if run.suspect:
                run.suspect = False
                self.suspects -= 1
        if cache and self._state == "open":
            self._parked[run.id] = run
            self._parked.move_to_end(run.id)
            while len(self._parked) > self.max_cached:
                self._parked.popitem(last=False)
        # A run that parked may have set the next wake-up, a full worker has room
        # again, and a virtual clock may jump once nothing runs: look again. A run
        # that simply finished leaves nothing new to claim.
        if cache or len(self._active) + 1 >= self.max_active or getattr(self.clock, "skips_when_idle", False):
            self._kick()

    def _retry_later(self, workflow_id: str, token: int) -> None:
        """Take a run up again after a store failure, if this worker still holds its lease."""
        if self._state != "open":
            return
        self._retrying[workflow_id] = token
        task = asyncio.get_running_loop().create_task(self._resume_after_trouble(workflow_id, token))
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    async def _resume_after_trouble(self, workflow_id: str, token: int) -> None:
        delay = 0.5
        try:
            while self._state == "open":
                await asyncio.sleep(delay)
                try:
                    record = await self.store.get(workflow_id)
                except Exception:
                    log.warning("workflow %r: the store still fails; retrying in %.0fs", workflow_id, delay * 2)
                    delay = min(delay * 2, 30.0)
                    continue
                if (record is None or record.lease_owner != self.worker_id or record.token != token
                        or workflow_id in self._active):
                    return  # taken over (or finished) meanwhile: nothing left to do here
                self._activate(Claim(record.id, record.name, record.run, token, record.status, record.args,
                                     record.pending, 0, record.cancel_requested, record.attempts,
                                     parent_id=record.parent_id))
                return
        finally:
            self._retrying.pop(workflow_id, None)
