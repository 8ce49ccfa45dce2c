"""Ids and names no store can keep are refused, whole, before anything changes (every store)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from durable.store import NewWorkflow, Store, StoredEntry, Write

LONE = "\ud800"  # a lone surrogate: a str, but not Unicode text (no UTF-8 form)


def entry(position: int, name: str) -> StoredEntry:
    return StoredEntry(position, "call", name, b"digest", False, b"payload")


def child(workflow_id: str, name: str = "kid") -> NewWorkflow:
    return NewWorkflow(workflow_id, name, b"args", 1.0, parent_id="p")


# case: (the bad part of parent p's write, what the error says)
CASES = {
    "child id too long": ({"creates": [child("k" * 2001)]}, "2,001 bytes in UTF-8; the limit is 2,000"),
    "child id not unicode": ({"creates": [child(f"kid-{LONE}")]}, "not valid Unicode"),
    "child name too long": ({"creates": [child("kid", "n" * 1001)]}, "the limit is 1,000"),
    "activity name not unicode": ({"entries": [entry(0, "ok"), entry(1, f"pay {LONE}")]}, "not valid Unicode"),
    "activity name too long": ({"entries": [entry(0, "é" * 501)]}, "1,002 bytes in UTF-8; the limit is 1,000"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_a_write_holding_what_no_store_can_keep_is_refused_whole(make_store: Callable[[], Store],
                                                                        case: str) -> None:
    bad, says = CASES[case]
    store = make_store()
    await store.open()
    try:
        await store.register_worker("w1", {"wf"}, 0.0)
        for workflow_id in ("other", "p"):
            created = await store.create(NewWorkflow(workflow_id, "wf", b"", 0.0, lease_owner="w1", lease_s=60.0))
            assert created.token == 1
        good = Write("other", 1, "waiting", 5.0, [entry(0, "fine")], release=True)
        write = Write("p", 1, "waiting", 5.0, **{"entries": [entry(0, "fine")], **bad}, release=True)
        with pytest.raises(ValueError, match=says):
            await store.commit([good, write], 1.0)
        # Nothing of the commit happened, not even the good write before the bad one.
        assert sorted(r.id for r in await store.list()) == ["other", "p"]
        for workflow_id in ("other", "p"):
            record = await store.get(workflow_id)
            assert record is not None and (record.status, record.lease_owner) == ("running", "w1")
            assert [e async for chunk in store.load(workflow_id) for e in chunk] == []
    finally:
        await store.close()


async def test_a_signal_name_that_is_not_unicode_is_refused(make_store: Callable[[], Store]) -> None:
    store = make_store()
    await store.open()
    try:
        await store.create(NewWorkflow("p", "wf", b"", 0.0))
        with pytest.raises(ValueError, match="signal name is not valid Unicode"):
            await store.signal("p", f"go {LONE}", b"", 1.0)
        assert (await store.inbox("p")).signals == []
    finally:
        await store.close()
