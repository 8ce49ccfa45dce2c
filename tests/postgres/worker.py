"""A worker process for the multi-process tests: `python worker.py DSN`.

Opens an Engine on the DSN with the workflows of workflows.py, prints
"ready <pid>" once registered, and runs until its stdin closes (a clean
stop) or it is killed.
"""

from __future__ import annotations

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import durable  # noqa: E402
from workflows import reg  # noqa: E402


async def main(dsn: str) -> None:
    async with durable.Engine(dsn, registry=reg, lease=60.0):
        print("ready", os.getpid(), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
