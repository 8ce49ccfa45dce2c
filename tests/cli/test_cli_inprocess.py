"""The CLI commands in-process, on a memory store handed over through `store_factory` (fast)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

import durable
from durable.cli import _client, main
from durable.store import MemoryStore

sys.path.insert(0, str(Path(__file__).parent))
import shop_v1  # noqa: E402


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
    shared = MemoryStore()
    monkeypatch.setattr(_client, "store_factory", lambda url: shared)

    async def populate() -> None:
        async with durable.Engine(shared, registry=shop_v1.registry) as engine:
            await (await engine.start(shop_v1.order, "o-1", 100, False, id="o-1")).result(timeout=5)
            await engine.start(shop_v1.order, "o-2", 200, True, id="o-2")
            while len(await engine.journal("o-2")) < 2:
                await asyncio.sleep(0.002)

    asyncio.run(populate())
    return shared


def test_list_show_and_replay(store: MemoryStore, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["list", "--store", "mem"]) == 0
    rows = [line.split()[:3] for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [["o-1", "shop.order", "completed"], ["o-2", "shop.order", "waiting"]]
    assert main(["show", "o-1", "--store", "mem"]) == 0
    assert "result:   {'by': 'auto'" in capsys.readouterr().out
    assert main(["export", "o-2", "--store", "mem", "-o", str(tmp_path / "o-2.jsonl")]) == 0
    assert main(["replay", "shop_v2:order", str(tmp_path / "o-2.jsonl"), "--store", "mem", "--collect-all"]) == 1
    out = capsys.readouterr().out
    assert "replayed 2 journals of 'shop.order': 2 incompatible" in out
    assert main(["replay", "shop_v1:order", "--store", "mem", "--all"]) == 0


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out = capsys.readouterr().out
    for command in ("list", "show", "signal", "cancel", "export", "replay"):
        assert command in out
