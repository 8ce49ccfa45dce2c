"""Case 5: recovery after a worker process is killed mid-workflow (SQLite).

A worker process starts a workflow of 100 steps and hangs in step 50; we
SIGKILL it there. Then, in this process, a new engine opens the same file:
we time from entering it to the recovered workflow running its next step
(step 50 again: it was never recorded). Nothing waits for a lease to expire:
the dead worker's file lock is what tells the new engine.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import durable

from . import workflows as w
from .available import sqlite_store
from .harness import Row, Settings, Target, clock, median

CASE = "5 recovery"
STEPS, HANG_AT = 100, 50
TIMEOUT = 10.0
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def kill_worker_mid_workflow(path: str) -> None:
    """Run the worker until it hangs in step HANG_AT, then SIGKILL it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.recovery_worker", path, str(STEPS), str(HANG_AT)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != b"hanging":
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""  # type: ignore[union-attr]
            raise RuntimeError(f"the recovery worker did not reach step {HANG_AT}: {line!r} {err[-800:]}")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


async def recover(path: str) -> float:
    """Seconds from entering a new engine to the recovered workflow running its next step."""
    loop = asyncio.get_running_loop()
    reached: asyncio.Future[tuple[float, int]] = loop.create_future()

    def on_step(i: int) -> None:
        if not reached.done():
            reached.set_result((clock(), i))

    w.RECOVERY["on_step"] = on_step
    try:
        start = clock()
        async with durable.Engine(path) as engine:
            try:
                at, step = await asyncio.wait_for(reached, TIMEOUT)
            except asyncio.TimeoutError:
                raise RuntimeError(f"the workflow did not resume within {TIMEOUT:g} s "
                                   f"(status {await engine.status('recovery')!r})") from None
            if step != HANG_AT:
                raise RuntimeError(f"resumed at step {step}, expected {HANG_AT}: a recorded step ran twice")
            return at - start
    finally:
        w.RECOVERY["on_step"] = None


def run(cfg: Settings) -> list[Row]:
    store, why_not = sqlite_store()
    if store is None:
        return [Row(CASE, "kill -9 mid-workflow → next step", None, "", note=why_not or "")]
    samples: list[float] = []
    for rep in range(cfg.reps + 1):  # the first is a warm-up
        path = os.path.join(cfg.workdir, f"recovery-{rep}.db")
        kill_worker_mid_workflow(path)
        took = asyncio.run(recover(path))
        if rep:
            samples.append(took)
    note = f"{STEPS}-step workflow killed in step {HANG_AT}; max {max(samples) * 1e3:.1f} ms"
    return [Row(CASE, "kill -9 mid-workflow → next step (new engine)", median(samples) * 1e3, "ms",
                target=Target("<=", 50), note=note, samples=samples)]
