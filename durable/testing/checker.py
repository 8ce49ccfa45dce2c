"""`check`: a property test that a workflow recovers from a crash at any point.

For each example hypothesis generates one *uninterrupted* run in the
simulated world (`world.py`): which activities fail, which race member
finishes first, when signals arrive, when timers fire, whether a cancel
comes. Then, for every journal write of that run (or a sample of them), it
simulates a crash right after the write, recovers by replaying the journal
written so far, continues with the same outcomes, and asserts that the
recovered run yields the same effects, writes the same journal and ends
with the same result. Workflow code is also watched for direct reads of
the clock or of a random source (`sources.py`), which a replay within one
test would not notice.
"""

from __future__ import annotations

import difflib
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import hypothesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from hypothesis.errors import Flaky

from ..errors import NondeterminismError
from ..registry import Workflow
from .calls import injection_rate
from .render import render_journal, render_outcome, short
from .replayer import as_workflow
from .sources import Finding, Tracer
from .world import START, Divergence, Setup, Sim, Snapshot

__all__ = ["CheckFailed", "check"]

_ADVICE = (
    "A workflow must take every value that can differ between runs (time, randomness, the outside "
    "world) from a yielded effect: now(), random(), uuid(), receive(...) or call(...)."
)


def check(
    fn: Callable[..., Any],
    /,
    *args: Any,
    activities: Mapping[Any, Any] | None = None,
    signals: Mapping[str, Any] | None = None,
    failures: bool | float = True,
    max_examples: int = 100,
    crashes: int | None = None,
    settings: hypothesis.settings | None = None,
    **kwargs: Any,
) -> None:
    """Property-check that workflow `fn(*args, **kwargs)` recovers identically from any crash.

    By default the real activities run, and hypothesis injects their failures,
    picks race winners, signal arrivals, timer firings and crash points.
    `activities` maps an activity (or its name) to a fake function, or to a
    strategy of outcomes (a value, an exception for a failure, or an
    `Outcome`). `signals` maps a signal name to a strategy (or a value) for
    its payload; such signals may arrive at any time, others only while the
    workflow waits for them (with payload None). `failures` is how often a call
    (to a real activity or a fake function, not to a strategy) fails by
    injection, every attempt: True for about one in four, False never, or a
    probability. `crashes` limits how many crash points each example tries
    (default: after every journal write).

    A key of `activities` that no run called is reported after the check: a
    ValueError if it looks like a misspelt name of an activity the workflow
    calls, a warning otherwise.

    Raises AssertionError with a shrunk counterexample run when a recovery
    differs, or when workflow code reads the clock or a random source directly.
    """
    wf = as_workflow(fn)
    injection_rate(failures)  # refuses anything but True, False or a probability
    setup = Setup(activities, signals, inject=failures)
    if crashes is not None and crashes < 1:
        raise ValueError("check(crashes=...) must be at least 1 (or None for every write)")
    base = settings if settings is not None else hypothesis.settings()
    run_settings = hypothesis.settings(
        base,
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        # The counterexample report says what matters; hypothesis' line coverage would not.
        phases=[phase for phase in base.phases if phase is not Phase.explain],
    )

    first: list[CheckFailed] = []  # the first real failure, should hypothesis give up on replaying it

    @run_settings
    @given(data=st.data())
    def recovers_identically(data: st.DataObject) -> None:
        try:
            verify(scenario(wf, args, kwargs, setup, crashes, _Draws(data.draw)))
        except CheckFailed as exc:
            if not first:
                first.append(exc)
            raise

    try:
        recovers_identically()
    except Flaky as exc:
        # The failing example did not fail (or draw) the same way when hypothesis ran it again
        # (FlakyFailure, FlakyStrategyDefinition): show the failure as it first happened.
        failure = first[0] if first else next(iter(getattr(exc, "exceptions", None) or ()), None)
        raise CheckFailed(
            f"workflow {wf.name!r} behaves differently in two runs with the same outcomes: it "
            f"depends on something it did not yield (module state, the clock, randomness), so "
            f"hypothesis could not run the failing example again to shrink it."
            + (f"\n\nThe first failure:\n\n{str(failure).replace(_SHRUNK, '(not shrunk)')}" if failure is not None
               else f" {_ADVICE}")
        ) from None
    except CheckFailed as exc:
        # The message holds the whole counterexample; hypothesis' notes (one line per
        # draw) would only bury it.
        raise CheckFailed(str(exc)) from None
    _unused_fakes(wf, setup, max_examples)


def _unused_fakes(wf: Workflow[Any, Any], setup: Setup, examples: int) -> None:
    """Complain about keys of `activities=` that no run called: a misspelt name lets the real activity run."""
    unused = sorted(set(setup.activities) - setup.called)
    if not unused:
        return
    called = ", ".join(sorted(setup.called)) or "none"
    for name in unused:
        close = difflib.get_close_matches(name, sorted(setup.called), n=1, cutoff=0.75)
        text = (f"check(activities=...) has a key {name!r}, but workflow {wf.name!r} called no activity or "
                f"child workflow of that name in {examples} examples (it called: {called})")
        if close:
            raise ValueError(f"{text}. Did you mean {close[0]!r}? The real {close[0]} ran instead of the fake.")
        warnings.warn(f"{text}: the fake was never used. If only a rare path calls it, raise max_examples.",
                      UserWarning, stacklevel=3)


_SHRUNK = "(shrunk by hypothesis)"


class CheckFailed(AssertionError):
    """The workflow does not recover deterministically; the message shows the counterexample."""


class Scenario:
    """One uninterrupted run, what its code read directly, and the crash points to try."""

    def __init__(self, reference: Sim, findings: list[Finding], points: list[Snapshot]) -> None:
        self.reference = reference
        self.findings = findings
        self.points = points

    def __repr__(self) -> str:
        ref = self.reference
        return (f"<run of {ref.wf.name}: {len(ref.steps)} steps, {len(ref.written)} entries, "
                f"{render_outcome(ref.state, ref.value, ref.error)}>")


class _Draws:
    """The world's choices, drawn by hypothesis (index 0 is the simplest)."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self._draw = draw

    def pick(self, count: int) -> int:
        return 0 if count == 1 else self._draw(st.integers(0, count - 1))

    def draw(self, strategy: st.SearchStrategy[Any]) -> Any:
        return self._draw(strategy)


def scenario(wf: Workflow[Any, Any], args: tuple, kwargs: dict, setup: Setup, crashes: int | None,
             chooser: _Draws) -> Scenario:
    """Run `wf` once in the world with `chooser`'s choices; pick the crash points to try."""
    tracer = Tracer()
    reference = Sim(wf, args, kwargs, setup, chooser=chooser, tracer=tracer).run()
    points = crash_points(reference)
    if crashes is not None and len(points) > crashes:
        chosen = chooser.draw(st.lists(st.integers(0, len(points) - 1), min_size=crashes, max_size=crashes,
                                       unique=True))
        points = [points[i] for i in sorted(chosen)]
    return Scenario(reference, tracer.findings, points)


def crash_points(reference: Sim) -> list[Snapshot]:
    """A crash before anything was written, and one right after each journal write."""
    points = [Snapshot(-1, 0, START, {}, [], False)]
    for snapshot in reference.snapshots:
        if snapshot.written > points[-1].written:
            points.append(snapshot)
    return points


def verify(scenario: Scenario) -> None:
    """Raise AssertionError if any crash point of `scenario` recovers differently."""
    reference = scenario.reference
    if scenario.findings:
        raise CheckFailed(_sources_report(reference, scenario.findings))
    for point in scenario.points:
        recovered = Sim(reference.wf, reference.args, reference.kwargs, reference.setup,
                        workflow_id=reference.workflow_id, reference=reference)
        try:
            recovered.recover(point)
        except NondeterminismError as exc:
            # Not its message: that advises durable.version(), which is for code changes, not this.
            at = f" ({exc.location})" if exc.location else ""
            problem = (f"diverged from the journal written so far: at position {exc.position}{at} the recovered "
                       f"run {exc.yielded}{exc.detail}, where the journal recorded {exc.recorded}")
            raise CheckFailed(_report(reference, point, problem, None)) from None
        except Divergence as exc:
            raise CheckFailed(_report(reference, point, f"diverged: {exc}", None)) from None
        problem = compare(reference, recovered)
        if problem is not None:
            raise CheckFailed(_report(reference, point, problem, recovered))


def compare(reference: Sim, recovered: Sim) -> str | None:
    """What differs between the two runs' journals and results; None if nothing."""
    missing = sorted(set(reference.journal) - set(recovered.journal))
    extra = sorted(set(recovered.journal) - set(reference.journal))
    if missing or extra:
        return (f"wrote a different journal: positions {missing or 'none'} missing, "
                f"{extra or 'none'} extra")
    for position in sorted(reference.journal):
        a, b = reference.journal[position], recovered.journal[position]
        if a[:5] != b[:5] or not same(a.value, b.value):
            return (f"recorded {short(b.value)} at position {position}, where the uninterrupted run "
                    f"recorded {short(a.value)}")
    if reference.state != recovered.state or not same(reference.value, recovered.value) \
            or not same(reference.error, recovered.error):
        return (f"ended {render_outcome(recovered.state, recovered.value, recovered.error)}, the "
                f"uninterrupted run {render_outcome(reference.state, reference.value, reference.error)}")
    return None


def same(a: Any, b: Any) -> bool:
    """Equal values of the same type; exceptions by type and message."""
    if a is b:
        return True
    if isinstance(a, BaseException) or isinstance(b, BaseException):
        return type(a) is type(b) and str(a) == str(b)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return repr(a) == repr(b)


def _describe_run(reference: Sim, indent: str = "  ") -> str:
    args = ", ".join([*(short(a) for a in reference.args), *(f"{k}={short(v)}" for k, v in reference.kwargs.items())])
    steps = [f"{indent}  {i}. {step.describe()}" for i, step in enumerate(reference.steps, start=1)]
    lines = [
        f"{indent}call: {reference.wf.name}({args})",
        f"{indent}steps:" if steps else f"{indent}steps: none (it ran to its end or first wait at once)",
        *steps,
        f"{indent}journal:",
        render_journal(reference.written, indent=indent + "  ", lines=reference.lines),
        f"{indent}result: {render_outcome(reference.state, reference.value, reference.error)}"
        + (" (stopped after the step limit)" if reference.truncated else ""),
    ]
    return "\n".join(lines)


def _report(reference: Sim, point: Snapshot, problem: str, recovered: Sim | None) -> str:
    total = len(reference.written)
    if point.written == 0:
        when = "a crash before anything was written"
    else:
        when = f"a crash right after journal entry {point.written} of {total} was written"
    parts = [
        f"workflow {reference.wf.name!r} does not recover deterministically.",
        "",
        f"After {when}, the recovered run (it replays the journal written so far, then continues with "
        f"the same outcomes as the uninterrupted run) {problem}",
        "",
        f"Counterexample, the uninterrupted run {_SHRUNK}:",
        _describe_run(reference),
    ]
    if recovered is not None:
        parts += [
            "The recovered run:",
            "  journal:",
            render_journal(recovered.written, indent="    "),
            f"  result: {render_outcome(recovered.state, recovered.value, recovered.error)}",
        ]
    parts += ["", _ADVICE]
    return "\n".join(parts)


def _sources_report(reference: Sim, findings: list[Finding]) -> str:
    reads = "\n".join(f"  - {finding.describe()}" for finding in findings)
    return "\n".join([
        f"workflow {reference.wf.name!r} reads the clock or a random source directly, so a replay after "
        "a crash (in production, maybe days later) can take another path:",
        reads,
        "",
        "Run where it happened:",
        _describe_run(reference),
        "",
        _ADVICE,
    ])
