"""`durable reencode` on real SQLite files: no plain payload is sealed unasked, and "done" is checked, not assumed."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

import durable
from durable import receive
from durable.cli import main
from durable.codecs import AESGCMCodec, Pipeline
from durable.codecs.aesgcm import key_to_text
from durable.engine.recorder import payload_context
from durable.store.sqlite import SQLiteStore
from durable.testing.plugin import sqlite_available

pytestmark = pytest.mark.skipif(sqlite_available() is not None, reason=str(sqlite_available()))

K1, K2 = bytes(range(32)), bytes(range(100, 132))
OLD, NEW = key_to_text(K1), key_to_text(K2)
reg = durable.Registry()


@reg.workflow(name="rekey.wait")
def wait(card: str):  # type: ignore[no-untyped-def]
    return (yield receive("approve"))


def make_store(db: Path, codecs: list) -> Path:  # type: ignore[type-arg]
    async def go() -> None:
        async with durable.Engine(str(db), codecs=codecs, registry=reg, worker=False) as engine:
            for n in range(3):
                await engine.start(wait, f"card-{n}", id=f"w{n}")
            await engine.signal("w0", "approve", "ann")

    asyncio.run(go())
    return db


def sql(db: Path, query: str, *params: object) -> list[tuple]:  # type: ignore[type-arg]
    with sqlite3.connect(db) as conn:
        return conn.execute(query, params).fetchall()


def forge_signal(db: Path) -> bytes:
    """A plain signal payload written straight into the store's inbox, as an attacker would."""
    forged = Pipeline().dump("attacker chose this")
    sql(db, "INSERT INTO inbox (wf, name, payload, sent_at) SELECT key, 'approve', ?, 0 FROM workflows "
            "WHERE id = 'w1'", forged)
    return forged


def test_a_plain_payload_in_an_encrypted_store_is_not_sealed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = make_store(tmp_path / "enc.db", [AESGCMCodec({"k1": K1})])
    forged = forge_signal(db)
    rotate = ["reencode", "--store", str(db), "--aes-key", f"k2={NEW}", "--aes-key", f"k1={OLD}"]
    assert main(rotate) == 1
    err = capsys.readouterr().err
    assert "a 'approve' signal waiting for workflow 'w1'" in err and "does not encrypt" in err
    assert "--from-plain" in err and "attacker chose this" not in err
    assert (forged,) in sql(db, "SELECT payload FROM inbox")  # left as it was, not sealed
    # The user says the store was plain until now: then it is encrypted like the rest.
    assert main([*rotate, "--from-plain"]) == 0
    assert "every payload now uses key 'k2'" in capsys.readouterr().err
    assert all(p[:5] == b"\x03j+a\x01" for (p,) in sql(db, "SELECT payload FROM inbox"))


def test_a_plain_store_moves_to_encryption_only_when_told_it_was_plain(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = make_store(tmp_path / "plain.db", [])
    encrypt = ["reencode", "--store", str(db), "--to", "j+a", "--aes-key", f"k1={OLD}"]
    assert main(encrypt) == 1
    assert "the args of workflow 'w0'" in capsys.readouterr().err
    assert main([*encrypt, "--from-plain"]) == 0
    assert b"card-1" not in db.read_bytes()
    assert main(["show", "w1", "--store", str(db), "--aes-key", f"k1={OLD}"]) == 0
    assert "args:     ('card-1')" in capsys.readouterr().out
    # Keys for a store that is still plain: say so instead of re-encoding it to plain.
    plain = make_store(tmp_path / "plain2.db", [])
    assert main(["reencode", "--store", str(plain), "--aes-key", f"k1={OLD}"]) == 1
    assert "name it with --to" in capsys.readouterr().err


def test_payloads_left_under_the_old_key_are_reported_and_the_old_key_is_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    db = make_store(tmp_path / "enc.db", [AESGCMCodec({"k1": K1})])
    old = Pipeline(codecs=[AESGCMCodec({"k1": K1})])
    original = SQLiteStore.replace_payloads
    raced: list[str] = []

    async def racing(self, changes):  # type: ignore[no-untyped-def]
        """Before the swap, an engine still on k1 rewrites one workflow's arguments (fresh bytes, same key)."""
        for payload, _ in changes:
            if payload.slot == "args" and not raced:
                context = payload_context(payload)
                again = old.seal(old.open(payload.data, context), context)
                sql(db, "UPDATE workflows SET args = ? WHERE id = ?", again, payload.workflow_id)
                raced.append(payload.workflow_id)
        return await original(self, changes)

    monkeypatch.setattr(SQLiteStore, "replace_payloads", racing)
    rotate = ["reencode", "--store", str(db), "--aes-key", f"k2={NEW}", "--aes-key", f"k1={OLD}"]
    assert main(rotate) == 3
    err = capsys.readouterr().err
    assert "1 changed meanwhile" in err and "1 payloads are not under the target chain" in err
    assert "run `durable reencode` again" in err and "can be dropped" not in err
    assert main(rotate) == 0  # the rerun converts what is left, and only then says so
    assert "every payload now uses key 'k2'; older keys can be dropped" in capsys.readouterr().err
    assert main(["show", raced[0], "--store", str(db), "--aes-key", f"k2={NEW}"]) == 0
