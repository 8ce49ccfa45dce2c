"""Worker processes sharing one database: one workflow never runs in two at once; a killed
worker's workflows move to a live one at once, not when a lease runs out."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

import durable

from .conftest import wait_until
from .workflows import HANG_ENV, reg, steps

pytestmark = pytest.mark.slow

WORKER = str(Path(__file__).with_name("worker.py"))


class Worker:
    """A worker process (worker.py) on `dsn`."""

    def __init__(self, dsn: str, *, hang: bool = False) -> None:
        env = dict(os.environ, **{HANG_ENV: "1" if hang else "0"})
        self.proc = subprocess.Popen([sys.executable, WORKER, dsn], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, text=True)
        self.pid = self.proc.pid

    async def ready(self, timeout: float = 20.0) -> None:
        line = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, self.proc.stdout.readline),
                                      timeout)
        assert line.startswith("ready"), f"worker {self.pid} did not start: {line!r} {self.proc.stderr.read()}"

    def stop(self) -> int | None:
        """A clean stop (stdin closes): its exit code, or None if it hung (then it is killed)."""
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def events(log: Path) -> list[tuple[str, int, int, str]]:
    if not log.exists():
        return []
    return [(wid, int(step), int(pid), event)
            for wid, step, pid, event in (line.split() for line in log.read_text().splitlines())]


async def test_two_workers_never_run_one_workflow_at_once(pg_dsn: str, tmp_path: Path) -> None:
    log = tmp_path / "steps.log"
    workers = [Worker(pg_dsn), Worker(pg_dsn)]
    try:
        await asyncio.gather(*(w.ready() for w in workers))
        async with durable.Engine(pg_dsn, registry=reg, worker=False) as client:
            ids = [f"shared-{i}" for i in range(30)]
            handles = [await client.start(steps, wid, 8, str(log), pause_at=3, id=wid) for wid in ids]
            # Every workflow parks at step 3; the signal makes it ready for whichever worker claims first.
            await wait_until(lambda: _all_waiting(client, ids), timeout=30, what="every workflow to park")
            for wid in ids:
                await client.signal(wid, "go")
            results = [await h.result(timeout=30) for h in handles]
        assert results == [sum(range(8))] * len(ids)
        assert [w.stop() for w in workers] == [0, 0], "a worker did not stop cleanly when asked"
    finally:
        for w in workers:
            w.stop()
    seen = events(log)
    runs = Counter((wid, step, event) for wid, step, _, event in seen)
    assert set(runs.values()) == {1}, "a step ran twice: " + repr([k for k, v in runs.items() if v > 1][:5])
    by_workflow: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for wid, step, pid, event in seen:
        by_workflow[wid].append((pid, event))
    for wid, trail in by_workflow.items():
        # start/end strictly alternate within one workflow: no step began while another was running
        assert [e for _, e in trail] == ["start", "end"] * 8, (wid, trail)
        assert all(trail[i][0] == trail[i + 1][0] for i in range(0, 16, 2)), (wid, trail)
    pids = {pid for _, _, pid, _ in seen}
    assert pids == {w.pid for w in workers}, "both workers should have run something"


async def _all_waiting(client: durable.Engine, ids: list[str]) -> bool:
    return all([await client.status(wid) == "waiting" for wid in ids])


async def test_a_killed_workers_workflows_are_taken_over_at_once(pg_dsn: str, tmp_path: Path) -> None:
    log = tmp_path / "steps.log"
    doomed = Worker(pg_dsn, hang=True)
    survivor: Worker | None = None
    try:
        await doomed.ready()
        async with durable.Engine(pg_dsn, registry=reg, worker=False) as client:
            handles = [await client.start(steps, f"kill-{i}", 6, str(log), hang_at=2, id=f"kill-{i}")
                       for i in range(3)]
            await wait_until(lambda: {(w, s) for w, s, _, e in events(log) if e == "start"} >=
                             {(f"kill-{i}", 2) for i in range(3)}, timeout=20, what="the doomed worker to hang")
            survivor = Worker(pg_dsn)
            await survivor.ready()
            doomed.kill()
            killed_at = time.monotonic()
            await wait_until(lambda: all((f"kill-{i}", 2, survivor.pid, "start") in events(log) for i in range(3)),
                             timeout=10, what="the survivor to take the workflows over")
            takeover = time.monotonic() - killed_at
            results = [await h.result(timeout=20) for h in handles]
        assert results == [sum(range(6))] * 3
        assert survivor.stop() == 0, "the survivor did not stop cleanly when asked"
        # The lease is 60 s, the idle poll 1 s: only the watcher (the dead connection dropped its lock)
        # explains a takeover this fast.
        assert takeover < 0.75, f"takeover took {takeover:.2f}s (the engine polls every 1 s without the watcher)"
        print(f"takeover after SIGKILL: {takeover * 1000:.0f} ms")
        for i in range(3):
            trail = [(step, pid, event) for wid, step, pid, event in events(log) if wid == f"kill-{i}"]
            done = [step for step, _, event in trail if event == "end"]
            assert done == list(range(6))  # every step finished exactly once; step 2 started twice
            assert [step for step, _, event in trail if event == "start"] == [0, 1, 2, 2, 3, 4, 5]
    finally:
        if doomed.proc.poll() is None:
            doomed.kill()
        if survivor is not None:
            survivor.stop()


async def test_a_new_engine_resumes_a_killed_workers_workflows_immediately(pg_dsn: str, tmp_path: Path) -> None:
    log = tmp_path / "steps.log"
    doomed = Worker(pg_dsn, hang=True)
    try:
        await doomed.ready()
        async with durable.Engine(pg_dsn, registry=reg, worker=False) as client:
            handle = await client.start(steps, "restart-0", 4, str(log), hang_at=1, id="restart-0")
            await wait_until(lambda: ("restart-0", 1, doomed.pid, "start") in events(log), timeout=20,
                             what="the doomed worker to hang")
            doomed.kill()
            started = time.monotonic()
            async with durable.Engine(pg_dsn, registry=reg, lease=60.0):  # a worker in this process
                assert await handle.result(timeout=10) == sum(range(4))
                elapsed = time.monotonic() - started
        assert elapsed < 3.0, f"resuming took {elapsed:.2f}s"
    finally:
        if doomed.proc.poll() is None:
            doomed.kill()
