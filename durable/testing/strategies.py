"""Hypothesis strategies for testing workflows.

`check` uses these to pick outcomes; they also serve properties of your
own, for instance a test that drives an Engine on a `VirtualClock` through
`signal_arrivals(...)` and `timer_firings()`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from ..effects import Race

__all__ = [
    "InjectedFailure",
    "Outcome",
    "activity_outcomes",
    "failures",
    "race_winners",
    "recordable_values",
    "signal_arrivals",
    "timer_firings",
]


class InjectedFailure(Exception):
    """The failure `check` injects into an activity: every attempt failed."""


class Outcome(NamedTuple):
    """How an activity ends: `ok` with its `value`, or not with `value` the exception it raised."""

    ok: bool
    value: Any

    @classmethod
    def of(cls, drawn: Any) -> Outcome:
        """An Outcome from what a strategy drew: an Outcome, an exception (a failure) or a value."""
        if isinstance(drawn, Outcome):
            return drawn
        if isinstance(drawn, BaseException):
            return cls(False, drawn)
        return cls(True, drawn)


def recordable_values(*, max_leaves: int = 8) -> SearchStrategy[Any]:
    """Values the default JsonSerializer records type-faithfully (nested lists, dicts, tuples...)."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=20),
        st.binary(max_size=16),
        st.uuids(),
        st.decimals(allow_nan=False, allow_infinity=False, places=2),
        st.datetimes(timezones=st.just(_dt.timezone.utc)),
        st.dates(),
        st.timedeltas(),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.tuples(inner, inner),
            st.dictionaries(st.text(max_size=8), inner, max_size=4),
        ),
        max_leaves=max_leaves,
    )


def failures(*types: type[BaseException], messages: SearchStrategy[str] | None = None) -> SearchStrategy[BaseException]:
    """Exceptions of `types` (default RuntimeError) with messages from `messages`."""
    kinds = types or (RuntimeError,)
    for kind in kinds:
        if not (isinstance(kind, type) and issubclass(kind, BaseException)):
            raise TypeError(f"failures() takes exception classes, got {kind!r}")
    texts = messages if messages is not None else st.text(max_size=20)
    return st.builds(lambda kind, text: kind(text), st.sampled_from(kinds), texts)


def activity_outcomes(
    values: SearchStrategy[Any] | None = None,
    errors: SearchStrategy[BaseException] | None = None,
) -> SearchStrategy[Outcome]:
    """Successes with `values` (default `recordable_values()`) and failures with `errors`.

    Successes come first, so a failing example shrinks toward the happy path.
    """
    ok = st.builds(Outcome, st.just(True), values if values is not None else recordable_values())
    bad = st.builds(Outcome, st.just(False), errors if errors is not None else failures(InjectedFailure))
    return st.one_of(ok, bad)


def signal_arrivals(
    signals: Mapping[str, Any] | Sequence[str], *, min_size: int = 0, max_size: int = 5
) -> SearchStrategy[list[tuple[str, Any]]]:
    """Orders in which signals arrive: lists of `(name, payload)`.

    `signals` maps each name to a strategy for its payload (or a fixed
    payload); a plain list of names sends None payloads.
    """
    if not isinstance(signals, Mapping):
        signals = {name: None for name in signals}
    if not signals:
        raise ValueError("signal_arrivals() needs at least one signal name")
    options = [
        st.tuples(st.just(name), payload if isinstance(payload, SearchStrategy) else st.just(payload))
        for name, payload in signals.items()
    ]
    return st.lists(st.one_of(options), min_size=min_size, max_size=max_size)


def timer_firings(
    *, max_size: int = 5, max_gap: _dt.timedelta = _dt.timedelta(days=30)
) -> SearchStrategy[list[_dt.timedelta]]:
    """Successive advances of a virtual clock (each up to `max_gap`), to fire timers in between.

    Apply them with `clock.advance(gap)`; small gaps and exact deadlines come first when shrinking.
    """
    seconds = int(max_gap.total_seconds())
    gaps = st.integers(min_value=0, max_value=seconds).map(lambda s: _dt.timedelta(seconds=s))
    return st.lists(gaps, max_size=max_size)


def race_winners(race: Race | int) -> SearchStrategy[int]:
    """Which member of a race finishes first: an index (the lowest first when shrinking)."""
    size = len(race.effects) if isinstance(race, Race) else int(race)
    if size < 1:
        raise ValueError("a race has at least one member")
    return st.integers(min_value=0, max_value=size - 1)

