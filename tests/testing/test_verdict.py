"""Judging a code change against recorded journals: ok, compatible, incompatible (and how)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from durable import call, receive, sleep
from durable.registry import make_workflow
from durable.errors import NondeterminismError
from durable.journal import Journal
from durable.testing import assert_replays, export_journal, judge, load_journal, replay
from durable.testing.export import ExportedJournal
from durable.testing.world import Setup, Sim

from .flows import charge, refund, reserve
from .test_world import Simplest

NAME = "tv.order"


def v1(order_id: str) -> Any:
    reservation = yield call(reserve, order_id)
    receipt = yield call(charge, order_id, 100)
    yield sleep(60)
    yield call(refund, receipt)
    return reservation


def appended(order_id: str) -> Any:
    result = yield from v1(order_id)
    yield call(reserve, "one more")
    return result


def changed(order_id: str) -> Any:
    reservation = yield call(reserve, order_id)
    yield receive("approve")  # instead of the charge
    yield sleep(60)
    return reservation


def other_arguments(order_id: str) -> Any:
    reservation = yield call(reserve, order_id)
    receipt = yield call(charge, order_id, 999)
    yield sleep(60)
    yield call(refund, receipt)
    return reservation


def removed(order_id: str) -> Any:
    reservation = yield call(reserve, order_id)
    yield sleep(60)  # the charge is gone
    yield call(refund, None)
    return reservation


def reordered(order_id: str) -> Any:
    reservation = yield call(reserve, order_id)
    yield sleep(60)
    receipt = yield call(charge, order_id, 100)  # now after the sleep
    yield call(refund, receipt)
    return reservation


def ends_early(order_id: str) -> Any:
    reservation = yield call(reserve, order_id)
    return reservation


def no_more_sleep(order_id: str) -> Any:
    reservation = yield call(reserve, order_id)
    yield call(charge, order_id, 100)
    return reservation  # the sleep and the refund are gone


def _wf(fn: Any) -> Any:
    return make_workflow(fn, NAME)


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    """The journal of a finished v1 run, exported with source lines."""
    sim = Sim(_wf(v1), ("o-1",), {}, Setup(inject=False, cancel=False), chooser=Simplest()).run()
    path = tmp_path / "v1.jsonl"
    export_journal(sim.written, path, workflow=NAME, workflow_id="o-1", args=("o-1",), status="completed",
                   result=sim.value, lines=sim.lines)
    return path


@pytest.fixture
def in_flight(tmp_path: Path) -> Path:
    """The journal of a v1 run waiting on its sleep."""
    sim = Sim(_wf(v1), ("o-1",), {}, Setup(inject=False, cancel=False), chooser=Simplest())
    sim.start(())
    while len(sim.written) < 2:
        sim.apply(sim._make_step(*sim._options()[0]))
    path = tmp_path / "v1-waiting.jsonl"
    export_journal(sim.written, path, workflow=NAME, workflow_id="o-2", args=("o-1",), status="waiting")
    return path


def test_unchanged_code_is_ok(recorded: Path, in_flight: Path) -> None:
    done = judge(_wf(v1), recorded)
    assert (done.outcome, done.change, done.failed) == ("ok", "unchanged", False)
    waiting = judge(_wf(v1), in_flight)
    assert waiting.outcome == "ok" and "waits on sleep(60s)" in waiting.detail


def test_effects_after_the_recorded_tail_are_compatible(recorded: Path, in_flight: Path) -> None:
    verdict = judge(_wf(appended), recorded)
    assert (verdict.outcome, verdict.change) == ("compatible", "appended")
    assert "call(tt.reserve)" in verdict.detail
    early = judge(_wf(no_more_sleep), in_flight)  # removes only what the run has not reached
    assert (early.outcome, early.change) == ("compatible", "ends early")
    assert early.detail == ("the code now ends (completed) after the last recorded entry, where the recorded "
                            "run was waiting")


def test_a_changed_effect_is_incompatible_with_both_source_lines(recorded: Path) -> None:
    verdict = judge(_wf(changed), recorded)
    assert (verdict.outcome, verdict.change, verdict.position) == ("incompatible", "changed", 1)
    assert verdict.recorded == "call(tt.charge)" and verdict.yielded == "receive('approve')"
    assert verdict.recorded_at and verdict.recorded_at.startswith("tests/testing/test_verdict.py:")
    assert verdict.yielded_at and verdict.yielded_at.startswith("tests/testing/test_verdict.py:")
    assert verdict.recorded_at != verdict.yielded_at
    assert f"recorded at {verdict.recorded_at}; code now at {verdict.yielded_at}" in verdict.describe()


def test_changed_arguments(recorded: Path) -> None:
    verdict = judge(_wf(other_arguments), recorded)
    assert (verdict.outcome, verdict.change) == ("incompatible", "arguments changed")


def test_a_removed_effect(recorded: Path) -> None:
    verdict = judge(_wf(removed), recorded)
    assert (verdict.outcome, verdict.change, verdict.position) == ("incompatible", "removed", 1)
    assert "no longer performs call(tt.charge)" in verdict.detail


def test_a_reordered_effect(recorded: Path) -> None:
    verdict = judge(_wf(reordered), recorded)
    assert (verdict.outcome, verdict.change) == ("incompatible", "reordered")
    assert "call(tt.charge) (recorded at position 1) now comes after sleep(60s)" in verdict.detail


def test_code_that_ends_while_entries_remain(recorded: Path) -> None:
    verdict = judge(_wf(ends_early), recorded)
    assert (verdict.outcome, verdict.change, verdict.position) == ("incompatible", "removed", 1)
    assert "returns" in verdict.detail and "2 more entries" in verdict.detail


def test_journals_of_another_workflow_or_unreadable_files_are_errors(recorded: Path, tmp_path: Path) -> None:
    other = judge(make_workflow(v1, "tv.other"), recorded)
    assert (other.outcome, other.change) == ("error", "other workflow")
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{nope\n")
    assert judge(_wf(v1), broken).outcome == "error"


def test_assert_replays_over_a_directory(recorded: Path, in_flight: Path, tmp_path: Path) -> None:
    export_journal([], tmp_path / "someone-else.jsonl", workflow="tv.unrelated")
    verdicts = assert_replays(_wf(v1), tmp_path)  # the other workflow's journal is skipped
    assert [Path(v.label).name for v in verdicts] == ["v1-waiting.jsonl", "v1.jsonl"]
    with pytest.raises(AssertionError) as info:
        assert_replays(_wf(reordered), tmp_path)
    message = str(info.value)
    assert "2 of 2 recorded journals cannot be replayed by the current code of tv.order" in message
    assert "reordered" in message and "durable.version()" in message
    with pytest.raises(AssertionError, match="no journals of tv.missing"):
        assert_replays(make_workflow(v1, "tv.missing"), tmp_path)


# -- classifications the look-ahead, signatures and crashes decide -----------------------------


def swapped(order_id: str) -> Any:
    receipt = yield call(charge, order_id, 100)  # the charge now comes first
    reservation = yield call(reserve, order_id)
    yield sleep(60)
    yield call(refund, receipt)
    return reservation


def test_a_swap_right_before_where_the_run_waits_is_a_reorder(in_flight: Path) -> None:
    verdict = judge(_wf(swapped), in_flight)
    assert (verdict.outcome, verdict.change, verdict.position) == ("incompatible", "reordered", 0)
    assert "call(tt.reserve) (recorded at position 0) now comes after call(tt.charge)" in verdict.detail


def test_a_call_moved_past_the_wait_of_an_in_flight_run_is_a_reorder(in_flight: Path) -> None:
    verdict = judge(_wf(reordered), in_flight)  # the journal ends with the charge; it now follows the sleep
    assert (verdict.outcome, verdict.change, verdict.position) == ("incompatible", "reordered", 1)
    assert "call(tt.charge) (recorded at position 1) now comes after sleep(60s)" in verdict.detail


def test_removing_the_last_recorded_effect_is_a_removal(in_flight: Path) -> None:
    verdict = judge(_wf(removed), in_flight)
    assert (verdict.outcome, verdict.change, verdict.position) == ("incompatible", "removed", 1)
    assert "no longer performs call(tt.charge) (the last recorded entry)" in verdict.detail


def needs_region(order_id: str, region: str) -> Any:
    return (yield from v1(order_id))


def test_a_new_required_parameter_is_an_error_naming_it(recorded: Path) -> None:
    verdict = judge(_wf(needs_region), recorded)
    assert (verdict.outcome, verdict.change) == ("error", "arguments not accepted")
    assert "TypeError: needs_region() missing 1 required positional argument: 'region'" in verdict.detail
    with pytest.raises(NondeterminismError) as info:
        replay(_wf(needs_region), recorded)
    message = str(info.value)
    assert "cannot be called with the recorded arguments" in message and "'region'" in message


def crashes_after_the_charge(order_id: str) -> Any:
    yield call(reserve, order_id)
    receipt = yield call(charge, order_id, 100)
    raise KeyError(f"no region for {receipt[0]}")


def test_a_crash_past_the_tail_of_an_in_flight_run_is_incompatible(in_flight: Path) -> None:
    verdict = judge(_wf(crashes_after_the_charge), in_flight)
    assert (verdict.outcome, verdict.change, verdict.failed) == ("incompatible", "now fails", True)
    assert "after the last recorded entry the code now raises KeyError: 'no region for ch-o-1'" in verdict.detail
    assert verdict.yielded_at and verdict.yielded_at.startswith("tests/testing/test_verdict.py:")
    assert "where the recorded run was waiting" in verdict.detail


def test_a_crash_where_entries_remain_names_the_exception(recorded: Path) -> None:
    verdict = judge(_wf(crashes_after_the_charge), recorded)
    assert (verdict.outcome, verdict.change, verdict.position) == ("incompatible", "now fails", 2)
    assert "raises KeyError: 'no region for ch-o-1' at position 2" in verdict.detail
    assert "and 1 more entry (" in verdict.detail  # not "1 more entries"


def test_an_unknown_recorded_line_says_why(in_flight: Path, recorded: Path) -> None:
    from_file = judge(_wf(other_arguments), in_flight)  # exported without lines
    assert "recorded at: unknown (exported without --workflow" in from_file.detail
    assert "code now at tests/testing/test_verdict.py:" in from_file.detail
    journal = ExportedJournal(list(load_journal(recorded)), workflow="tv.order", workflow_id="o-1",
                              args=("o-1",), status="completed")  # as `durable replay --store` reads one
    from_store = judge(_wf(other_arguments), journal)
    assert "recorded at: unknown (the journal carries no source lines; stores keep none)" in from_store.detail


def test_a_renamed_workflow_is_told_about_the_journals_of_its_old_name(recorded: Path, in_flight: Path,
                                                                        tmp_path: Path) -> None:
    with pytest.raises(AssertionError) as info:
        assert_replays(make_workflow(v1, "tv.order-v2"), tmp_path)
    message = str(info.value)
    assert "no journals of tv.order-v2 found" in message
    assert "found 2 journals of 'tv.order': did the workflow's name change?" in message


def test_a_journal_without_arguments_says_so() -> None:
    verdict = judge(_wf(v1), Journal([], workflow="tv.order"))
    assert (verdict.outcome, verdict.change) == ("error", "arguments not accepted")
    assert "the journal carries no arguments" in verdict.detail
