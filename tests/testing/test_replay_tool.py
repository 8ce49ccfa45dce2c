"""durable.testing.replay: drive workflow code over a recorded journal, running nothing."""

from __future__ import annotations

import datetime as dt
import uuid as _uuid
from pathlib import Path
from typing import Any

import pytest

import durable
from durable import call, receive, sleep, version
from durable.journal import Entry, Journal
from durable.testing import ReplayResult, export_journal, load_journal, replay

from .flows import CALLS, order, refund, reg, reserve


async def _recorded(engine: durable.Engine, *args: Any, cents: int = 4200, signals: bool = True) -> Journal:
    async with engine:
        handle = await engine.start(order, "o-1", cents, id="o-1")
        if signals:
            await engine.signal("o-1", "approve", "ann")
            await engine.signal("o-1", "hurry")
        await handle.result(timeout=5)
        return await engine.journal("o-1")


@pytest.fixture
def fresh_calls() -> None:
    CALLS.clear()


async def test_replays_a_finished_run_to_its_result_without_running_activities(memory_engine, fresh_calls) -> None:
    journal = await _recorded(memory_engine(registry=reg))
    CALLS.clear()
    result = replay(order, journal, "o-1", 4200)
    assert CALLS == []  # nothing ran
    assert isinstance(result, ReplayResult)
    assert result.state == "completed" and result.finished
    assert result.value["status"] == "shipped" and result.value["by"] == "ann"
    assert isinstance(result.value["request"], _uuid.UUID)
    assert result.replayed == len(journal) and result.position == journal[-1].position + 1
    assert result.outcome() == result.value
    assert set(result.lines) == {e.position for e in journal}
    assert all(at.startswith("tests/testing/flows.py:") for at in result.lines.values())


async def test_a_prefix_reports_the_effects_the_code_would_perform_next(memory_engine, fresh_calls) -> None:
    journal = await _recorded(memory_engine(registry=reg))
    ran = list(CALLS)
    gather_at = next(e.position for e in journal if e.kind == "call" and e.name == "tt.ship")
    result = replay(order, Journal(journal[:gather_at]), "o-1", 4200)
    assert result.state == "waiting" and not result.finished
    assert sorted(result.pending) == [gather_at, gather_at + 1]
    assert [e.describe() for e in result.pending.values()] == ["call(tt.ship)", "call(tt.reserve)"]
    assert "call(tt.ship) at position" in repr(result)
    with pytest.raises(RuntimeError, match="has not finished"):
        result.outcome()
    assert CALLS == ran  # reported, not run


async def test_recorded_failures_are_thrown_into_the_code_again(memory_engine) -> None:
    journal = await _recorded(memory_engine(registry=reg), cents=50_000, signals=False)
    assert journal[1].failed and isinstance(journal[1].value, durable.ActivityError)
    result = replay(order, journal, "o-1", 50_000)
    assert result.value == {"status": "declined", "why": "50000 is over the limit"}


def _entries(*rows: tuple) -> list[Entry]:
    return [Entry(*row) for row in rows]


def _digest(*args: Any) -> bytes:
    return durable.codecs.Pipeline().digest(args, {})


@reg.workflow(name="tt.two-steps")
def two_steps(order_id: str) -> Any:
    a = yield call(reserve, order_id)
    b = yield call(refund, a)
    return [a, b]


def test_changed_effect_raises_nondeterminism_naming_position_and_line() -> None:
    journal = _entries((0, "call", "tt.reserve", _digest("o"), False, "r"),
                       (1, "call", "tt.charge", _digest("r"), False, None))
    with pytest.raises(durable.NondeterminismError) as info:
        replay(two_steps, journal, "o")
    error = info.value
    assert error.position == 1 and error.recorded == "call(tt.charge)"
    assert "call(tt.refund)" in error.yielded
    assert error.location is not None and error.location.startswith("tests/testing/test_replay_tool.py:")


def test_changed_arguments_are_caught_by_the_plain_digest() -> None:
    journal = _entries((0, "call", "tt.reserve", _digest("o"), False, "r"))
    replay(two_steps, journal, "o")
    with pytest.raises(durable.NondeterminismError, match="other arguments"):
        replay(two_steps, journal, "p")


def test_code_that_returns_while_entries_remain_diverges() -> None:
    journal = _entries((0, "call", "tt.reserve", _digest("o"), False, "r"),
                       (1, "call", "tt.refund", _digest("r"), False, None),
                       (2, "sleep", "", b"", False, None))
    with pytest.raises(durable.NondeterminismError) as info:
        replay(two_steps, journal, "o")
    assert info.value.position == 2 and "returns" in info.value.yielded


@reg.workflow(name="tt.race-then-call")
def race_then_call() -> Any:
    index, _ = yield durable.race(receive("go"), sleep(10))
    yield call(reserve, "after")
    return index


@reg.workflow(name="tt.waits-on-a-gap")
def waits_on_a_gap() -> Any:
    yield receive("go")  # position 0 only: the race's timer (position 1) is gone
    yield sleep(10)
    yield call(reserve, "after")


def test_code_waiting_where_the_journal_went_on_diverges() -> None:
    journal = _entries((1, "sleep", "", b"", False, None), (2, "call", "tt.reserve", _digest("after"), False, "x"))
    assert replay(race_then_call, journal).value == 1
    with pytest.raises(durable.NondeterminismError) as info:
        replay(waits_on_a_gap, journal)
    assert info.value.position == 1 and "waits at position 0 on receive('go')" in info.value.yielded


def test_workflow_exceptions_and_cancellation_are_outcomes_not_errors() -> None:
    journal = _entries((0, "call", "tt.reserve", _digest("o"), False, "r"))

    @reg.workflow(name="tt.raises")
    def raises(order_id: str) -> Any:
        yield call(reserve, order_id)
        raise ValueError("boom")

    result = replay(raises, journal, "o")
    assert result.state == "failed" and isinstance(result.error, ValueError)
    with pytest.raises(ValueError, match="boom"):
        result.outcome()
    cancelled = replay(two_steps, _entries((0, "call", "tt.reserve", _digest("o"), True,
                                            durable.Cancelled("cancelled"))), "o")
    assert cancelled.state == "cancelled" and isinstance(cancelled.error, durable.Cancelled)


def test_version_markers_and_continue_as_new() -> None:
    @reg.workflow(name="tt.versioned")
    def versioned(n: int) -> Any:
        yield call(reserve, "first")
        if (yield version("new-step")):
            yield call(reserve, "new")
        yield call(refund, "last")
        return durable.continue_as_new(n + 1)

    first = (0, "call", "tt.reserve", _digest("first"), False, None)
    # Recorded under old code (no marker): version() gives 0 and takes no position.
    old = replay(versioned, _entries(first, (1, "call", "tt.refund", _digest("last"), False, None)), 1)
    assert old.state == "continued" and old.value.args == (2,)
    new = replay(versioned, _entries(first, (1, "version", "new-step", b"", False, 1),
                                     (2, "call", "tt.reserve", _digest("new"), False, None),
                                     (3, "call", "tt.refund", _digest("last"), False, None)), 1)
    assert new.state == "continued" and new.replayed == 4
    # Reached live, the marker is reported as what the code does next.
    live = replay(versioned, _entries(first), 1)
    assert live.state == "waiting" and [e.describe() for e in live.pending.values()] == ["version('new-step')"]


async def test_keyed_digests_are_checked_with_the_journal_key(memory_engine) -> None:
    key = b"k" * 32
    codecs = [durable.codecs.AESGCMCodec({"k1": key})]
    async with memory_engine(registry=reg, codecs=codecs) as engine:
        await (await engine.start(two_steps, "o", id="keyed")).result(timeout=5)
        journal = await engine.journal("keyed")
    assert journal.digest_key is not None and journal[0].digest[:1] == b"\x01"
    assert replay(two_steps, journal, "o").digests_checked
    with pytest.raises(durable.NondeterminismError, match="other arguments"):
        replay(two_steps, journal, "p")
    # Without the key the digests cannot be checked: say so rather than pretend.
    keyless = Journal(list(journal), workflow_id="keyed", workflow="tt.two-steps")
    assert replay(two_steps, keyless, "p").digests_checked is False


async def test_replays_an_exported_file_with_the_arguments_it_carries(memory_engine, tmp_path: Path) -> None:
    journal = await _recorded(memory_engine(registry=reg))
    path = tmp_path / "o-1.jsonl"
    export_journal(journal, path, args=("o-1", 4200), status="completed")
    by_path = replay(order, str(path))
    assert by_path.state == "completed" and by_path.value["by"] == "ann"
    assert replay(order, path).value == by_path.value
    assert replay(order, load_journal(path), "o-1", 4200).value == by_path.value
    with pytest.raises(durable.NondeterminismError):
        replay(order, path, "o-2", 4200)  # explicit arguments win over the file's


def test_replay_takes_plain_generator_functions_and_rejects_other_journals() -> None:
    def plain(order_id: str) -> Any:
        return (yield call(reserve, order_id))

    assert replay(plain, [(0, "call", "tt.reserve", _digest("o"), False, "r")], "o").value == "r"
    with pytest.raises(TypeError, match="replay\\(\\) takes a Journal"):
        replay(plain, 42, "o")


def test_a_virtual_clock_fixture_starts_at_a_fixed_time(virtual_clock) -> None:
    assert virtual_clock.datetime() == dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)



def _plain_digest(*args: Any) -> bytes:
    """Scheme 0 as journals recorded it before short-argument digests existed: BLAKE2b of the JSON."""
    import hashlib
    import json

    data = b"a=" + json.dumps(list(args), separators=(",", ":")).encode()
    return b"\x00" + hashlib.blake2b(data, digest_size=8, person=b"durable-args").digest()


def test_journals_recorded_with_plain_digests_of_short_arguments_still_replay() -> None:
    # Runs in flight keep the digests they were recorded with; a replay must check each
    # under its own scheme, whatever the engine would write for a new entry today.
    journal = _entries((0, "call", "tt.reserve", _plain_digest("o"), False, "r"),
                       (1, "call", "tt.refund", _plain_digest("r"), False, None))
    assert replay(two_steps, journal, "o").value == ["r", None]
