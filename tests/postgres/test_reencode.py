"""Key rotation on PostgreSQL: page through every payload, swap each in place, resume, read back."""

from __future__ import annotations

import os

import durable
from durable import call, receive
from durable.codecs import AESGCMCodec, Pipeline
from durable.engine import reencode
from durable.store.postgres import PostgresStore

from .conftest import wait_until

K1, K2 = os.urandom(32), os.urandom(32)
reg = durable.Registry()


@durable.activity(name="pgrot.charge")
def charge(card: str) -> str:
    return f"receipt for {card}"


@reg.workflow(name="pgrot.order")
def order(card: str):
    receipt = yield call(charge, card)
    approver = yield receive("approve")
    return {"receipt": receipt, "approver": approver}


def codec(*keys: tuple[str, bytes]) -> AESGCMCodec:
    return AESGCMCodec(dict(keys), active=keys[0][0])


async def every_payload(store: PostgresStore, page: int = 4) -> list:  # type: ignore[type-arg]
    found, after = [], None
    while batch := await store.payloads(after, page):
        assert after is None or batch[0].where > after
        found.extend(batch)
        after = batch[-1].where
    return found


async def test_rotation_pages_swaps_and_resumes(pg_dsn: str) -> None:
    async with durable.Engine(pg_dsn, codecs=[codec(("k1", K1))], registry=reg) as engine:
        await engine.start(order, "4111", id="done")
        await engine.start(order, "4222", id="waiting")
        await engine.signal("done", "approve", "ann")
        await engine.result("done", timeout=10)
        await wait_until(lambda: _waiting(engine), what="the second order to wait")
        await engine.signal("waiting", "unrelated", "kept in the inbox")
    target = Pipeline(codecs=[codec(("k2", K2), ("k1", K1))])
    store = PostgresStore(pg_dsn)
    await store.open()
    try:
        before = await every_payload(store)
        assert {p.slot for p in before} == {"meta", "args", "result", "entry", "signal"}
        assert [p.where for p in before] == sorted(p.where for p in before)

        def stop_after_one_page(report) -> None:  # type: ignore[no-untyped-def]
            raise KeyboardInterrupt

        try:
            await reencode(store, target, batch=3, progress=stop_after_one_page)
        except KeyboardInterrupt:
            pass
        report = await reencode(store, target, batch=3)
        assert (report.current, report.reencoded) == (3, len(before) - 3)
        assert all(target.is_current(p.data) for p in await every_payload(store))
        stale = before[0]  # already swapped: a compare-and-swap with its old bytes changes nothing
        assert await store.replace_payloads([(stale, b"x")]) == 0
    finally:
        await store.close()
    async with durable.Engine(pg_dsn, codecs=[codec(("k2", K2))], registry=reg) as engine:  # the new key only
        assert (await engine.result("done"))["receipt"] == "receipt for 4111"
        await engine.signal("waiting", "approve", "bob")
        assert await engine.result("waiting", timeout=10) == {"receipt": "receipt for 4222", "approver": "bob"}


async def _waiting(engine: durable.Engine) -> bool:
    return await engine.status("waiting") == "waiting"
