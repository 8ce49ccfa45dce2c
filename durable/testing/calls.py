"""How the simulated world finishes a call: the real activity, a fake, a strategy, or an injected fault.

The outcome is what the workflow would see once the engine is done with the
call, retries included, as a journal entry: values and failure records go
through the serializer, so the generator gets exactly what a replay would
decode.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from ..codecs.json import JsonSerializer
from ..driver import Leaf
from ..effects import Call
from ..engine.activity import ActivityInfo, _current, idempotency_key
from ..errors import SerializationError
from ..journal import Entry, activity_failure, child_failure, failure_exception, record_of
from .export import pack, unpack
from .strategies import InjectedFailure, Outcome

__all__ = ["Calls", "Stuck", "failure_entry", "injection_rate", "round_trip"]

_json = JsonSerializer()
_FOREVER_ATTEMPTS = 5  # Retry(attempts=None): after this many failures, treat it as never finishing
# By default one activity call in four fails by injection: rare enough that most runs
# reach the end of the workflow, frequent enough to try every handler. 0 shrinks to success.
DEFAULT_FAILURE_RATE = 0.25
_INJECT = st.integers(0, 3)
_INJECT_FINE = st.integers(0, 999)  # other rates, in thousandths


def injection_rate(failures: bool | float) -> float:
    """The share of calls `check(failures=...)` makes fail: True is the default rate, False none."""
    if failures is True:
        return DEFAULT_FAILURE_RATE
    if failures is False or failures is None:
        return 0.0
    if isinstance(failures, (int, float)) and 0.0 <= failures <= 1.0:
        return float(failures)
    raise ValueError(f"check(failures=...) takes True, False or a probability from 0 to 1, got {failures!r}")


class Stuck(Exception):
    """The chosen call will never finish (it retries forever, or a child waits forever)."""


class Calls:
    """Produces call outcomes for one simulated workflow run."""

    def __init__(self, activities: dict[str, Any], inject: bool | float, chooser: Any, workflow_id: str,
                 workflow: str, run_child: Callable[[Leaf, str], Entry]) -> None:
        self.activities = activities
        self.rate = injection_rate(inject)
        self.chooser = chooser
        self.workflow_id = workflow_id
        self.workflow = workflow
        self.run_child = run_child

    def outcome(self, leaf: Leaf) -> Entry:
        """The final outcome of the call at `leaf`, as a journal entry; `Stuck` if there is none."""
        effect: Call = leaf.effect  # type: ignore[assignment]
        target = effect.target
        child_id = effect.id or f"{self.workflow_id}/{leaf.position}" if effect.is_child else None
        policy = None if effect.is_child else (effect.retry or target.retry)  # type: ignore[union-attr]
        attempts = (policy.attempts or 1) if policy is not None else 1

        def failed(error: BaseException, tries: int) -> Entry:
            record = child_failure(child_id, record_of(error)) if child_id else activity_failure(error, tries)
            return failure_entry(self.workflow_id, leaf, record)

        spec = self.activities.get(target.name)
        if isinstance(spec, SearchStrategy):
            drawn = Outcome.of(self.chooser.draw(spec))
            return self.success(leaf, drawn.value, attempts) if drawn.ok else failed(drawn.value, attempts)
        if child_id and spec is None:
            return self.run_child(leaf, child_id)
        if self._injected():
            return failed(InjectedFailure(f"durable.testing.check made every attempt of {target.name} fail"),
                          attempts)
        fn = spec if spec is not None else target.fn
        attempt = 0
        while True:
            attempt += 1
            try:
                value = self._invoke(fn, effect, leaf.position, attempt)
            except Exception as exc:
                if policy is None or policy.gives_up(attempt, exc):
                    return failed(exc, attempt)
                if policy.attempts is None and attempt >= _FOREVER_ATTEMPTS:
                    raise Stuck() from None
                continue
            return self.success(leaf, value, attempt)

    def _injected(self) -> bool:
        """Whether hypothesis makes this call fail (every attempt), at the configured rate."""
        rate = self.rate
        if rate <= 0.0:
            return False
        if rate >= 1.0:
            return True
        if rate == DEFAULT_FAILURE_RATE:
            return self.chooser.draw(_INJECT) == 3
        return self.chooser.draw(_INJECT_FINE) >= 1000 - round(rate * 1000)

    def success(self, leaf: Leaf, value: Any, attempt: int) -> Entry:
        try:
            value = round_trip(value)
        except SerializationError as exc:  # as the engine does: retrying cannot help
            return failure_entry(self.workflow_id, leaf, activity_failure(exc, attempt))
        return Entry(leaf.position, "call", leaf.effect.name, leaf.digest, False, value)  # type: ignore[attr-defined]

    def _invoke(self, fn: Callable[..., Any], effect: Call, position: int, attempt: int) -> Any:
        info = _activity_info(workflow_id=self.workflow_id, workflow=self.workflow, run=0, position=position,
                              activity=effect.name, attempt=attempt,
                              idempotency_key=idempotency_key(self.workflow_id, 0, position))
        context = contextvars.copy_context()
        context.run(_current.set, info)  # so activities can call durable.activity_info()
        result = context.run(fn, *effect.args, **effect.kwargs)
        if asyncio.iscoroutine(result):
            result = _await(result, context)
        return result


def failure_entry(workflow_id: str, leaf: Leaf, record: dict[str, Any]) -> Entry:
    """A failed outcome at `leaf` holding the exception the engine would throw for `record`."""
    effect = leaf.effect
    name = effect.name if effect.kind in ("call", "receive") else ""  # type: ignore[attr-defined]
    record = unpack(pack(record))  # what the store would give back
    error = failure_exception(record, workflow_id=workflow_id, position=leaf.position, name=name)
    return Entry(leaf.position, effect.kind, name, leaf.digest, True, error)


def round_trip(value: Any) -> Any:
    """`value` as a replay would decode it."""
    return _json.decode(_json.encode(value))


def _activity_info(**facts: Any) -> ActivityInfo:
    # Pass what this version of ActivityInfo takes (some facts may be derived properties).
    accepted = inspect.signature(ActivityInfo).parameters
    return ActivityInfo(**{k: v for k, v in facts.items() if k in accepted})


def _await(coro: Any, context: contextvars.Context) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return context.run(asyncio.run, coro)
    # Called from async code (an async test): run the activity on a loop of its own.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(context.run, asyncio.run, coro).result()
