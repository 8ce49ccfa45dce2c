"""durable.testing.replay and check — DESIGN.md 'Testing (durable.testing)'."""

from __future__ import annotations

import random as stdlib_random

import pytest

import durable
from durable import activity, call, receive, uuid
from durable.testing import check, replay

from .conftest import memory_engine, wait_status

LOG: list = []


@pytest.fixture(autouse=True)
def _reset():
    LOG.clear()
    yield


@activity(name="tt.step")
def step(x):
    LOG.append(x)
    return x * 10


def original(n):
    a = yield call(step, n)
    u = yield uuid()
    b = yield call(step, n + 1)
    return [a, b, str(u)]


def diverged(n):
    a = yield call(step, n)
    u = yield uuid()
    b = yield call(step, n + 2)  # different argument at position 2
    return [a, b, str(u)]


def returns_early(n):
    a = yield call(step, n)
    return [a]


def goes_further(n):
    a = yield call(step, n)
    u = yield uuid()
    b = yield call(step, n + 1)
    c = yield receive("more")
    return [a, b, str(u), c]


async def _recorded_journal():
    reg = durable.Registry()
    wf = reg.workflow(name="tt.original")(original)
    async with memory_engine(reg) as engine:
        result = await (await engine.start(wf, 1, id="tt-1")).result(timeout=2)
        journal = await engine.journal("tt-1")
    LOG.clear()
    return result, journal


async def test_replay_of_the_same_code_reaches_the_same_result_without_running_activities() -> None:
    result, journal = await _recorded_journal()
    replayed = replay(original, journal, 1)
    assert replayed.value == result
    assert LOG == []


async def test_replay_raises_nondeterminismerror_where_code_and_journal_part_ways() -> None:
    _, journal = await _recorded_journal()
    with pytest.raises(durable.NondeterminismError) as info:
        replay(diverged, journal, 1)
    message = str(info.value)
    assert "2" in message
    assert "tt.step" in message
    assert "test_testing_api.py:" in message  # the source line of the yield
    assert LOG == []


async def test_replay_of_code_that_returns_while_entries_remain_is_nondeterminism() -> None:
    _, journal = await _recorded_journal()
    with pytest.raises(durable.NondeterminismError):
        replay(returns_early, journal, 1)


async def test_replay_reports_effects_past_the_recorded_tail_without_running_them() -> None:
    _, journal = await _recorded_journal()
    replayed = replay(goes_further, journal, 1)
    assert LOG == []
    assert "more" in repr(replayed.describe_pending() if hasattr(replayed, "describe_pending") else replayed)


def test_check_passes_for_a_deterministic_workflow() -> None:
    reg = durable.Registry()
    wf = reg.workflow(name="tt.det")(original)
    check(wf, 1, max_examples=10)


def test_check_fails_for_a_workflow_that_branches_on_the_random_module() -> None:
    def sneaky(n):
        if stdlib_random.random() < 0.5:
            yield call(step, n)
        else:
            yield uuid()
        return "done"

    reg = durable.Registry()
    wf = reg.workflow(name="tt.sneaky")(sneaky)
    with pytest.raises(AssertionError):
        check(wf, 1, max_examples=20)


async def test_replay_of_a_journal_read_from_a_waiting_workflow() -> None:
    reg = durable.Registry()
    wf = reg.workflow(name="tt.waiting")(goes_further)
    async with memory_engine(reg) as engine:
        await engine.start(wf, 1, id="tt-wait")
        await wait_status(engine, "tt-wait", "waiting")
        journal = await engine.journal("tt-wait")
    LOG.clear()
    replay(goes_further, journal, 1)
    assert LOG == []
