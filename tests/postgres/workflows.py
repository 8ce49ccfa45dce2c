"""Workflows shared by the multi-process tests and their worker processes (same names in both)."""

from __future__ import annotations

import asyncio
import os

import durable
from durable import activity, call, receive

reg = durable.Registry()

HANG_ENV = "DURABLE_PG_TEST_HANG"  # "1" in a worker whose step `hang_at` never returns


def note(log_path: str, workflow_id: str, step: int, event: str) -> None:
    # One short O_APPEND write per line: lines from several processes never interleave.
    line = f"{workflow_id} {step} {os.getpid()} {event}\n".encode()
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@activity(name="pgw.step", retry=durable.Retry(attempts=1))
async def step(workflow_id: str, i: int, log_path: str, hang_at: int) -> int:
    note(log_path, workflow_id, i, "start")
    if i == hang_at and os.environ.get(HANG_ENV) == "1":
        await asyncio.sleep(3600)  # the test kills this process here
    await asyncio.sleep(0.002)  # long enough that two runs of one workflow would overlap in the log
    note(log_path, workflow_id, i, "end")
    return i


@reg.workflow(name="pgw.steps")
def steps(workflow_id: str, n: int, log_path: str, hang_at: int = -1, pause_at: int = -1):
    total = 0
    for i in range(n):
        total += yield call(step, workflow_id, i, log_path, hang_at)
        if i == pause_at:
            yield receive("go")  # parks: the next claim may go to either worker
    return total
