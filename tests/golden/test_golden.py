"""Golden journals recorded from the examples replay against the current code, on every run.

They stand for runs in flight under older code: if one stops replaying, a
deploy of this change would block such runs. Regenerate them (see
regenerate.py) only for a change that is meant to break compatibility.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from durable import call
from durable.registry import make_workflow
from durable.testing import assert_replays, load_journal, replay

from .regenerate import GOLDEN, SCENARIOS, load_examples, record

EXAMPLES = load_examples()
WORKFLOWS = [EXAMPLES["order_saga"].order_saga, EXAMPLES["email_loop"].email_loop, EXAMPLES["approval"].approval]
BY_NAME = {wf.name: wf for wf in WORKFLOWS}
FILES = sorted(GOLDEN.glob("*.jsonl"))


def test_every_scenario_has_a_checked_in_journal() -> None:
    assert {path.stem for path in FILES} == set(SCENARIOS)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_golden_journal_replays(path: Path) -> None:
    journal = load_journal(path)
    result = replay(BY_NAME[journal.workflow], journal)  # arguments come from the file
    assert result.replayed == len(journal)
    if journal.status == "completed":
        assert result.state == "completed"
        assert result.value == journal.result
    else:
        assert journal.status == "waiting"
        assert result.state == "waiting" and result.pending, result
        assert min(result.pending) > journal[-1].position


def test_all_golden_journals_in_one_call() -> None:
    verdicts = assert_replays(WORKFLOWS, GOLDEN)
    assert len(verdicts) == len(FILES)
    assert {v.outcome for v in verdicts} == {"ok"}


async def test_regenerating_records_journals_that_replay(tmp_path: Path) -> None:
    written = await record(tmp_path)
    assert sorted(p.name for p in written) == [p.name for p in FILES]
    for path in written:
        fresh = load_journal(path)
        assert fresh.lines and all(at.startswith("examples/") for at in fresh.lines.values())
        assert replay(BY_NAME[fresh.workflow], fresh).replayed == len(fresh)


def _charge_first(order_id: str, items: list[str], cents: int) -> Any:
    saga = EXAMPLES["order_saga"]
    charge = yield call(saga.charge_card, order_id, cents)  # moved before the reservation
    reservation = yield call(saga.reserve_stock, order_id, items)
    tracking = yield call(saga.ship, order_id, items)
    return {"order": order_id, "status": "shipped", "tracking": tracking, "refs": [charge, reservation]}


def test_a_change_that_breaks_runs_in_flight_is_caught() -> None:
    changed = make_workflow(_charge_first, "order_saga")
    with pytest.raises(AssertionError) as info:
        assert_replays(changed, GOLDEN)
    message = str(info.value)
    assert "3 of 3 recorded journals cannot be replayed by the current code of order_saga" in message
    assert "reordered" in message and "recorded at examples/order_saga.py:" in message
