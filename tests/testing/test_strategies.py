"""Hypothesis strategies for workflow tests, and one property of our own built from them."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

import durable
from durable import race, receive, sleep
from durable.codecs import JsonSerializer
from durable.testing.strategies import (
    InjectedFailure,
    Outcome,
    activity_outcomes,
    failures,
    race_winners,
    recordable_values,
    signal_arrivals,
    timer_firings,
)


@settings(max_examples=50, deadline=None)
@given(recordable_values())
def test_recordable_values_round_trip_through_the_default_serializer(value: Any) -> None:
    serializer = JsonSerializer()
    back = serializer.decode(serializer.encode(value))
    assert back == value and type(back) is type(value)


@settings(max_examples=30, deadline=None)
@given(failures(ValueError, KeyError, messages=st.just("m")), activity_outcomes(st.integers()))
def test_failures_and_outcomes(error: BaseException, outcome: Outcome) -> None:
    assert type(error) in (ValueError, KeyError) and error.args == ("m",)
    assert isinstance(outcome, Outcome)
    assert isinstance(outcome.value, int) if outcome.ok else isinstance(outcome.value, InjectedFailure)


def test_outcomes_shrink_toward_success_and_of_reads_any_draw() -> None:
    assert find(activity_outcomes(st.integers()), lambda _: True) == Outcome(True, 0)
    assert Outcome.of(3) == Outcome(True, 3)
    error = ValueError("x")
    assert Outcome.of(error) == Outcome(False, error)
    assert Outcome.of(Outcome(False, error)).ok is False
    with pytest.raises(TypeError, match="exception classes"):
        failures(int)  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None)
@given(signal_arrivals({"approve": st.sampled_from(["ann", "bob"]), "cancel": None}, max_size=4),
       signal_arrivals(["ping"], min_size=1, max_size=2))
def test_signal_arrivals(arrivals: list[tuple[str, Any]], pings: list[tuple[str, Any]]) -> None:
    assert len(arrivals) <= 4
    for name, payload in arrivals:
        assert (name, payload) in {("approve", "ann"), ("approve", "bob"), ("cancel", None)}
    assert 1 <= len(pings) <= 2 and all(p == ("ping", None) for p in pings)


def test_signal_arrivals_need_a_name() -> None:
    with pytest.raises(ValueError, match="at least one signal"):
        signal_arrivals({})


@settings(max_examples=30, deadline=None)
@given(timer_firings(max_size=3, max_gap=dt.timedelta(hours=1)),
       race_winners(race(receive("a"), sleep(1), sleep(2))), race_winners(2))
def test_timer_firings_and_race_winners(gaps: list[dt.timedelta], winner: int, other: int) -> None:
    assert len(gaps) <= 3 and all(dt.timedelta(0) <= gap <= dt.timedelta(hours=1) for gap in gaps)
    assert 0 <= winner <= 2 and 0 <= other <= 1


def test_race_winners_need_members() -> None:
    with pytest.raises(ValueError, match="at least one member"):
        race_winners(0)


reg = durable.Registry()


@reg.workflow(name="ts.collect")
def collect(count: int) -> Any:
    seen = []
    while len(seen) < count:
        index, value = yield race(receive("item"), receive("stop"), sleep(dt.timedelta(hours=1)))
        if index == 1:
            break
        seen.append(value if index == 0 else "tick")
    return seen


@settings(max_examples=15, deadline=None)
@given(signal_arrivals({"item": st.integers(0, 9)}, min_size=1, max_size=3), timer_firings(max_size=2))
def test_a_property_of_our_own_on_a_real_engine(arrivals: list[tuple[str, Any]], gaps: list[dt.timedelta]) -> None:
    """Signals sent before the workflow waits are kept and come out oldest first."""

    async def scenario() -> Any:
        clock = durable.VirtualClock(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), skip_when_idle=False)
        async with durable.Engine("memory:", registry=reg, clock=clock) as engine:
            for name, payload in arrivals:
                await engine.signal((await engine.start(collect, len(arrivals), id="c")).id, name, payload)
            for gap in gaps:
                clock.advance(gap)
            return await engine.result("c", timeout=5)

    seen = asyncio.run(scenario())
    items = [v for v in seen if v != "tick"]  # a timer may fire first if the clock moved early
    assert len(seen) == len(arrivals) and items == [p for _, p in arrivals][: len(items)]
