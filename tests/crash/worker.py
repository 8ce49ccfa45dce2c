"""A worker process for crash tests: runs workflows on a SQLite file and may kill itself.

    python worker.py DB START N_WORKFLOWS STEPS [--sleep S] [--signal] [--crash POINT]

START is "start" (create the workflows, then run) or "resume" (only run
what the file holds). POINT is where to SIGKILL this very process:
  activity:ID:I       inside activity step I of workflow ID
  before-commit:K     before the K-th commit reaches the store
  after-commit:K      right after the K-th commit is durable
  replay:K            after K journal entries were fed to replaying drivers
  mid-commit:K        in the writer thread, after K writes ran inside a
                      transaction of at least 2K writes that has not
                      committed yet
  sleeping            once a workflow is parked in its sleep
  waiting             once a workflow waits for its signal
With --settle it waits until every workflow is finished or blocked and
prints their statuses too.
Every activity execution appends "ID POSITION ATTEMPT" to DB.log, so the
test can count executions across processes. On success it prints the
results as JSON and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys

import durable
from durable import activity, call, now, receive, sleep, workflow
from durable.driver import Driver
from durable.store.sqlite import SQLiteStore

args = argparse.ArgumentParser()
args.add_argument("db")
args.add_argument("mode", choices=["start", "resume"])
args.add_argument("workflows", type=int)
args.add_argument("steps", type=int)
args.add_argument("--sleep", type=float, default=0.0)
args.add_argument("--signal", action="store_true")
args.add_argument("--crash", default="")
args.add_argument("--settle", action="store_true")
args.add_argument("--together", action="store_true", help="start all workflows at once")
args.add_argument("--pace", type=float, default=0.0, help="seconds each activity step takes")
opts = args.parse_args()
LOG = opts.db + ".log"
CRASH = opts.crash.split(":") if opts.crash else [""]


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@activity(name="step")
async def step(workflow_id: str, i: int) -> int:
    info = durable.activity_info()
    with open(LOG, "a") as log:
        log.write(f"{workflow_id} {info.position} {info.attempt}\n")
    if CRASH[0] == "activity" and CRASH[1] == workflow_id and int(CRASH[2]) == i:
        die()
    if opts.pace:
        await asyncio.sleep(opts.pace)
    return i * 2


@workflow(name="chain")
def chain(workflow_id: str, steps: int, pause: float, wait_signal: bool):
    total = 0
    for i in range(steps):
        total += yield call(step, workflow_id, i)
    slept = None
    if pause:
        before = yield now()
        yield sleep(pause)
        after = yield now()
        slept = (after - before).total_seconds()
    got = (yield receive("go")) if wait_signal else None
    return {"total": total, "slept": slept, "signal": got}


def instrument() -> None:
    point = CRASH[0]
    if point in ("before-commit", "after-commit"):
        target = int(CRASH[1])
        original = SQLiteStore.commit
        count = 0

        async def commit(self, writes, now):  # type: ignore[no-untyped-def]
            nonlocal count
            count += 1
            if point == "before-commit" and count == target:
                die()
            outcomes = await original(self, writes, now)
            if point == "after-commit" and count == target:
                die()
            return outcomes

        SQLiteStore.commit = commit  # type: ignore[method-assign]
    elif point == "mid-commit":
        from durable.store.sqlite import ops

        limit = int(CRASH[1])
        original_commit = SQLiteStore.commit
        original_apply = ops.apply_write
        batch = {"size": 0, "applied": 0}

        async def commit_group(self, writes, now):  # type: ignore[no-untyped-def]
            # One group commit in flight at a time: the writer thread applies this one next.
            batch["size"], batch["applied"] = len(writes), 0
            return await original_commit(self, writes, now)

        def apply_write(*a, **k):  # type: ignore[no-untyped-def]
            outcome = original_apply(*a, **k)
            batch["applied"] += 1
            if batch["applied"] >= limit and batch["size"] >= 2 * limit:
                die()  # from the writer thread, halfway through a large group commit, before COMMIT
            return outcome

        SQLiteStore.commit = commit_group  # type: ignore[method-assign]
        ops.apply_write = apply_write  # type: ignore[assignment]
    elif point == "replay":
        limit = int(CRASH[1])
        original_feed = Driver.feed
        fed = 0

        def feed(self, entries, last=False):  # type: ignore[no-untyped-def]
            nonlocal fed
            entries = list(entries)
            fed += len(entries)
            if fed >= limit:
                die()
            return original_feed(self, entries, last)

        Driver.feed = feed  # type: ignore[method-assign]


async def main() -> None:
    instrument()
    ids = [f"wf-{i}" for i in range(opts.workflows)]
    async with durable.Engine(opts.db) as engine:
        if opts.mode == "start":
            if opts.together:  # all at once: their writes pile up into large group commits
                await asyncio.gather(*(engine.start(chain, workflow_id, opts.steps, opts.sleep, opts.signal,
                                                    id=workflow_id) for workflow_id in ids))
            else:
                for workflow_id in ids:
                    await engine.start(chain, workflow_id, opts.steps, opts.sleep, opts.signal, id=workflow_id)
        if CRASH[0] in ("sleeping", "waiting"):
            while True:
                statuses = {await engine.status(i) for i in ids}
                if statuses == {"waiting"}:
                    die()
                await asyncio.sleep(0.005)
        if opts.settle:
            statuses = {}
            while True:
                statuses = {i: await engine.status(i) for i in ids}
                if set(statuses.values()) <= {"completed", "failed", "cancelled", "blocked"}:
                    break
                await asyncio.sleep(0.01)
            results = {i: await engine.result(i) for i, s in statuses.items() if s == "completed"}
            print(json.dumps({"results": results, "statuses": statuses}, sort_keys=True))
            return
        results = {workflow_id: await engine.result(workflow_id, timeout=120) for workflow_id in ids}
    print(json.dumps(results, sort_keys=True))


asyncio.run(main())
sys.exit(0)
