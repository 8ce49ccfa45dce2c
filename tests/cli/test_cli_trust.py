"""The command line does not trust what the store says: no unpickling, no silent downgrade, keys kept off argv.

In-process (`durable.cli.main`) against real SQLite files; `durable worker` in a subprocess.
"""

from __future__ import annotations

import asyncio
import pickle
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import durable
from durable import receive
from durable.cli import main
from durable.codecs import AESGCMCodec, Pipeline
from durable.codecs.aesgcm import key_to_text
from durable.engine.recorder import DIGEST_KEY_CONTEXT
from durable.testing.plugin import sqlite_available

pytestmark = pytest.mark.skipif(sqlite_available() is not None, reason=str(sqlite_available()))

K1 = bytes(range(32))
KEY = key_to_text(K1)
CARD = "4111111111111111"
reg = durable.Registry()


@reg.workflow(name="trust.wait")
def wait(card: str):  # type: ignore[no-untyped-def]
    return (yield receive("approve"))


class _Touch:
    """Unpickling this creates `path`: the stand-in for code an attacker stores."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.path, "w"))


def make_store(db: Path, codecs: list | None = None) -> Path:  # type: ignore[type-arg]
    async def go() -> None:
        async with durable.Engine(str(db), codecs=codecs or [], registry=reg, worker=False) as engine:
            await engine.start(wait, CARD, id="w")

    asyncio.run(go())
    return db


def sql(db: Path, query: str, *params: object) -> list[tuple]:  # type: ignore[type-arg]
    with sqlite3.connect(db) as conn:
        return conn.execute(query, params).fetchall()


def plant_pickle(db: Path, marker: Path) -> None:
    """What someone with write access to the store does: a digest key header naming PickleSerializer."""
    payload = b"\x01p" + pickle.dumps(_Touch(marker))
    sql(db, "INSERT INTO meta (key, value) VALUES ('digest_key', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value", payload)


@pytest.fixture
def planted(tmp_path: Path) -> tuple[Path, Path]:
    db = make_store(tmp_path / "p.db")
    marker = tmp_path / "PWNED"
    plant_pickle(db, marker)
    return db, marker


@pytest.mark.parametrize("argv, code", [
    (["list"], 0),
    (["show", "w"], 0),
    (["cancel", "w"], 0),
    (["signal", "w", "approve", '"ann"'], 1),
    (["export", "w"], 1),
    (["reencode"], 1),
    (["reencode", "--to", "j"], 1),
    (["reencode", "--to", "j+a", "--aes-key", f"k1={KEY}", "--from-plain"], 1),
])
def test_a_pickle_planted_in_the_store_is_never_unpickled(
        planted: tuple[Path, Path], argv: list[str], code: int, capsys: pytest.CaptureFixture[str]) -> None:
    db, marker = planted
    returned = main([*argv, "--store", str(db)])
    assert not marker.exists()
    assert returned == code
    out = capsys.readouterr()
    if argv[0] != "list" and argv[0] != "cancel":
        assert "--pickle" in out.out + out.err


def test_with_pickle_the_user_opted_in(planted: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """The control: the planted payload does run code once the user says to unpickle."""
    db, marker = planted
    main(["show", "w", "--store", str(db), "--pickle"])
    assert marker.exists()


def test_a_worker_refuses_a_pickle_chain_without_pickle(planted: tuple[Path, Path], tmp_path: Path) -> None:
    db, marker = planted
    (tmp_path / "trust_flows.py").write_text(
        "import durable\n@durable.workflow(name='trust.flow')\ndef flow():\n    yield durable.sleep(0)\n")
    for extra in ([], ["--chain", "p"]):
        done = subprocess.run([sys.executable, "-m", "durable", "worker", "trust_flows", "--store", str(db), *extra],
                              cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 1 and "pass --pickle if you trust the store" in done.stderr
        assert not marker.exists()


def inbox(db: Path) -> list[tuple]:  # type: ignore[type-arg]
    return sql(db, "SELECT name, payload FROM inbox")


def test_keys_for_a_plain_store_are_refused_and_nothing_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    db = make_store(tmp_path / "plain.db")
    assert main(["signal", "w", "approve", '"ann"', "--store", str(db), "--aes-key", f"k1={KEY}"]) == 1
    err = capsys.readouterr().err
    assert "codec chain j (JsonSerializer)" in err and "AES-GCM keys given (--aes-key k1)" in err
    assert "--from-plain" in err and KEY not in err
    assert main(["show", "w", "--store", str(db), "--aes-key", f"k1={KEY}"]) == 1
    monkeypatch.setenv("DURABLE_AES_KEYS", f"k1={KEY}")
    assert main(["signal", "w", "approve", '"ann"', "--store", str(db)]) == 1
    assert "$DURABLE_AES_KEYS (k1)" in capsys.readouterr().err
    assert inbox(db) == []
    monkeypatch.delenv("DURABLE_AES_KEYS")
    assert main(["signal", "w", "approve", '"ann"', "--store", str(db)]) == 0  # no keys: a plain store is fine
    assert len(inbox(db)) == 1


def test_an_encrypted_store_relabelled_as_plain_does_not_get_plain_signals(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = make_store(tmp_path / "enc.db", [AESGCMCodec({"k1": K1})])
    plain_key = Pipeline().dump(bytes(32), DIGEST_KEY_CONTEXT)  # the store now claims to be plain
    sql(db, "UPDATE meta SET value = ? WHERE key = 'digest_key'", plain_key)
    assert main(["signal", "w", "approve", f'"{CARD}"', "--store", str(db), "--aes-key", f"k1={KEY}"]) == 1
    assert "codec chain j (JsonSerializer)" in capsys.readouterr().err
    assert inbox(db) == []
    assert CARD.encode() not in db.read_bytes()


def test_a_worker_given_keys_does_not_run_a_plain_store(tmp_path: Path) -> None:
    db = make_store(tmp_path / "plain.db")
    (tmp_path / "trust_flows2.py").write_text(
        "import durable\n@durable.workflow(name='trust.flow2')\ndef flow():\n    yield durable.sleep(0)\n")
    done = subprocess.run([sys.executable, "-m", "durable", "worker", "trust_flows2", "--store", str(db),
                           "--aes-key", f"k1={KEY}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and "codec chain j (JsonSerializer)" in done.stderr


def test_keys_from_a_file_or_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    db = make_store(tmp_path / "enc.db", [AESGCMCodec({"k1": K1})])
    key_file = tmp_path / "k1.key"
    key_file.write_text(f"  {KEY}\n")
    assert main(["show", "w", "--store", str(db), "--aes-key", f"k1=@{key_file}"]) == 0
    assert f"args:     ('{CARD}')" in capsys.readouterr().out
    monkeypatch.setenv("DURABLE_AES_KEYS", f"k0={key_to_text(bytes(32))}, k1={KEY}")
    assert main(["show", "w", "--store", str(db)]) == 0
    assert f"args:     ('{CARD}')" in capsys.readouterr().out
    # Keys on the command line replace the environment's (a wrong one there does not matter).
    monkeypatch.setenv("DURABLE_AES_KEYS", "k1=" + "00" * 32)
    assert main(["show", "w", "--store", str(db), "--aes-key", f"k1=@{key_file}"]) == 0
    assert CARD in capsys.readouterr().out
    # Errors name the option, the key id and the file, never key text.
    assert main(["show", "w", "--store", str(db), "--aes-key", f"k1=@{tmp_path / 'missing.key'}"]) == 1
    err = capsys.readouterr().err
    assert "--aes-key k1=@" in err and "cannot read the key file" in err
    (tmp_path / "empty.key").write_text("\n")
    assert main(["show", "w", "--store", str(db), "--aes-key", f"k1=@{tmp_path / 'empty.key'}"]) == 1
    assert "the key file is empty" in capsys.readouterr().err
    (tmp_path / "bad.key").write_text("not-a-key-but-secret")
    assert main(["show", "w", "--store", str(db), "--aes-key", f"k1=@{tmp_path / 'bad.key'}"]) == 1
    err = capsys.readouterr().err
    assert "key 'k1'" in err and "not-a-key-but-secret" not in err
