"""What a run does for each kind of wait: the reacting half of `Run`.

An activity outcome is recorded or scheduled for retry; a deadline ends a
sleep, times out a receive or ends a retry backoff; a signal is matched to
the oldest waiting receive of its name; a finished child's outcome is
recorded; a cancel is delivered to every leaf still waiting. Each of these
only changes the run in memory and marks what the next write must carry;
`Run` (run.py) decides when to commit and what may start after it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..driver import WAITING, Leaf
from ..effects import Call, Receive, Sleep
from ..errors import SerializationError, WorkflowExistsError
from ..journal import child_failure, record_of, signal_failure
from ..store.types import FINISHED, NewWorkflow
from ..store.validate import check_id
from .activity import ActivityInfo, start_attempt
from .recorder import immutable

if TYPE_CHECKING:
    from ..driver import Driver
    from ..store.types import Signal
    from .core import Engine

__all__ = ["Waits"]

_new_info = tuple.__new__


class Waits:
    """Mixed into `Run`; the state it uses is set up in `Run.__init__`."""

    engine: Engine
    driver: Driver | None
    id: str
    name: str
    run: int
    deadlines: dict[int, float]
    attempts: dict[int, list[Any]]
    tasks: dict[int, tuple[int, Any]]
    timers: dict[int, Any]
    children: dict[int, str]
    child_outcomes: dict[int, tuple[bool, Any]]
    inbox: list[Signal] | None
    events: list[tuple[Any, ...]]
    to_start: list[Leaf]
    consumed: list[int]
    creates: list[NewWorkflow]
    cancels: list[str]

    # -- reading what changed outside ---------------------------------------------------

    async def _refresh(self) -> None:
        self.stale = False
        engine = self.engine
        driver = self.driver
        assert driver is not None
        # Every refresh follows a claim or a poke, and a poke may be a cancel
        # as much as a signal: read the flag along with the signals.
        inbox = await engine._store.inbox(self.id)
        # A signal matched since the last write is still unconsumed in the
        # store until that write commits: reading it back would deliver it twice.
        consumed = self.consumed
        self.inbox = [s for s in inbox.signals if s.seq not in consumed] if consumed else inbox.signals
        self.poke = max(self.poke, inbox.poke)
        self.cancel_requested = self.cancel_requested or inbox.cancel_requested
        for position, child_id in list(self.children.items()):
            if position in self.child_outcomes or not driver.wants(position):
                continue
            record = await engine._store.get(child_id)
            if record is None or record.status not in FINISHED:
                continue
            self.child_outcomes[position] = self._child_outcome(position, child_id, record)

    def _child_outcome(self, position: int, child_id: str, record: Any) -> tuple[bool, Any]:
        rec = self.engine._recorder
        leaf = self.driver.pending[position]  # type: ignore[union-attr]
        expected = leaf.effect.name
        if record.name != expected:
            error = WorkflowExistsError(child_id, existing=record.name, requested=expected)
            return False, child_failure(child_id, record_of(error))
        if record.status == "completed":
            return True, rec.load_result(child_id, record.run, record.result)
        return False, child_failure(child_id, rec.load_failure(child_id, record.run, record.result))

    # -- reacting ------------------------------------------------------------------------------

    def _react(self) -> None:
        driver = self.driver
        assert driver is not None
        now = self.engine._clock.now()
        progress = True
        while progress and driver.state == WAITING:
            progress = False
            if self.events:
                # Leaves an outcome makes live are planned below in this same pass.
                events, self.events = self.events, []
                for event in events:
                    self._absorb(event, now)
            if self.cancel_requested and driver.pending:
                self._deliver_cancel()
                progress = True
                continue
            if driver.fresh:
                for leaf in driver.take_fresh():
                    self._plan(leaf, now)
            if driver.abandoned:
                for leaf in driver.take_abandoned():
                    self._abandon(leaf)
            if self.deadlines or self.inbox:
                progress |= self._resolve_ready(now)
            if self.child_outcomes:
                progress |= self._resolve_children()
        if driver.finished:
            for leaf in driver.take_abandoned():
                self._abandon(leaf)
            driver.take_fresh()
        if driver.outbox:
            self.dirty = True

    def _resolve_ready(self, now: float) -> bool:
        """Resolve every wait that can end now: a signal waiting for a receive, a deadline passed.

        In position order, so among members of a race ready at once the lowest
        index wins; a receive with a signal waiting gets it, whether or not its
        timeout has passed too. Stops when the code moved on to a new wait, so
        its effects are planned before anything else is decided.
        """
        driver = self.driver
        assert driver is not None
        ready = [position for position, deadline in self.deadlines.items() if deadline <= now]
        inbox = self.inbox
        if inbox:
            names = {signal.name for signal in inbox}
            ready.extend(position for position, leaf in driver.pending.items()
                         if type(leaf.effect) is Receive and leaf.effect.name in names)  # type: ignore[attr-defined]
        if not ready:
            return False
        progress = False
        for position in sorted(set(ready)):
            if not driver.wants(position):
                continue  # an earlier resolution ended the wait it was part of
            leaf = driver.pending[position]
            if type(leaf.effect) is Receive and self.inbox and self._deliver_signal(leaf):
                progress = True
            else:
                deadline = self.deadlines.get(position)
                if deadline is None or deadline > now or position in self.tasks:
                    continue
                self._fire(position)
                progress = True
            if driver.fresh or driver.state != WAITING:
                break
        return progress

    def _resolve_children(self) -> bool:
        driver = self.driver
        assert driver is not None
        rec = self.engine._recorder
        resolved = False
        for position in list(self.child_outcomes):
            ok, value = self.child_outcomes.pop(position)
            if not driver.wants(position):
                continue
            leaf = driver.pending[position]
            if ok:
                entry, value = rec.entry(self.id, self.run, position, "call", leaf.effect.name, leaf.digest, value)
            else:
                entry, value = rec.failure(self.id, self.run, position, "call", leaf.effect.name, leaf.digest, value)
            self.children.pop(position, None)
            self.pending_dirty = True
            driver.resolve(position, entry, ok, value)
            resolved = True
        return resolved

    def _absorb(self, event: tuple[Any, ...], now: float) -> bool:
        kind = event[0]
        if kind == "poke":
            self.stale = True
            return False
        if kind == "timer":
            # Due now even if the timer ran a hair early; resolved with whatever
            # else is ready, in position order (a waiting signal beats a timeout).
            _, position, deadline = event
            self.timers.pop(position, None)
            if self.deadlines.get(position) == deadline and deadline > now:
                self.deadlines[position] = now
            return position in self.deadlines
        # ("activity", position, attempt, ok, value)
        _, position, attempt, ok, value = event
        current = self.tasks.get(position)
        if current is None or current[0] != attempt:
            return False  # abandoned or cancelled attempt: its outcome is not used
        del self.tasks[position]
        driver = self.driver
        assert driver is not None
        if not driver.wants(position):
            return False
        leaf = driver.pending[position]
        effect: Call = leaf.effect  # type: ignore[assignment]
        rec = self.engine._recorder
        if ok:
            try:
                entry, value = rec.entry(self.id, self.run, position, "call", effect.name, leaf.digest, value)
            except SerializationError as exc:
                # Retrying cannot make the result serializable: fail at once.
                entry, value = rec.activity_failure(self.id, self.run, position, effect.name, leaf.digest,
                                                    exc, attempt)
                ok = False
        else:
            policy = effect.retry or effect.target.retry
            if not policy.gives_up(attempt, value):
                self.attempts[position] = [attempt, record_of(value)]
                self.deadlines[position] = now + policy.delay(attempt)
                self.pending_dirty = self.dirty = True
                self.engine.stats["retries"] += 1
                return True
            entry, value = rec.activity_failure(self.id, self.run, position, effect.name, leaf.digest,
                                                value, attempt)
        if self.attempts and self.attempts.pop(position, None) is not None:
            self.pending_dirty = True
            self.deadlines.pop(position, None)
        driver.resolve(position, entry, ok, value)
        return True

    def _fire(self, position: int) -> None:
        """A deadline passed: a sleep ends, a receive times out, or a retry is due."""
        driver = self.driver
        assert driver is not None
        leaf = driver.pending[position]
        effect = leaf.effect
        rec = self.engine._recorder
        self.deadlines.pop(position, None)
        self.pending_dirty = True
        timer = self.timers.pop(position, None)
        if timer is not None:
            timer.cancel()
        if type(effect) is Sleep:
            entry, value = rec.entry(self.id, self.run, position, "sleep", "", b"", None)
            driver.resolve(position, entry, True, value)
        elif type(effect) is Receive:
            message = f"receive({effect.name!r}) timed out after {effect.timeout:g}s"  # type: ignore[attr-defined]
            entry, error = rec.failure(self.id, self.run, position, "receive", effect.name, b"",
                                       signal_failure("timeout", message))
            driver.resolve(position, entry, False, error)
        else:
            self.to_start.append(leaf)  # a retry backoff ended

    def _plan(self, leaf: Leaf, now: float) -> None:
        effect = leaf.effect
        position = leaf.position
        t = type(effect)
        if t is Call:
            if effect.is_child:  # type: ignore[attr-defined]
                self._plan_child(leaf)
            elif position in self.deadlines:
                pass  # a retry backoff recorded before: wait it out
            else:
                self.to_start.append(leaf)
        elif t is Sleep:
            if position not in self.deadlines:
                self.deadlines[position] = now + effect.seconds  # type: ignore[attr-defined]
                self.pending_dirty = self.dirty = True
        elif t is Receive:
            if effect.timeout is not None and position not in self.deadlines:  # type: ignore[attr-defined]
                self.deadlines[position] = now + effect.timeout  # type: ignore[attr-defined]
                self.pending_dirty = self.dirty = True
            if self.inbox is None:
                self.stale = True

    def _plan_child(self, leaf: Leaf) -> None:
        effect: Call = leaf.effect  # type: ignore[assignment]
        position = leaf.position
        child_id = effect.id or f"{self.id}/{position}"
        if self.children.get(position) == child_id:
            self.stale = True  # recovered: it may have finished meanwhile
            return
        rec = self.engine._recorder
        try:
            check_id(child_id, f"the id of child workflow {effect.name!r} called at position {position}")
        except (TypeError, ValueError) as exc:
            # Refused here, not by the store: a bad write would fail its whole group commit.
            self._refuse_child(leaf, child_id, ValueError(f"{exc} (in workflow {self.id!r})"))
            return
        try:
            args = rec.dump_args(child_id, 0, effect.args, effect.kwargs, name=effect.name)
        except SerializationError as exc:
            self._refuse_child(leaf, child_id, SerializationError(
                f"the arguments of child workflow {effect.name!r} (id {child_id!r}), called at position "
                f"{position} of workflow {self.id!r}, cannot be recorded, so it was not started: {exc}",
                workflow_id=child_id, type_name=exc.type_name, size=exc.size, limit=exc.limit,
            ))
            return
        self.engine._registry_add(effect.target)  # type: ignore[arg-type]
        self.children[position] = child_id
        self.creates.append(NewWorkflow(child_id, effect.name, args, self.engine._clock.now(), parent_id=self.id))
        self.pending_dirty = self.dirty = True

    def _refuse_child(self, leaf: Leaf, child_id: str, cause: Exception) -> None:
        """Nothing was created: the parent gets a ChildWorkflowError whose cause says why."""
        effect: Call = leaf.effect  # type: ignore[assignment]
        entry, error = self.engine._recorder.failure(self.id, self.run, leaf.position, "call", effect.name,
                                                     leaf.digest, child_failure(child_id, record_of(cause)))
        self.driver.resolve(leaf.position, entry, False, error)  # type: ignore[union-attr]

    def _abandon(self, leaf: Leaf) -> None:
        position = leaf.position
        task = self.tasks.pop(position, None)
        if task is not None:
            task[1].cancel()
        timer = self.timers.pop(position, None)
        if timer is not None:
            timer.cancel()
        if self.deadlines.pop(position, None) is not None or self.attempts.pop(position, None) is not None:
            self.pending_dirty = self.dirty = True
        child_id = self.children.pop(position, None)
        if child_id is not None:
            self.cancels.append(child_id)
            self.pending_dirty = self.dirty = True
        if leaf in self.to_start:
            self.to_start.remove(leaf)

    def _deliver_signal(self, leaf: Leaf) -> bool:
        """Hand the oldest waiting signal of its name to this receive; False if there is none."""
        driver = self.driver
        assert driver is not None and self.inbox is not None
        position = leaf.position
        name = leaf.effect.name  # type: ignore[attr-defined]
        signal = next((s for s in self.inbox if s.name == name), None)
        if signal is None:
            return False
        rec = self.engine._recorder
        self.inbox.remove(signal)
        value = rec.load_signal(self.id, name, signal.payload)
        entry, value = rec.entry(self.id, self.run, position, "receive", name, b"", value)
        self.consumed.append(signal.seq)
        if self.deadlines.pop(position, None) is not None:
            self.pending_dirty = True
        timer = self.timers.pop(position, None)
        if timer is not None:
            timer.cancel()
        driver.resolve(position, entry, True, value)
        return True

    def _deliver_cancel(self) -> None:
        driver = self.driver
        assert driver is not None
        rec = self.engine._recorder
        self.cancel_requested = False
        self.clear_cancel = self.dirty = True
        for position in sorted(driver.pending):
            if not driver.wants(position):
                continue
            leaf = driver.pending[position]
            effect = leaf.effect
            name = effect.name if effect.kind in ("call", "receive") else ""  # type: ignore[attr-defined]
            message = f"workflow {self.id!r} was cancelled while waiting on {effect.describe()} at position {position}"
            entry, error = rec.failure(self.id, self.run, position, effect.kind, name, leaf.digest,
                                       signal_failure("cancelled", message))
            self._abandon(leaf)
            driver.resolve(position, entry, False, error)

    def _start_all(self) -> None:
        to_start, self.to_start = self.to_start, []
        for leaf in to_start:
            self._start(leaf)

    def _start(self, leaf: Leaf) -> None:
        driver = self.driver
        if driver is None or not driver.wants(leaf.position):
            return
        engine = self.engine
        effect: Call = leaf.effect  # type: ignore[assignment]
        target = effect.target
        position = leaf.position
        attempt = self.attempts[position][0] + 1 if self.attempts and position in self.attempts else 1
        info = _new_info(ActivityInfo, (self.id, self.name, self.run, position, target.name, attempt))
        timeout = effect.timeout if effect.timeout is not None else target.timeout  # type: ignore[attr-defined]
        args, kwargs = effect.args, effect.kwargs
        if not immutable(args, kwargs):
            # Each attempt gets its own decoded copy: an activity that mutates an
            # argument must not change the workflow's state (only the live run would see it).
            args, kwargs = engine._recorder.copy_args(args, kwargs)
        future = start_attempt(target, args, kwargs, info, timeout,  # type: ignore[arg-type]
                               engine._executor, self.notify_outcome)
        self.tasks[position] = (attempt, future)
