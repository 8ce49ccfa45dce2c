"""An in-memory world that runs one workflow on the pure driver, as the engine would.

No store, no event loop, no real time: the world keeps the journal, a
virtual clock, timer deadlines, a signal inbox and a cancel flag, and at
each step picks one thing that happens next (an activity finishes, time
advances to the next deadline, a signal arrives, a cancel is requested).
After each step it reacts as `engine/run.py` does (deliver a cancel, fire
due timers, match signals to waiting receives, oldest first) and commits
what the driver recorded: one *write*.

A reference run takes its choices from a `Chooser` (hypothesis, in
`check`). A recovery run starts from a crash point of a reference run,
replays the journal written so far and then follows the same steps with the
same outcomes, taken from the reference: anything it does differently is a
determinism bug in the workflow.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from ..codecs.pipeline import Pipeline
from ..driver import CANCELLED, CONTINUED, DONE, FAILED, WAITING, Driver, Leaf
from ..effects import Call, Receive, Sleep
from ..journal import Entry, child_failure, record_of, signal_failure
from ..registry import Workflow, as_activity
from ._probe import Probe
from .calls import Calls, Stuck, failure_entry, round_trip
from .sources import Tracer

__all__ = ["START", "Chooser", "Divergence", "Setup", "Sim", "Snapshot", "Step"]

START = _dt.datetime(2024, 1, 1, tzinfo=_dt.timezone.utc).timestamp()
STATES = {DONE: "completed", FAILED: "failed", CANCELLED: "cancelled", CONTINUED: "continued"}
_MAX_DEPTH = 4  # child workflows nested this deep are not simulated further
# Whether and when a cancel comes, drawn once per run (None, the simplest, is never):
# most runs reach the end of the workflow, some try its cancellation handling.
_CANCEL_AT = st.one_of(st.none(), st.integers(0, 20))


class Chooser(Protocol):
    def pick(self, count: int) -> int:
        """An index below `count`; 0 is the simplest choice."""

    def draw(self, strategy: SearchStrategy[Any]) -> Any: ...


class Divergence(Exception):
    """A recovery run did something the reference run did not."""


class Step(NamedTuple):
    """One thing that happened in the world."""

    kind: str  # "complete", "advance", "signal", "cancel"
    position: int | None = None
    data: Any = None  # complete: the Entry; advance: the new time; signal: (name, payload)

    def describe(self) -> str:
        if self.kind == "complete":
            entry = self.data
            how = f"fails ({type(entry.value).__name__})" if entry.failed else "succeeds"
            return f"call({entry.name}) at position {self.position} {how}"
        if self.kind == "advance":
            return f"time advances to {_dt.datetime.fromtimestamp(self.data, _dt.timezone.utc).isoformat(sep=' ')}"
        if self.kind == "signal":
            return f"signal {self.data[0]!r} arrives"
        return "cancel requested"


class Snapshot(NamedTuple):
    """What survives a crash after a step: the journal so far and the durable state."""

    step: int  # index of the last step applied (-1: just started)
    written: int  # entries written so far
    now: float
    deadlines: dict[int, float]
    inbox: list[tuple[str, Any]]
    cancel_requested: bool


class Setup:
    """How the world behaves: fakes and outcome strategies, signals, what it may inject."""

    def __init__(
        self,
        activities: Mapping[Any, Any] | None = None,
        signals: Mapping[str, Any] | None = None,
        *,
        inject: bool | float = True,
        cancel: bool = True,
        max_steps: int = 200,
    ) -> None:
        self.activities: dict[str, Any] = {}
        for key, spec in (activities or {}).items():
            if isinstance(key, str):
                name = key
            elif isinstance(key, Workflow):
                name = key.name
            else:
                name = as_activity(key).name
            if not (isinstance(spec, SearchStrategy) or callable(spec)):
                raise TypeError(
                    f"activities[{name!r}] must be a fake function or a hypothesis strategy of "
                    f"outcomes, got {spec!r}"
                )
            self.activities[name] = spec
        self.signals = dict(signals or {})
        self.inject = inject  # fault injection: True (one call in four), False, or a probability
        self.called: set[str] = set()  # names of every call target the runs yielded (to spot unused fakes)
        self.cancel = cancel
        self.max_steps = max_steps


class Sim:
    """One run of a workflow in the world; see the module docstring."""

    def __init__(
        self,
        wf: Workflow[Any, Any],
        args: tuple,
        kwargs: dict,
        setup: Setup,
        *,
        workflow_id: str = "check",
        chooser: Chooser | None = None,
        reference: Sim | None = None,
        tracer: Tracer | None = None,
        depth: int = 0,
    ) -> None:
        self.wf, self.args, self.kwargs, self.setup = wf, args, kwargs, setup
        self.workflow_id = workflow_id
        self.chooser = chooser
        self.reference = reference
        self.tracer = tracer
        self.depth = depth
        self.now = START
        self.deadlines: dict[int, float] = {}
        self.inbox: list[tuple[str, Any]] = []
        self.cancel_requested = False
        self.cancelled_once = False
        self.journal: dict[int, Entry] = {}
        self.written: list[Entry] = []
        self.yielded: dict[int, tuple[str, str, bytes]] = {}
        self.lines: dict[int, str] = {}  # source line of each yield (reference runs)
        self.steps: list[Step] = []
        self.snapshots: list[Snapshot] = []
        self.stuck: set[int] = set()  # activities that retry forever
        self.truncated = False
        self.digests = Pipeline()
        self.calls = Calls(setup.activities, setup.inject, chooser, workflow_id, wf.name, self._child)
        try:
            gen = wf.fn(*args, **kwargs)
        except Exception as exc:  # the engine fails a workflow whose call raises
            gen = _raising(exc)
        around = tracer.watching if tracer is not None else None
        self.driver = Driver(Probe(gen, around), workflow_id=workflow_id, workflow=wf.name,
                             digest=self._digest, decode=_decode, live=self._live)

    # -- outcome ---------------------------------------------------------------------

    @property
    def state(self) -> str:
        return STATES.get(self.driver.state, "waiting")

    @property
    def value(self) -> Any:
        return self.driver.result if self.driver.state in (DONE, CONTINUED) else None

    @property
    def error(self) -> BaseException | None:
        return self.driver.result if self.driver.state in (FAILED, CANCELLED) else None

    # -- running -----------------------------------------------------------------------

    def run(self) -> Sim:
        """A reference run: start, then let the chooser pick steps until the workflow ends."""
        cancel_at = self.chooser.draw(_CANCEL_AT) if self.setup.cancel else None  # type: ignore[union-attr]
        self.start(())
        while not self.driver.finished:
            if cancel_at == len(self.steps) and not self.cancelled_once:
                self.apply(Step("cancel"))
                continue
            options = self._options()
            if not options:
                break  # waits for something that never comes
            if len(self.steps) >= self.setup.max_steps:
                self.truncated = True
                break
            kind, arg = options[self.chooser.pick(len(options))]  # type: ignore[union-attr]
            try:
                step = self._make_step(kind, arg)
            except Stuck:
                continue  # that call never finishes; choose again among the rest
            self.apply(step)
        return self

    def start(self, prefix: Any) -> None:
        """Replay `prefix` (entries already written) and run to the first wait."""
        prefix = list(prefix)
        for entry in prefix:
            self.journal[entry.position] = entry
        self.written = prefix
        self.driver.feed(sorted(prefix, key=lambda e: e.position), last=True)
        self.driver.start()
        self._settle()
        self._snapshot(-1)

    def apply(self, step: Step) -> None:
        """Make `step` happen, react as the engine does, commit."""
        driver = self.driver
        if step.kind == "complete":
            position = step.position
            if not driver.wants(position):
                raise Divergence(
                    f"the uninterrupted run then saw {step.describe()}, but the recovered run no "
                    f"longer waits on position {position}"
                )
            entry = step.data
            driver.resolve(position, entry, not entry.failed, entry.value)
        elif step.kind == "advance":
            self.now = step.data
        elif step.kind == "signal":
            self.inbox.append(step.data)
        elif step.kind == "cancel":
            self.cancel_requested = self.cancelled_once = True
        self.steps.append(step)
        self._settle()
        self._snapshot(len(self.steps) - 1)

    def recover(self, snapshot: Snapshot) -> Sim:
        """This fresh run, recovering a crash of the reference run at `snapshot`."""
        reference = self.reference
        assert reference is not None
        self.now = snapshot.now
        self.deadlines = dict(snapshot.deadlines)
        self.inbox = list(snapshot.inbox)
        self.cancel_requested = snapshot.cancel_requested
        self.start(reference.written[: snapshot.written])
        for step in reference.steps[snapshot.step + 1:]:
            self.apply(step)
        return self

    def _snapshot(self, step: int) -> None:
        self.snapshots.append(Snapshot(step, len(self.written), self.now, dict(self.deadlines),
                                       list(self.inbox), self.cancel_requested))

    # -- choices (reference runs) -------------------------------------------------------------

    def _options(self) -> list[tuple[str, Any]]:
        driver = self.driver
        options: list[tuple[str, Any]] = []
        receiving: list[str] = []
        for position, leaf in sorted(driver.pending.items()):
            if type(leaf.effect) is Call and position not in self.stuck:
                options.append(("complete", position))
            elif type(leaf.effect) is Receive and leaf.effect.name not in receiving:
                receiving.append(leaf.effect.name)
        due = [d for p, d in self.deadlines.items() if driver.wants(p)]
        if due:
            options.append(("advance", min(due)))
        for name in receiving:
            options.append(("signal", name))
        for name in self.setup.signals:
            buffered = sum(1 for n, _ in self.inbox if n == name)
            if name not in receiving and buffered < 2:
                options.append(("signal", name))
        return options

    def _make_step(self, kind: str, arg: Any) -> Step:
        if kind == "complete":
            try:
                return Step(kind, arg, self.calls.outcome(self.driver.pending[arg]))
            except Stuck:
                self.stuck.add(arg)
                raise
        if kind == "advance":
            return Step(kind, None, max(arg, self.now))
        if kind == "signal":
            spec = self.setup.signals.get(arg)
            payload = self.chooser.draw(spec) if isinstance(spec, SearchStrategy) else spec  # type: ignore[union-attr]
            return Step(kind, None, (arg, round_trip(payload)))
        return Step(kind)

    def _child(self, leaf: Leaf, child_id: str) -> Entry:
        """Run a child workflow to its end in this world; its outcome as the parent's entry."""
        effect: Call = leaf.effect  # type: ignore[assignment]
        if self.depth >= _MAX_DEPTH:
            raise Stuck()
        child = Sim(effect.target, effect.args, effect.kwargs, self.setup, workflow_id=child_id,  # type: ignore[arg-type]
                    chooser=self.chooser, tracer=self.tracer, depth=self.depth + 1).run()
        if child.state == "completed":
            return self.calls.success(leaf, child.value, 1)
        if child.state in ("failed", "cancelled"):
            return failure_entry(self.workflow_id, leaf, child_failure(child_id, record_of(child.error)))  # type: ignore[arg-type]
        raise Stuck()  # a child that waits forever never finishes

    # -- reacting, as engine/run.py does ----------------------------------------------------

    def _settle(self) -> None:
        driver = self.driver
        progress = True
        while progress and driver.state == WAITING:
            progress = False
            if self.cancel_requested and driver.pending:
                self._deliver_cancel()
                progress = True
                continue
            for leaf in driver.take_fresh():
                self._plan(leaf)
            for leaf in driver.take_abandoned():
                self.deadlines.pop(leaf.position, None)
            if self.deadlines or self.inbox:
                progress |= self._resolve_ready()
        if driver.finished:
            driver.take_fresh()
            driver.take_abandoned()
        for entry in driver.take_outbox():
            self.journal[entry.position] = entry
            self.written.append(entry)

    def _plan(self, leaf: Leaf) -> None:
        effect = leaf.effect
        self._saw(leaf.position, effect.kind, getattr(effect, "name", ""), leaf.digest)
        if type(effect) is Call:
            self.setup.called.add(effect.name)
        elif type(effect) is Sleep:
            self.deadlines.setdefault(leaf.position, self.now + effect.seconds)
        elif type(effect) is Receive and effect.timeout is not None:
            self.deadlines.setdefault(leaf.position, self.now + effect.timeout)

    def _fire(self, position: int) -> None:
        leaf = self.driver.pending[position]
        effect = leaf.effect
        del self.deadlines[position]
        if type(effect) is Sleep:
            self.driver.resolve(position, Entry(position, "sleep", "", b"", False, None), True, None)
        else:
            message = f"receive({effect.name!r}) timed out after {effect.timeout:g}s"  # type: ignore[attr-defined]
            entry = failure_entry(self.workflow_id, leaf, signal_failure("timeout", message))
            self.driver.resolve(position, entry, False, entry.value)

    def _resolve_ready(self) -> bool:
        """As the engine does: every wait that can end now, in position order.

        A receive with a signal waiting gets it even if its timeout has passed
        too; among members of a race ready at once the lowest index wins.
        """
        driver = self.driver
        names = {name for name, _ in self.inbox}
        ready = {p for p, d in self.deadlines.items() if d <= self.now}
        ready.update(p for p, leaf in driver.pending.items()
                     if type(leaf.effect) is Receive and leaf.effect.name in names)  # type: ignore[attr-defined]
        progress = False
        for position in sorted(ready):
            if not driver.wants(position):
                continue
            effect = driver.pending[position].effect
            index = None
            if type(effect) is Receive:
                index = next((i for i, (n, _) in enumerate(self.inbox) if n == effect.name), None)
            if index is not None:
                _, payload = self.inbox.pop(index)
                self.deadlines.pop(position, None)
                driver.resolve(position, Entry(position, "receive", effect.name, b"", False, payload), True, payload)
            elif self.deadlines.get(position, float("inf")) <= self.now:
                self._fire(position)
            else:
                continue
            progress = True
            if driver.fresh or driver.state != WAITING:
                break
        return progress

    def _deliver_cancel(self) -> None:
        driver = self.driver
        self.cancel_requested = False
        for position in sorted(driver.pending):
            if driver.wants(position):
                leaf = driver.pending[position]
                self.deadlines.pop(position, None)
                entry = failure_entry(self.workflow_id, leaf, signal_failure("cancelled", "cancelled"))
                driver.resolve(position, entry, False, entry.value)

    # -- the driver's callbacks ------------------------------------------------------------

    def _digest(self, effect: Call, position: int, recorded: bytes | None) -> bytes:
        return self.digests.digest(effect.args, effect.kwargs, recorded[:1] if recorded else None)

    def _live(self, effect: Any, position: int) -> tuple[Entry, Any]:
        kind = effect.kind
        name = effect.change_id if kind == "version" else ""
        self._saw(position, kind, name, b"")
        if self.reference is not None:
            entry = self.reference.journal.get(position)
            if entry is None or entry.kind != kind or entry.name != name:
                raise Divergence(f"the recovered run yields {effect.describe()} at position {position}, "
                                 "where the uninterrupted run recorded nothing of that kind")
            return entry, entry.value
        if kind == "uuid":
            value: Any = self.chooser.draw(st.uuids(version=4))  # type: ignore[union-attr]
        elif kind == "now":
            value = _dt.datetime.fromtimestamp(self.now, _dt.timezone.utc)
        elif kind == "random":
            value = self.chooser.draw(st.floats(0.0, 1.0, exclude_max=True))  # type: ignore[union-attr]
        else:
            value = effect.latest
        return Entry(position, kind, name, b"", False, value), value

    def _saw(self, position: int, kind: str, name: str, digest: bytes) -> None:
        seen = (kind, name, digest)
        self.yielded[position] = seen
        reference = self.reference
        if reference is None:
            where = self.driver.location()
            if where is not None:
                self.lines[position] = where
            return
        before = reference.yielded.get(position)
        if before is None:
            raise Divergence(f"at position {position} the recovered run yields {_describe(seen)}, where "
                             "the uninterrupted run yielded nothing")
        if before != seen:
            other = " with other arguments" if before[:2] == seen[:2] else ""
            now_at = self.driver.location()
            was_at = reference.lines.get(position)
            raise Divergence(
                f"at position {position} the recovered run yields {_describe(seen)}{other}"
                + (f" ({now_at})" if now_at else "")
                + f", where the uninterrupted run yielded {_describe(before)}"
                + (f" ({was_at})" if was_at else "")
            )


def _describe(seen: tuple[str, str, bytes]) -> str:
    kind, name = seen[0], seen[1]
    if kind == "call":
        return f"call({name})"
    return f"{kind}({name!r})" if name else f"{kind}()"


def _decode(entry: Any) -> tuple[bool, Any]:
    return (not entry[4], entry[5])


def _raising(exc: BaseException) -> Any:
    raise exc
    yield  # pragma: no cover - makes this a generator

