"""Several processes on one SQLite file: each workflow runs in one of them at a time."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import durable
from durable import Retry, call

pytestmark = pytest.mark.slow

WORKER = str(Path(__file__).with_name("worker.py"))


def test_two_live_workers_share_the_work_without_running_anything_twice(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    # Both start all 120 (start is idempotent by id) and run whatever they claim.
    procs = [subprocess.Popen([sys.executable, WORKER, str(db), "start", "120", "6", "--pace", "0.002"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
        assert json.loads(out)["wf-7"]["total"] == sum(2 * i for i in range(6))
    lines = Path(f"{db}.log").read_text().split("\n")
    runs = Counter(tuple(line.split()[:2]) for line in lines if line)
    assert len(runs) == 120 * 6
    assert set(runs.values()) == {1}, [k for k, v in runs.items() if v > 1][:5]


async def test_a_one_hour_backoff_holds_no_worker_and_survives_a_restart(tmp_path: Path) -> None:
    reg = durable.Registry()
    attempts: list[int] = []

    @durable.activity(name="backoff.flaky", retry=Retry(attempts=3, initial=3600, backoff=1, maximum=7200))
    def flaky() -> str:
        attempts.append(durable.activity_info().attempt)
        if len(attempts) == 1:
            raise ConnectionError("payment provider down")
        return "charged"

    @reg.workflow(name="backoff.flow")
    def flow():
        return (yield call(flaky))

    db = str(tmp_path / "backoff.db")
    clock = durable.VirtualClock(skip_when_idle=False)
    async with durable.Engine(db, registry=reg, clock=clock) as engine:
        await engine.start(flow, id="b")
        await wait_status(engine, "b", "waiting")
        record = await engine.describe("b")
        assert record.lease_owner is None  # parked: no worker holds it during the backoff
        assert record.ready_at is not None and abs(record.ready_at - (clock.now() + 3600)) < 1
    assert attempts == [1]
    clock.advance(3599)  # a restart neither shortens nor lengthens it
    async with durable.Engine(db, registry=reg, clock=clock) as engine:
        with pytest.raises(TimeoutError):
            await engine.result("b", timeout=0.2)
        clock.advance(2)
        assert await engine.result("b", timeout=5) == "charged"
    assert attempts == [1, 2]


async def wait_status(engine: durable.Engine, workflow_id: str, status: str, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while await engine.status(workflow_id) != status:
        assert time.monotonic() < deadline, f"{workflow_id} did not become {status} within {within}s"
        await asyncio.sleep(0.005)
