"""`durable demo`: an order saga on SQLite that survives a kill -9.

It starts a worker process, lets it charge a card and wait for a human
approval, kills it with SIGKILL, sends the approval while no worker runs,
then resumes in a new engine: the charge is not made again, and the order
ships.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from typing import Any

import durable
from durable import activity, call, gather, receive, sleep, workflow

__all__ = ["register"]

_LOG = "DURABLE_DEMO_LOG"


def _note(what: str) -> None:
    path = os.environ.get(_LOG)
    if path:
        with open(path, "a") as log:
            log.write(what + "\n")


@activity(name="demo.charge")
def charge(order_id: str, cents: int) -> str:
    _note("charge")
    key = durable.activity_info().idempotency_key  # what a payment API would get
    return f"receipt-{order_id}-{key[:8]}"


@activity(name="demo.ship")
async def ship(order_id: str) -> str:
    _note("ship")
    return f"parcel-{order_id}"


@activity(name="demo.mail")
async def mail(order_id: str, text: str) -> None:
    _note("mail")


@activity(name="demo.refund")
def refund(receipt: str) -> None:
    _note("refund")


@workflow(name="demo.order")
def order(order_id: str, cents: int):
    receipt = yield call(charge, order_id, cents)
    try:
        approver = yield receive("approve", timeout=timedelta(hours=1))
    except durable.Timeout:
        yield call(refund, receipt)
        return {"order": order_id, "status": "expired"}
    yield sleep(0.5)  # a durable timer: no process waits on it
    parcel, _ = yield gather(call(ship, order_id), call(mail, order_id, f"approved by {approver}"))
    return {"order": order_id, "receipt": receipt, "approved_by": approver, "parcel": parcel}


async def _first_life(db: str) -> None:
    async with durable.Engine(db) as engine:
        await engine.start(order, "o-17", 4200, id="order-o-17")
        while await engine.status("order-o-17") != "waiting":
            await asyncio.sleep(0.01)
        print("  worker: charged the card; waiting for approval", flush=True)
        await asyncio.sleep(3600)  # killed long before this


async def _second_life(db: str) -> dict[str, Any]:
    async with durable.Engine(db, worker=False) as client:
        print(f"  status with no worker running: {await client.status('order-o-17')}")
        await client.signal("order-o-17", "approve", "ann")
        print("  sent signal 'approve' (durable as soon as signal() returns)")
    print("\n3. A new engine starts on the same file and resumes the order")
    started = time.perf_counter()
    async with durable.Engine(db) as engine:
        result = await engine.result("order-o-17", timeout=30)
        took = (time.perf_counter() - started) * 1000
        print(f"  result after {took:.0f} ms: {result}")
        print(f"\n4. The journal (`python -m durable show order-o-17 --store {db}` prints it too):")
        for entry in await engine.journal("order-o-17"):
            value = repr(entry.value)
            print(f"  {entry.position:>3}  {entry.kind:<8} {entry.name:<14} {value[:60]}")
    return result


def run(args: argparse.Namespace) -> int:
    directory = tempfile.mkdtemp(prefix="durable-demo-")
    db = args.db or os.path.join(directory, "demo.db")
    log = os.path.join(directory, "activities.log")
    env = {**os.environ, _LOG: log}
    print(f"durable demo: an order saga on SQLite ({db})\n")
    print("1. A worker process starts the order")
    worker = subprocess.Popen([sys.executable, "-m", "durable.cli.demo", "first-life", db], env=env,
                              stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None
    line = worker.stdout.readline()
    print(line.rstrip())
    if "waiting" not in line:
        worker.kill()
        print("durable demo: the worker did not reach the approval step", file=sys.stderr)
        return 1
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    print(f"  worker killed with SIGKILL (exit {worker.returncode})\n")
    print("2. While no worker runs, someone approves")
    os.environ[_LOG] = log
    result = asyncio.run(_second_life(db))
    with open(log) as handle:
        calls = handle.read().split()
    print(f"\n5. Activity executions across both processes: {', '.join(calls)}")
    print(f"   charge ran {calls.count('charge')} time(s): the recorded step was not repeated.")
    return 0 if result.get("parcel") and calls.count("charge") == 1 else 1


def register(commands: Any) -> None:
    parser = commands.add_parser("demo", help="run an order saga on SQLite that survives kill -9")
    parser.add_argument("--db", help="SQLite file to use (default: a new temporary directory)")
    parser.set_defaults(run=run)


if __name__ == "__main__" and sys.argv[1:2] == ["first-life"]:
    asyncio.run(_first_life(sys.argv[2]))
