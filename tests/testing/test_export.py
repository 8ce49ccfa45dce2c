"""The journal export format: versioned JSON lines that load back with the same types."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import uuid as _uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

import durable
from durable import call, receive
from durable.errors import describe_type
from durable.journal import Entry, Journal
from durable.testing import FORMAT, VERSION, dumps_journal, export_journal, load_journal, loads_journal, replay
from durable.testing.export import export_workflow, failure_record
from durable.testing.strategies import recordable_values

from .flows import Declined, charge, reg, reserve

DECLINED = describe_type(Declined)


@dataclasses.dataclass(frozen=True)
class Parcel:
    weight: Decimal
    tags: frozenset[str]


VALUES: list[Any] = [
    ("a", 1),
    {1: "int key", "s": {"x", "y"}},
    dt.datetime(2024, 2, 29, 12, 30, tzinfo=dt.timezone.utc),
    dt.date(2024, 1, 1),
    dt.timedelta(days=7),
    _uuid.UUID(int=7),
    b"\x00\xffbytes",
    Decimal("12.50"),
    Parcel(Decimal("1.5"), frozenset({"fragile"})),
    2**80,
    float("inf"),
    {"~": "looks like a tag"},
    None,
]


def _journal(values: list[Any]) -> Journal:
    entries = [Entry(i, "call", "tt.reserve", bytes([0, i]) + b"\x01" * 7, False, v) for i, v in enumerate(values)]
    return Journal(entries, workflow_id="wf-1", workflow="tt.order", run=2, digest_key=b"\x07" * 32)


def test_header_then_one_line_per_entry() -> None:
    text = dumps_journal(_journal(["x", "y"]), args=("o-1", 5), kwargs={"fast": True}, status="waiting",
                         lines={1: "flows.py:9"})
    lines = text.splitlines()
    header = json.loads(lines[0])
    assert header == {"format": FORMAT, "version": VERSION, "workflow_id": "wf-1", "workflow": "tt.order",
                      "run": 2, "digest_key": "07" * 32, "args": ["o-1", 5], "kwargs": {"fast": True},
                      "status": "waiting"}
    first, second = (json.loads(line) for line in lines[1:])
    assert first == {"position": 0, "kind": "call", "name": "tt.reserve", "digest": "0000" + "01" * 7,
                     "failed": False, "value": "x"}
    assert second["at"] == "flows.py:9"


def test_values_load_back_with_the_same_types() -> None:
    loaded = loads_journal(dumps_journal(_journal(VALUES), args=(("t", 1),), kwargs={"when": VALUES[2]}))
    assert [e.value for e in loaded] == VALUES
    assert [type(e.value) for e in loaded] == [type(v) for v in VALUES]
    assert loaded.args == (("t", 1),) and loaded.kwargs == {"when": VALUES[2]}
    assert (loaded.workflow_id, loaded.workflow, loaded.run, loaded.digest_key) == ("wf-1", "tt.order", 2, b"\x07" * 32)
    assert [e[:5] for e in loaded] == [e[:5] for e in _journal(VALUES)]


@settings(max_examples=60, deadline=None)
@given(recordable_values())
def test_any_recordable_value_round_trips(value: Any) -> None:
    [entry] = loads_journal(dumps_journal([Entry(0, "now", "", b"", False, value)]))
    assert entry.value == value and type(entry.value) is type(value)


def test_failures_come_back_as_the_exceptions_the_engine_throws() -> None:
    errors: list[BaseException] = [
        durable.ActivityError(type=DECLINED, message="no", attempts=3, cause=Declined("no")),
        durable.Timeout("receive('x') timed out after 5s"),
        durable.Cancelled("cancelled"),
        durable.ChildWorkflowError(workflow_id="p/3", type="ValueError", message="bad", cause=ValueError("bad")),
    ]
    entries = [Entry(i, "call", "tt.charge", b"", True, e) for i, e in enumerate(errors)]
    loaded = loads_journal(dumps_journal(Journal(entries, workflow_id="w")))
    assert [type(e.value) for e in loaded] == [type(e) for e in errors]
    activity = loaded[0].value
    assert (activity.type, activity.message, activity.attempts) == (DECLINED, "no", 3)
    assert isinstance(activity.cause, Declined) and activity.position == 0 and activity.workflow_id == "w"
    assert isinstance(loaded[3].value.cause, ValueError) and loaded[3].value.workflow_id == "p/3"
    assert failure_record(durable.Timeout("t"))["origin"] == "timeout"


@pytest.mark.parametrize("text, message", [
    ("", "empty file"),
    ('{"format": "other", "version": 1}\n', "not a durable journal export"),
    ('{"format": "durable-journal", "version": 99}\n', "version 99; this durable reads up to version 1"),
    ('{"format": "durable-journal", "version": 1}\nnot json\n', ":2: not valid JSON"),
    ('{"format": "durable-journal", "version": 1}\n{"kind": "call"}\n', ":2: not a journal entry"),
    ('{"format": "durable-journal", "version": 1}\n'
     '{"position": 1, "kind": "sleep", "name": "", "failed": false, "value": null}\n'
     '{"position": 0, "kind": "sleep", "name": "", "failed": false, "value": null}\n',
     ":3: position 0 is out of order"),
])
def test_bad_files_are_refused_saying_where(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        loads_journal(text, source="j.jsonl")


def test_unknown_keys_are_ignored_so_additions_stay_readable() -> None:
    text = ('{"format": "durable-journal", "version": 1, "workflow": "w", "future": 1}\n'
            '{"position": 0, "kind": "uuid", "name": "", "digest": "", "failed": false, "value": null, "new": 2}\n')
    loaded = loads_journal(text)
    assert loaded.workflow == "w" and loaded.args is None and loaded[0].kind == "uuid"


def test_files_and_open_handles(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    export_journal(_journal(["a"]), path)
    assert load_journal(path)[0].value == "a" and load_journal(path).source == str(path)
    buffer = io.StringIO()
    export_journal(_journal(["b"]), buffer)
    buffer.seek(0)
    assert load_journal(buffer)[0].value == "b"


def test_stored_rows_are_refused() -> None:
    from durable.journal import StoredEntry

    with pytest.raises(TypeError, match="decoded entries"):
        dumps_journal([StoredEntry(0, "now", "", b"", False, b"\x01j=1")])


@reg.workflow(name="tt.export-me")
def export_me(order_id: str, cents: int) -> Any:
    receipt = None
    try:
        receipt = yield call(charge, order_id, cents)
    except durable.ActivityError:
        pass
    note = yield receive("note")
    return {"receipt": receipt, "note": note, "reserved": (yield call(reserve, order_id))}


async def test_export_workflow_carries_arguments_status_outcome_and_lines(memory_engine) -> None:
    async with memory_engine(registry=reg) as engine:
        handle = await engine.start(export_me, "o-9", 20_000, id="exp-1")
        await engine.signal("exp-1", "note", ("a", dt.date(2024, 1, 2)))
        await handle.result(timeout=5)
        text = await export_workflow(engine, "exp-1", fn=export_me)
    loaded = loads_journal(text)
    assert loaded.args == ("o-9", 20_000) and loaded.kwargs == {}
    assert loaded.status == "completed" and loaded.result["note"] == ("a", dt.date(2024, 1, 2))
    assert isinstance(loaded[0].value, durable.ActivityError)
    assert sorted(loaded.lines) == [0, 1, 2] and all("test_export.py" in at for at in loaded.lines.values())
    assert replay(export_me, loaded).value == loaded.result


async def test_export_of_a_failed_workflow_records_its_failure(memory_engine) -> None:
    @reg.workflow(name="tt.fails")
    def fails() -> Any:
        yield call(reserve, "x")
        raise Declined("nope")

    async with memory_engine(registry=reg) as engine:
        with pytest.raises(durable.WorkflowFailedError):
            await (await engine.start(fails, id="exp-2")).result(timeout=5)
        loaded = loads_journal(await export_workflow(engine, "exp-2"))
    assert loaded.status == "failed"
    assert loaded.failure["type"].endswith("Declined") and loaded.failure["message"] == "nope"
