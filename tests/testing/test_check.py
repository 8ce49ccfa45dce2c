"""durable.testing.check: crash anywhere, recover by replay, expect the very same run."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import strategies as st

import durable
from durable import call, gather, now, race, receive, sleep, uuid
from durable.testing import check
from durable.testing.strategies import Outcome, failures

from .flows import (
    CALLS,
    Declined,
    charge,
    coin_flip,
    module_cache,
    module_state,
    office_hours,
    order,
    reg,
    reserve,
    ship,
    stopwatch,
)


def test_a_deterministic_saga_passes() -> None:
    check(order, "o-1", 4200, signals={"approve": st.sampled_from(["ann", "bob"])}, max_examples=40)


def test_it_calls_the_real_activities_by_default() -> None:
    CALLS.clear()
    check(order, "o-1", 4200, max_examples=5)
    assert ("reserve", "o-1") in CALLS


def test_fakes_and_outcome_strategies_replace_activities() -> None:
    CALLS.clear()
    check(
        order, "o-2", 4200,
        activities={
            charge: st.one_of(st.tuples(st.just("fake"), st.integers()), failures(Declined)),
            "tt.reserve": lambda order_id: f"fake-{order_id}",
            ship: st.builds(Outcome, st.just(True), st.fixed_dictionaries({"order": st.just("o-2")})),
        },
        max_examples=30,
    )
    assert not any(call_[0] in ("charge", "reserve", "ship") for call_ in CALLS)


def test_a_workflow_branching_on_the_random_module_is_caught() -> None:
    with pytest.raises(AssertionError) as info:
        check(coin_flip, max_examples=20)
    message = str(info.value)
    assert "'tt.coin' reads the clock or a random source directly" in message
    assert re.search(r"random\.random\(\) at tests/testing/flows\.py:\d+", message)
    assert "yield durable.random()" in message


def test_a_workflow_branching_on_the_wall_clock_is_caught() -> None:
    with pytest.raises(AssertionError, match=r"datetime\.now\(\) at tests/testing/flows\.py:\d+"):
        check(office_hours, max_examples=20)
    with pytest.raises(AssertionError, match=r"time\.time\(\) at tests/testing/flows\.py:\d+"):
        check(stopwatch, max_examples=20)


def test_nondeterminism_the_tracer_cannot_see_is_caught_by_crash_recovery() -> None:
    with pytest.raises(AssertionError) as info:
        check(module_state, max_examples=20)
    message = str(info.value)
    assert "'tt.module-state' does not recover deterministically" in message
    assert "After a crash before anything was written" in message
    assert re.search(r"at position 1 the recovered run yields call\(tt\.\w+\) \(tests/testing/flows\.py:\d+\), "
                     r"where the uninterrupted run yielded call\(tt\.\w+\)", message)


def test_the_counterexample_is_short_and_readable() -> None:
    with pytest.raises(AssertionError) as info:
        check(module_state, max_examples=20)
    message = str(info.value)
    journal = message.split("journal:\n", 1)[1].split("\n  result:", 1)[0]
    rows = journal.splitlines()
    assert rows[0].split() == ["pos", "kind", "name", "outcome"]
    assert len(rows) <= 3, journal  # shrunk: the two calls, nothing else
    assert "Draw 1" not in message  # hypothesis' raw draws stay out of it


def test_a_failure_hypothesis_cannot_reproduce_still_shows_its_counterexample() -> None:
    module_cache.fn.__globals__["_CACHE"].clear()  # the first run fills it, the recovery then skips a call
    with pytest.raises(AssertionError) as info:
        check(module_cache, "o-1", max_examples=30)
    message = str(info.value)
    assert "'tt.module-cache' behaves differently in two runs" in message
    assert "The first failure:" in message
    assert re.search(r"at position 0 the recovered run yields call\(tt\.charge\) \(tests/testing/flows\.py:\d+\), "
                     r"where the uninterrupted run yielded call\(tt\.reserve\)", message)
    assert "Counterexample, the uninterrupted run (not shrunk):" in message
    assert "0  call  tt.reserve" in message


_SECRET = [0]


@reg.workflow(name="tt.random-arguments")
def random_arguments() -> Any:
    _SECRET[0] += 1
    yield call(reserve, f"order-{_SECRET[0]}")  # the same effect, other arguments each run
    return "ok"


def test_arguments_that_differ_between_runs_are_caught() -> None:
    with pytest.raises(AssertionError, match="with other arguments"):
        check(random_arguments, max_examples=10)


_RESULTS = [0]


@reg.workflow(name="tt.random-result")
def random_result() -> Any:
    yield call(reserve, "x")
    _RESULTS[0] += 1
    return _RESULTS[0]


def test_a_result_that_differs_after_recovery_is_caught() -> None:
    with pytest.raises(AssertionError, match=r"ended completed -> \d+, the uninterrupted run completed -> \d+"):
        check(random_result, max_examples=10)


@reg.workflow(name="tt.everything")
def everything(n: int) -> Any:
    """Gathers, races, timers, signals, pure effects and a caught cancellation."""
    stamp = yield now()
    ids = yield gather(uuid(), durable.random(), call(reserve, "g"))
    try:
        index, value = yield race(receive("go"), sleep(30), call(reserve, "r"))
    except durable.ActivityError:
        index, value = -1, None
    seen = []
    for _ in range(n):
        try:
            seen.append((yield receive("item", timeout=60)))
        except durable.Timeout:
            seen.append("timeout")
        except durable.Cancelled:
            yield call(reserve, "compensate")
            return "cancelled"
    return [stamp.isoformat(), str(ids[0]), index, value, seen]


def test_composites_timers_signals_and_cancellation_pass() -> None:
    check(everything, 3, signals={"item": st.integers(0, 3)}, max_examples=60)


def test_crash_points_can_be_sampled() -> None:
    check(everything, 2, crashes=1, max_examples=20)
    with pytest.raises(ValueError, match="crashes"):
        check(everything, 1, crashes=0)


def test_bad_activity_specs_are_refused() -> None:
    with pytest.raises(TypeError, match="fake function or a hypothesis strategy"):
        check(order, "o", 1, activities={charge: 42})


@reg.workflow(name="tt.parent")
def parent() -> Any:
    child = yield call(coin_free_child, 2)
    return child + 1


@reg.workflow(name="tt.child")
def coin_free_child(n: int) -> Any:
    total = 0
    for i in range(n):
        total += len((yield call(reserve, str(i))))
    return total


def test_child_workflows_run_in_the_simulation() -> None:
    check(parent, max_examples=20)


async def test_check_works_inside_an_async_test() -> None:
    check(order, "o-3", 4200, max_examples=5)  # the async activity runs on a loop of its own


def test_check_respects_given_settings() -> None:
    from hypothesis import settings

    CALLS.clear()
    check(order, "o-4", 4200, max_examples=3, settings=settings(derandomize=True))
    first = list(CALLS)
    CALLS.clear()
    check(order, "o-4", 4200, max_examples=3, settings=settings(derandomize=True))
    assert CALLS == first


def test_random_branching_is_caught_by_crash_recovery_even_without_the_tracer(monkeypatch) -> None:
    import durable.testing.checker as checker
    from durable.testing.sources import Tracer

    class Blind(Tracer):
        def _profile(self, frame: Any, event: str, arg: Any) -> None:
            return None

    monkeypatch.setattr(checker, "Tracer", Blind)
    with pytest.raises(AssertionError, match="'tt.coin' does not recover deterministically"):
        check(coin_flip, max_examples=30)


def test_a_misspelt_fake_is_reported_instead_of_running_the_real_activity() -> None:
    with pytest.raises(ValueError) as info:
        check(order, "o-5", 4200, activities={"tt.reservee": lambda order_id: "fake"}, max_examples=5)
    message = str(info.value)
    assert "has a key 'tt.reservee'" in message and "Did you mean 'tt.reserve'?" in message
    assert "tt.charge" in message  # the names it did call
    with pytest.warns(UserWarning, match="'tt.unrelated'.*the fake was never used"):
        check(order, "o-5", 4200, activities={"tt.unrelated": lambda: None}, max_examples=3)


_INJECTED: list[str] = []


@reg.workflow(name="tt.must-succeed")
def must_succeed() -> Any:
    try:
        return (yield call(reserve, "x"))
    except durable.ActivityError as error:
        _INJECTED.append(error.message)  # the same in every run: only seen from outside
        return None


def test_fault_injection_can_be_turned_off_or_tuned() -> None:
    _INJECTED.clear()
    check(must_succeed, activities={reserve: lambda order: "fake"}, failures=False, max_examples=40)
    assert _INJECTED == []

    def never_called(order: str) -> str:
        raise AssertionError("every call fails by injection: the fake does not run")

    check(must_succeed, activities={reserve: never_called}, failures=1.0, max_examples=5)
    assert _INJECTED and all("made every attempt of tt.reserve fail" in m for m in _INJECTED)
    from durable.testing.world import Setup, Sim

    from .test_world import Simplest

    class Unlucky(Simplest):  # draws the highest number, where a rate's failures lie
        def draw(self, strategy: Any) -> Any:
            return 999 if "integers(min_value=0, max_value=999)" in repr(strategy) else super().draw(strategy)

    assert Sim(must_succeed, (), {}, Setup(inject=0.01, cancel=False), chooser=Unlucky()).run().value is None
    assert Sim(must_succeed, (), {}, Setup(inject=0.01, cancel=False), chooser=Simplest()).run().value == "res-x"
    with pytest.raises(ValueError, match="failures"):
        check(must_succeed, failures=2)


def test_a_divergence_in_the_replayed_prefix_does_not_advise_durable_version() -> None:
    from durable.testing.checker import Scenario, crash_points, verify
    from durable.testing.world import Setup, Sim

    from .test_world import Simplest

    reference = Sim(module_state, (), {}, Setup(inject=False, cancel=False), chooser=Simplest()).run()
    last = crash_points(reference)[-1]  # the recovery replays both entries, then the code branches otherwise
    with pytest.raises(AssertionError) as info:
        verify(Scenario(reference, [], [last]))
    message = str(info.value)
    assert "diverged from the journal written so far: at position 1" in message
    assert "durable.version()" not in message
