"""`python -m durable ...` in a subprocess against a real SQLite store file."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from durable.testing import load_journal
from durable.testing.plugin import sqlite_available

HERE = Path(__file__).parent
KEY = "6b" * 32  # key id "k1": 32 bytes as hex

pytestmark = pytest.mark.skipif(sqlite_available() is not None, reason=str(sqlite_available()))


def run(cwd: Path, *args: str, env: dict[str, str] | None = None,
        module: str = "durable") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", module, *args] if module else [sys.executable, *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def _shop(directory: Path, env: dict[str, str] | None = None) -> Path:
    for name in ("shop_v1.py", "shop_v2.py"):
        shutil.copy(HERE / name, directory / name)
    done = run(directory, "shop_v1.py", "shop.db", "start", env=env, module="")
    assert done.returncode == 0, done.stderr
    return directory


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with o-1 completed and o-2, o-3 charged and waiting for "approve" (read-only tests)."""
    return _shop(tmp_path_factory.mktemp("shop"))


def test_list(shop: Path) -> None:
    done = run(shop, "list", "--store", "shop.db")
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    assert rows[0][:4] == ["ID", "NAME", "STATUS", "RUN"]
    assert [r[:3] for r in rows[1:]] == [
        ["o-1", "shop.order", "completed"], ["o-2", "shop.order", "waiting"], ["o-3", "shop.order", "waiting"]]
    waiting = run(shop, "list", "--store", "shop.db", "--status", "waiting", "--limit", "1")
    assert len(waiting.stdout.splitlines()) == 2


def test_show(shop: Path) -> None:
    done = run(shop, "show", "o-2", "--store", "shop.db")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "workflow: shop.order" in out and "status:   waiting" in out
    assert "args:     ('o-2', 200, True)" in out
    assert re.search(r"0\s+call\s+shop\.reserve\s+ok\s+'res-o-2'", out)
    assert re.search(r"1\s+call\s+shop\.charge\s+ok\s+'ch-o-2-200'", out)


def test_export_then_replay_the_file(shop: Path) -> None:
    done = run(shop, "export", "o-2", "--store", "shop.db", "-o", "o-2.jsonl", "--workflow", "shop_v1:order")
    assert done.returncode == 0, done.stderr
    journal = load_journal(shop / "o-2.jsonl")
    assert journal.args == ("o-2", 200, True) and journal.status == "waiting"
    assert journal.lines[1].startswith("shop_v1.py:")
    to_stdout = run(shop, "export", "o-1", "--store", "shop.db")
    assert json.loads(to_stdout.stdout.splitlines()[0])["status"] == "completed"
    replayed = run(shop, "replay", "shop_v1:order", "o-2.jsonl")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "replayed 1 journal of 'shop.order': 1 ok" in replayed.stdout
    broken = run(shop, "replay", "shop_v2:order", "o-2.jsonl")
    assert broken.returncode == 1
    assert re.search(r"incompatible \(reordered\): position 1: call\(shop\.charge\) \(recorded at position 1\) "
                     r"now comes after receive\('approve'\), at shop_v2\.py:\d+ "
                     r"\(recorded at shop_v1\.py:\d+; code now at shop_v2\.py:\d+\)", broken.stdout)


def test_replay_from_the_store_stops_at_the_first_incompatible_journal(shop: Path) -> None:
    done = run(shop, "replay", "shop_v2:order", "--store", "shop.db")
    assert done.returncode == 1
    assert done.stdout.count("incompatible (reordered)") == 1
    assert "o-2: incompatible (reordered): position 1:" in done.stdout
    assert "replayed 1 journal of 'shop.order': 1 incompatible" in done.stdout
    assert "stopped at the first failure; pass --collect-all" in done.stdout
    assert "durable.version()" in done.stdout


def test_collect_all_and_all(shop: Path) -> None:
    done = run(shop, "replay", "shop_v2:order", "--store", "shop.db", "--collect-all")
    assert done.returncode == 1
    assert "replayed 2 journals of 'shop.order': 2 incompatible" in done.stdout  # in flight only
    everything = run(shop, "replay", "shop_v2:order", "--store", "shop.db", "--collect-all", "--all")
    assert "replayed 3 journals of 'shop.order': 1 ok, 2 incompatible" in everything.stdout


def test_an_appended_step_is_compatible(shop: Path) -> None:
    done = run(shop, "replay", "shop_v2:thank_you", "--store", "shop.db", "--all", "--progress")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "o-1: compatible (appended)" in done.stdout
    assert "replayed 3 journals of 'shop.order': 2 ok, 1 compatible" in done.stdout
    assert "3/3 journals" in done.stderr and "[####" in done.stderr
    quiet = run(shop, "replay", "shop_v2:thank_you", "--store", "shop.db", "--no-progress")
    assert quiet.stderr == ""


def test_signal_and_cancel_reach_the_workflows(tmp_path: Path) -> None:
    shop = _shop(tmp_path)
    signalled = run(shop, "signal", "o-2", "approve", '"ann"', "--store", "shop.db")
    assert signalled.returncode == 0, signalled.stderr
    cancelled = run(shop, "cancel", "o-3", "--store", "shop.db")
    assert cancelled.returncode == 0, cancelled.stderr
    resumed = run(shop, "shop_v1.py", "shop.db", "resume", "o-2", "o-3", module="")
    assert resumed.returncode == 0, resumed.stderr
    assert "o-2 {'reservation': 'res-o-2', 'receipt': 'ch-o-2-200', 'by': 'ann'}" in resumed.stdout
    assert "o-3 cancelled" in resumed.stdout


def test_an_encrypted_store_needs_the_key_for_values(tmp_path: Path) -> None:
    shop = _shop(tmp_path, env={"SHOP_AES_KEY": KEY})
    blind = run(shop, "show", "o-2", "--store", "shop.db")
    assert blind.returncode == 0, blind.stderr
    assert "pass --aes-key KID=KEY to read them" in blind.stdout and "res-o-2" not in blind.stdout
    assert re.search(r"1\s+call\s+shop\.charge\s+ok", blind.stdout)
    seeing = run(shop, "show", "o-2", "--store", "shop.db", "--aes-key", f"k1={KEY}")
    assert "'res-o-2'" in seeing.stdout
    refused = run(shop, "export", "o-2", "--store", "shop.db")
    assert refused.returncode == 1 and "durable: error:" in refused.stderr and "--aes-key" in refused.stderr
    exported = run(shop, "export", "o-2", "--store", "shop.db", "--aes-key", f"k1={KEY}", "-o", "o-2.jsonl")
    assert exported.returncode == 0, exported.stderr
    journal = load_journal(shop / "o-2.jsonl")
    assert journal.digest_key is not None and journal[0].digest[:1] == b"\x01"  # keyed digests, checkable
    assert run(shop, "replay", "shop_v1:order", "o-2.jsonl").returncode == 0
    assert run(shop, "replay", "shop_v1:order", "--store", "shop.db", "--aes-key", f"k1={KEY}").returncode == 0


def test_errors_are_one_line_messages(shop: Path) -> None:
    missing = run(shop, "show", "nope", "--store", "shop.db")
    assert missing.returncode == 1 and missing.stderr.strip() == "durable: error: no workflow with id 'nope'"
    bad_target = run(shop, "replay", "no_such_module:order", "x.jsonl")
    assert bad_target.returncode == 1 and "cannot import module 'no_such_module'" in bad_target.stderr
    nothing = run(shop, "replay", "shop_v1:order")
    assert nothing.returncode == 1 and "name exported journal FILEs, or a --store" in nothing.stderr
    bad_key = run(shop, "show", "o-1", "--store", "shop.db", "--aes-key", "k1")
    assert bad_key.returncode == 1 and "KID=KEY" in bad_key.stderr
    no_store = run(shop, "list", "--store", "typo.db")
    assert no_store.returncode == 1 and "no store at 'typo.db'" in no_store.stderr
    assert not (shop / "typo.db").exists()
    unreadable = run(shop, "replay", "shop_v1:order", "missing.jsonl")
    assert unreadable.returncode == 1 and "missing.jsonl: error" in unreadable.stdout
