"""`durable replay` (in-process): empty input, shared directories, renamed workflows, what it could not check."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import durable
from durable import call, receive
from durable.cli import _client, main
from durable.codecs.pipeline import KEYED_DIGEST, Pipeline
from durable.journal import Entry
from durable.registry import make_workflow
from durable.store import MemoryStore
from durable.testing import export_journal

from .flows import charge, reserve

NAME = "trc.order"


def _v1(order_id: str) -> Any:
    yield call(reserve, order_id)
    yield call(charge, order_id, 100)
    return (yield receive("approve"))


def _v2(order_id: str) -> Any:
    yield call(reserve, order_id)
    who = yield receive("approve")  # now before the charge
    yield call(charge, order_id, 100)
    return who


v1 = make_workflow(_v1, NAME)
v2 = make_workflow(_v2, NAME)
renamed = make_workflow(_v1, "trc.order-renamed")
here = __name__


def _journals(directory: Path, count: int = 2, workflow: str = NAME) -> Path:
    directory.mkdir(exist_ok=True)
    for i in range(count):
        digest = Pipeline().digest((f"o-{i}",), {}, None)
        entries = [Entry(0, "call", "tt.reserve", digest, False, f"res-{i}")]
        export_journal(entries, directory / f"{workflow}-{i}.jsonl", workflow=workflow, workflow_id=f"{workflow}-{i}",
                       args=(f"o-{i}",), status="waiting")
    return directory


def _replay(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["replay", *args, "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_nothing_to_replay_fails_unless_allowed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = _replay(capsys, f"{here}:v1", str(tmp_path / "empty"))
    assert code == 1
    assert f"no journals of workflow '{NAME}' to replay in {tmp_path / 'empty'}" in err
    assert "pass --allow-empty" in err
    code, _, err = _replay(capsys, f"{here}:v1", str(tmp_path / "nothing-*.jsonl"))
    assert code == 1 and "Nothing was checked" in err
    code, out, _ = _replay(capsys, f"{here}:v1", str(tmp_path / "empty"), "--allow-empty")
    assert code == 0 and "no journals of workflow" in out


def test_journals_of_other_workflows_in_a_shared_directory_are_skipped_and_counted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shared = _journals(_journals(tmp_path / "journals"), 3, "trc.other")
    code, out, _ = _replay(capsys, f"{here}:v1", str(shared))
    assert code == 0, out
    assert f"replayed 2 journals of '{NAME}': 2 ok (skipped journals of other workflows: 3 of 'trc.other')" in out
    assert "error" not in out


def test_a_renamed_workflow_finds_none_of_its_journals_and_says_why(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _replay(capsys, f"{here}:renamed", str(_journals(tmp_path / "journals")))
    assert code == 1
    assert f"found 2 journals of other workflows (2 of '{NAME}'). Did the workflow's name change?" in err


def test_unchecked_argument_digests_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keyed = KEYED_DIGEST + bytes(8)  # a keyed digest, exported without the key
    export_journal([Entry(0, "call", "tt.reserve", keyed, False, "res")], tmp_path / "keyed.jsonl", workflow=NAME,
                   workflow_id="k-1", args=("o-1",), status="waiting")
    code, out, _ = _replay(capsys, f"{here}:v1", str(tmp_path / "keyed.jsonl"))
    assert code == 0
    assert "argument digests not checked in 1 journal: they are keyed and the journal carries no digest key" in out


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
    shared = MemoryStore()
    monkeypatch.setattr(_client, "store_factory", lambda url: shared)
    registry = durable.Registry()
    registry.add(v1)

    async def populate() -> None:
        async with durable.Engine(shared, registry=registry) as engine:
            await engine.start(v1, "o-1", id="o-1")
            while len(await engine.journal("o-1")) < 2:
                await asyncio.sleep(0.002)

    asyncio.run(populate())
    return shared


def test_replaying_from_a_store_says_the_recorded_lines_are_unknown(
        store: MemoryStore, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _replay(capsys, f"{here}:v2", "--store", "mem")
    assert code == 1
    line = next(row for row in out.splitlines() if row.startswith("o-1:"))
    assert "incompatible (reordered)" in line
    assert "recorded at: unknown (the journal carries no source lines; stores keep none)" in line
    assert "code now at tests/testing/test_replay_cli.py:" in line
    assert "recorded source lines unknown for 1 journal (stores keep none" in out
    code, _, err = _replay(capsys, f"{here}:renamed", "--store", "mem")
    assert code == 1 and f"(1 of '{NAME}'). Did the workflow's name change?" in err
