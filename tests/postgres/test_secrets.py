"""With AES-GCM configured, a secret in arguments, results, signals and errors never reaches
the database: a `pg_dump` of it holds no trace, in text or in bytea's hex."""

from __future__ import annotations

import os

import pgcluster
import pytest

import durable
from durable import ActivityError, activity, call, receive
from durable.codecs import AESGCMCodec

pytestmark = pytest.mark.skipif(pgcluster.unavailable(("pg_dump",)) is not None,
                                reason=f"needs pg_dump: {pgcluster.unavailable(('pg_dump',))}")

SECRET = "4111-1111-1111-1111 cvv 739 (do not log)"
reg = durable.Registry()


@activity(name="sec.charge")
def charge(card: str) -> str:
    return f"charged {card}"


@activity(name="sec.refuse", retry=durable.Retry(attempts=1))
def refuse(card: str) -> str:
    raise ValueError(f"card {card} declined")


@reg.workflow(name="sec.order")
def order(card: str):
    receipt = yield call(charge, card)
    try:
        yield call(refuse, card)
    except ActivityError as exc:
        refused = exc.message
    note = yield receive("note")
    return [receipt, refused, note]


async def run_order(dsn: str, codecs: list) -> list:
    async with durable.Engine(dsn, registry=reg, codecs=codecs) as engine:
        handle = await engine.start(order, SECRET, id="order-1")
        await engine.signal("order-1", "note", f"note about {SECRET}")
        return await handle.result(timeout=20)


def traces(dump: bytes) -> list[str]:
    secret = SECRET.encode()
    found = []
    if secret in dump:
        found.append("as text")
    if secret.hex().encode() in dump.lower():  # bytea columns dump as \x<hex>
        found.append("as bytea hex")
    return found


async def test_an_encrypted_secret_never_appears_in_a_pg_dump(pg_dsn: str) -> None:
    result = await run_order(pg_dsn, [AESGCMCodec(keys={"k1": os.urandom(32)}, active="k1")])
    assert result == [f"charged {SECRET}", f"card {SECRET} declined", f"note about {SECRET}"]
    dump = pgcluster.dump(pg_dsn)
    assert b"order-1".hex().encode() in dump  # the dump does hold the workflow (ids are bytea too)
    assert traces(dump) == []


async def test_without_a_codec_the_dump_would_show_it(pg_dsn: str) -> None:
    # The control: the check above can fail, and would if payloads were stored in the clear.
    await run_order(pg_dsn, [])
    assert "as bytea hex" in traces(pgcluster.dump(pg_dsn))
