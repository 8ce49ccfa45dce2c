"""Key rotation: re-encode a store's payloads under a new key, then drop the old one."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

import durable
from durable import call, receive, sleep
from durable.codecs import AESGCMCodec, Pipeline
from durable.codecs.aesgcm import key_to_text
from durable.engine import reencode
from durable.engine.recorder import payload_context
from durable.engine.reencode import count_outdated
from durable.store import MemoryStore
from durable.store.sqlite import SQLiteStore

K1, K2 = os.urandom(32), os.urandom(32)
CARD = "4111111111111111"
reg = durable.Registry()


@durable.activity(name="rot.charge")
def charge(card: str) -> str:
    return f"receipt for {card}"


@durable.activity(name="rot.decline", retry=durable.Retry(attempts=1))
def decline(card: str) -> str:
    raise ValueError(f"card {card} declined")


@reg.workflow(name="rot.order")
def order(card: str):
    receipt = yield call(charge, card)
    try:
        approver = yield receive("approve", timeout=timedelta(days=3))
    except durable.Timeout:
        return "expired"
    yield sleep(0)
    return {"receipt": receipt, "approver": approver}


@reg.workflow(name="rot.failing")
def failing(card: str):
    yield call(decline, card)


def codec(*keys: tuple[str, bytes]) -> AESGCMCodec:
    return AESGCMCodec(dict(keys), active=keys[0][0])


async def fill(store, clock) -> None:  # type: ignore[no-untyped-def]
    """Finished, failed and waiting workflows, a signal left in an inbox, a pending timer: every kind of payload."""
    async with durable.Engine(store, codecs=[codec(("k1", K1))], registry=reg, clock=clock) as engine:
        await engine.start(order, CARD, id="done")
        await engine.start(order, CARD, id="waiting")
        await engine.start(failing, CARD, id="failed")
        await engine.signal("done", "approve", f"ann with {CARD}")
        assert (await engine.result("done", timeout=5))["approver"] == f"ann with {CARD}"
        with pytest.raises(durable.WorkflowFailedError):
            await engine.result("failed", timeout=5)
        deadline = asyncio.get_running_loop().time() + 5
        while await engine.status("waiting") != "waiting":
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.005)
        with pytest.raises(durable.WorkflowClosedError):
            await engine.signal("done", "late", CARD)  # a finished workflow refuses signals...
    # ...so leave one in the waiting workflow's inbox under another name
    async with durable.Engine(store, codecs=[codec(("k1", K1))], registry=reg, clock=clock, worker=False) as client:
        await client.signal("waiting", "unrelated", CARD)


async def all_payloads(store) -> list:  # type: ignore[no-untyped-def]
    found, after = [], None
    while page := await store.payloads(after, 7):
        found.extend(page)
        after = page[-1].where
    return found


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request, tmp_path):  # type: ignore[no-untyped-def]
    if request.param == "memory":
        shared = MemoryStore()
        return lambda: shared
    return lambda: SQLiteStore(tmp_path / "rot.db")


async def test_rotation_then_dropping_the_old_key(make_store) -> None:  # type: ignore[no-untyped-def]
    clock = durable.VirtualClock(skip_when_idle=False)
    await fill(make_store(), clock)
    target = Pipeline(codecs=[codec(("k2", K2), ("k1", K1))])
    store = make_store()
    await store.open()
    try:
        before = await all_payloads(store)
        report = await reencode(store, target, batch=5)
        assert report.reencoded == len(before) and report.current == 0
        after = await all_payloads(store)
        assert {p.slot for p in after} == {"meta", "args", "result", "pending", "entry", "signal"}
        assert all(target.is_current(p.data) for p in after)
        again = await reencode(store, target)
        assert (again.reencoded, again.current) == (0, len(after))
    finally:
        await store.close()
    # Only the new key from here on: everything stays readable, the waiting run goes on.
    async with durable.Engine(make_store(), codecs=[codec(("k2", K2))], registry=reg, clock=clock) as engine:
        assert (await engine.result("done"))["receipt"] == f"receipt for {CARD}"
        with pytest.raises(durable.WorkflowFailedError) as failed:
            await engine.result("failed")
        assert CARD in failed.value.message
        await engine.signal("waiting", "approve", "bob")
        assert await engine.result("waiting", timeout=5) == {"receipt": f"receipt for {CARD}", "approver": "bob"}
        assert [e.kind for e in await engine.journal("waiting")] == ["call", "receive", "sleep"]


async def test_an_interrupted_rotation_resumes(make_store) -> None:  # type: ignore[no-untyped-def]
    await fill(make_store(), durable.VirtualClock(skip_when_idle=False))
    target = Pipeline(codecs=[codec(("k2", K2), ("k1", K1))])
    store = make_store()
    await store.open()
    try:
        def stop_after_one_page(report) -> None:  # type: ignore[no-untyped-def]
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            await reencode(store, target, batch=3, progress=stop_after_one_page)
        halfway = await all_payloads(store)
        assert 0 < sum(target.is_current(p.data) for p in halfway) < len(halfway)
        report = await reencode(store, target, batch=3)
        assert report.current == 3 and report.reencoded == len(halfway) - 3
        assert all(target.is_current(p.data) for p in await all_payloads(store))
    finally:
        await store.close()


async def test_a_payload_rewritten_meanwhile_is_left_as_the_engine_wrote_it() -> None:
    store = MemoryStore()
    await fill(store, durable.VirtualClock(skip_when_idle=False))
    target = Pipeline(codecs=[codec(("k2", K2), ("k1", K1))])

    class Racing(MemoryStore):
        """Between the read and the swap, an engine rewrites the waiting run's state."""

    racing = store
    original = racing.replace_payloads

    async def replace(changes):  # type: ignore[no-untyped-def]
        racing._rows["waiting"].pending = b"written by a live engine"
        return await original(changes)

    racing.replace_payloads = replace  # type: ignore[method-assign]
    await racing.open()
    report = await reencode(racing, target, batch=1000)
    assert report.changed_meanwhile == 1
    assert racing._rows["waiting"].pending == b"written by a live engine"


async def test_a_plain_store_moves_to_encryption() -> None:
    store = MemoryStore()
    clock = durable.VirtualClock(skip_when_idle=False)
    async with durable.Engine(store, registry=reg, clock=clock) as engine:
        await engine.start(order, CARD, id="plain")
        deadline = asyncio.get_running_loop().time() + 5
        while await engine.status("plain") != "waiting":
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.005)
    target = Pipeline(codecs=[codec(("k1", K1))])
    with pytest.raises(durable.CodecError, match="no configured chain reads it"):
        await reencode(store, target)  # the plain chain must be named as a source
    with pytest.raises(durable.CodecError, match="does not encrypt") as refused:
        await reencode(store, target, [Pipeline()])  # ...and the store said to have been plain until now
    assert refused.value.workflow_id == "plain"
    assert await count_outdated(store, target) > 0
    report = await reencode(store, target, [Pipeline()], allow_plain_sources=True)
    assert report.reencoded > 0 and await count_outdated(store, target) == 0
    for payload in await all_payloads(store):
        assert CARD.encode() not in payload.data and payload_context(payload) is not None
    async with durable.Engine(store, codecs=[codec(("k1", K1))], registry=reg, clock=clock) as engine:
        await engine.signal("plain", "approve", "cy")
        assert (await engine.result("plain", timeout=5))["approver"] == "cy"


async def test_a_planted_plain_payload_is_not_sealed(make_store) -> None:  # type: ignore[no-untyped-def]
    await fill(make_store(), durable.VirtualClock(skip_when_idle=False))
    store = make_store()
    await store.open()
    try:
        payloads = await all_payloads(store)
        planted = next(p for p in payloads if p.slot == "signal")
        forged = Pipeline().dump("attacker chose this", payload_context(planted))
        assert await store.replace_payloads([(planted, forged)]) == 1
        target = Pipeline(codecs=[codec(("k2", K2), ("k1", K1))])
        with pytest.raises(durable.CodecError, match="does not encrypt") as refused:
            await reencode(store, target, [Pipeline()])
        assert refused.value.workflow_id == "waiting" and "attacker" not in str(refused.value)
        assert forged in [p.data for p in await all_payloads(store)]
        assert await count_outdated(store, target) > 0
        # A source function may say why it cannot read a chain: the error names where, and why.
        def no_plain(signature: str) -> Pipeline:
            raise ValueError(f"no reader for {signature}")

        with pytest.raises(durable.CodecError, match="signal waiting for workflow 'waiting'.*no reader for j$"):
            await reencode(store, target, no_plain)
        await reencode(store, target, [Pipeline()], allow_plain_sources=True)
        assert await count_outdated(store, target) == 0
    finally:
        await store.close()


def test_cli_rotation_and_reading_with_the_new_key_only(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    asyncio.run(fill(SQLiteStore(db), durable.VirtualClock(skip_when_idle=False)))
    k1, k2 = key_to_text(K1), key_to_text(K2)
    python = [sys.executable, "-m", "durable"]
    rotated = subprocess.run([*python, "reencode", "--store", str(db), "--aes-key", f"k2={k2}", "--aes-key", f"k1={k1}"],
                             capture_output=True, text=True, timeout=60)
    assert rotated.returncode == 0, rotated.stderr
    assert "already current" in rotated.stderr and "key 'k2'" in rotated.stderr
    shown = subprocess.run([*python, "show", "done", "--store", str(db), "--aes-key", f"k2={k2}"],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert f"receipt for {CARD}" in shown.stdout
    refused = subprocess.run([*python, "show", "done", "--store", str(db), "--aes-key", f"k1={k1}"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "k2" in refused.stderr


def test_a_known_secret_never_reaches_the_sqlite_files(tmp_path: Path) -> None:
    db = tmp_path / "secret.db"
    asyncio.run(fill(SQLiteStore(db), durable.VirtualClock(skip_when_idle=False)))
    files = [p for p in tmp_path.iterdir() if p.is_file() and p.name.startswith("secret.db")]
    assert db in files
    for path in files:
        raw = path.read_bytes()
        assert CARD.encode() not in raw, f"{path.name} holds the card number in clear"
        assert CARD.encode("utf-16-le") not in raw
    # ...while what the store needs in clear is there
    assert b"rot.order" in db.read_bytes() or any(b"rot.order" in p.read_bytes() for p in files)
