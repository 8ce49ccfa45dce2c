"""Case 4: cold replay of journals of 10^3..10^5 entries, plain and encrypted.

A cold replay is what a new engine does on recovery: a fresh Engine (and, for
SQLite, a fresh connection) builds the workflow's generator and drives it
over its stored journal to the point where it waits. We call the engine's own
`Run._replay` (durable/engine/run.py), so exactly that code is timed, without
the claim and commit around it.

The journals are written through the Store protocol with the engine's own
Recorder (the same bytes a live run writes; the replay's digest check proves
it), which takes seconds where running 10^5 steps on SQLite would take long.

Floor: a bare generator over the same payloads, with `orjson.loads` per
entry (and AES-GCM decrypt with a cached key when encrypted); for SQLite the
floor first reads the payloads with a raw SELECT on a fresh connection
(sqlite3 itself costs ~0.85 µs per row read here).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sqlite3
import tracemalloc
import uuid as _uuid
from functools import partial
from typing import Any

import orjson

import durable
from durable.effects import call
from durable.engine.run import Run
from durable.store import MemoryStore
from durable.store.types import Claim, NewWorkflow, Write

from . import workflows as w
from .available import aes_codec, sqlite_store
from .harness import Row, Settings, Target, clock, median

CASE = "4 replay"
_CHUNK = 5000


async def write_journal(store: Any, codecs: list[Any], n: int) -> str:
    """Record a `steps_then_wait(n)` run that reached its wait: n call entries, then parked."""
    wid = f"replay-{n}-{_uuid.uuid4().hex[:8]}"
    async with durable.Engine(store, codecs=codecs, worker=False) as engine:
        rec = engine._recorder
        now = engine.clock.now()
        created = await store.create(NewWorkflow(wid, w.steps_then_wait.name, rec.dump_args(wid, 0, (n,), {}, name=w.steps_then_wait.name), now,
                                                 lease_owner="bench-writer", lease_s=3600.0))
        token = created.token
        entries = []
        for i in range(n):
            digest = rec.digest(wid, call(w.inc, i), i, None)
            entries.append(rec.entry(wid, 0, i, "call", w.inc.name, digest, i + 1)[0])
        for start in range(0, n, _CHUNK):
            last = start + _CHUNK >= n
            write = Write(wid, token, "waiting" if last else "running", None if last else now,
                          entries=entries[start : start + _CHUNK], release=last)
            (outcome,) = await store.commit([write], now)
            assert outcome == "ok", outcome
    return wid


async def cold_replay(store: Any, codecs: list[Any], wid: str, n: int, trace: bool = False) -> float:
    """Seconds for a fresh engine to replay `wid` to its wait (or the peak bytes, with `trace`)."""
    async with durable.Engine(store, codecs=codecs, worker=False) as engine:
        record = await store.get(wid)
        run = Run(engine, _claim_of(record), w.steps_then_wait, None)
        if trace:
            tracemalloc.start()
            await run._replay()
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            result = float(peak)
        else:
            start = clock()
            await run._replay()
            result = clock() - start
        driver = run.driver
        assert driver is not None and driver.replayed == n and driver.state == "waiting", (driver.state, driver.replayed)
        return result


def _claim_of(record: Any) -> Claim:
    """A Claim for a parked workflow (no lease is taken: the replay writes nothing).

    Built from the field names Claim has today, so the harness survives the
    store types changing around it.
    """
    known = {"id": record.id, "name": record.name, "run": record.run, "token": 0, "status": record.status,
             "args": record.args, "pending": None, "seq": 0, "poke": 0, "cancel_requested": False, "attempts": 0}
    names = {f.name for f in dataclasses.fields(Claim)}
    return Claim(**{k: v for k, v in known.items() if k in names})


def _floor_gen(n: int):
    for i in range(n):
        yield call(w.inc, i)


def floor_replay(payloads: list[bytes], aes: Any, aad: bytes) -> float:
    """Seconds for a bare generator to take its n results from the payloads."""
    start = clock()
    _bare_loop(payloads, aes, aad)
    return clock() - start


def floor_replay_sqlite(path: str, aes: Any, aad: bytes) -> float:
    """The same, reading the payloads with a raw SELECT on a fresh connection first."""
    start = clock()
    con = sqlite3.connect(path)
    payloads = [row[0] for row in con.execute("SELECT payload FROM journal WHERE wf = 1 ORDER BY position")]
    con.close()
    _bare_loop(payloads, aes, aad)
    return clock() - start


def _bare_loop(payloads: list[bytes], aes: Any, aad: bytes) -> None:
    gen = _floor_gen(len(payloads))
    loads = orjson.loads
    effect = gen.send(None)
    for payload in payloads:
        if aes is not None:
            payload = aes.decrypt(payload[:12], payload[12:], aad)
        if effect.kind != "call":
            raise AssertionError
        try:
            effect = gen.send(loads(payload[1:]))
        except StopIteration:
            break


def floor_payloads(n: int, encrypted: bool) -> tuple[list[bytes], Any]:
    plain = [b"=" + orjson.dumps(i + 1) for i in range(n)]
    if not encrypted:
        return plain, None
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aes = AESGCM(os.urandom(32))
    sealed = []
    for p in plain:
        nonce = os.urandom(12)
        sealed.append(nonce + aes.encrypt(nonce, p, b"ctx"))
    return sealed, aes


def floor_file(path: str, payloads: list[bytes]) -> str:
    """A bare journal table holding `payloads` as workflow 1."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE journal (wf INTEGER, position INTEGER, payload BLOB, PRIMARY KEY (wf, position))"
                " WITHOUT ROWID")
    con.execute("BEGIN")
    con.executemany("INSERT INTO journal VALUES (1, ?, ?)", enumerate(payloads))
    con.execute("COMMIT")
    con.close()
    return path


async def _measure(cfg: Settings) -> list[Row]:
    sizes = {"full": (1_000, 10_000, 100_000), "quick": (1_000, 10_000), "smoke": (100,)}[cfg.mode]
    stores: list[tuple[str, Any]] = [("memory", MemoryStore)]
    rows: list[Row] = []
    SQLiteStore, why_no_sqlite = sqlite_store()
    if cfg.memory_only:
        pass
    elif SQLiteStore is None:
        rows.append(Row(CASE, "sqlite journals", None, "", note=why_no_sqlite or ""))
    else:
        stores.append(("sqlite", SQLiteStore))
    key = os.urandom(32)
    codec, why_no_aes = aes_codec(key)
    variants: list[tuple[str, list[Any]]] = [("plain", [])]
    if codec is None:
        rows.append(Row(CASE, "encrypted journals", None, "", note=why_no_aes or ""))
    else:
        variants.append(("AES-GCM", [codec]))
    for store_name, factory in stores:
        path = os.path.join(cfg.workdir, f"replay-{_uuid.uuid4().hex[:6]}.db")
        shared = factory() if store_name == "memory" else None

        def fresh() -> Any:
            return shared if shared is not None else factory(path)  # noqa: B023

        plain_rate: float | None = None
        for variant, codecs in variants:
            for n in sizes:
                wid = await write_journal(fresh(), codecs, n)
                reps = cfg.reps if n < 100_000 else min(cfg.reps, 3)
                payloads, aes = floor_payloads(n, bool(codecs))
                if store_name == "sqlite":
                    raw = floor_file(os.path.join(cfg.workdir, f"replay-floor-{variant}-{n}.db"), payloads)
                    bare = partial(floor_replay_sqlite, raw, aes, b"ctx")
                else:
                    bare = partial(floor_replay, payloads, aes, b"ctx")
                await cold_replay(fresh(), codecs, wid, n)  # warm-up
                bare()
                mine, floor = [], []
                for _ in range(reps):
                    mine.append(await cold_replay(fresh(), codecs, wid, n))
                    floor.append(bare())
                peak = await cold_replay(fresh(), codecs, wid, n, trace=True)
                rate = n / median(mine)
                if variant == "plain" and n == sizes[-1]:
                    plain_rate = rate
                rows.append(Row(CASE, f"{store_name}, {variant}, {n:,} entries", rate, "entries/s",
                                n / median(floor), "raw SELECT + bare loop" if store_name == "sqlite" else "bare loop",
                                higher_is_better=True,
                                target=Target(">=", 500_000) if variant == "plain" else None,
                                note=f"peak {peak / 1024:,.0f} KiB", samples=[n / s for s in mine]))
            if variant != "plain" and plain_rate is not None:
                rows.append(Row(CASE, f"{store_name}: encryption overhead on replay ({sizes[-1]:,})",
                                plain_rate / rows[-1].value, "×"))  # type: ignore[operator]
    return rows


def run(cfg: Settings) -> list[Row]:
    return asyncio.run(_measure(cfg))
