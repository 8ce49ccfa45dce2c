"""The worker process of case 5: start a workflow, hang at one step, wait to be killed.

    python -m benchmarks.recovery_worker DB STEPS HANG_AT
"""

from __future__ import annotations

import asyncio
import sys

import durable

from . import workflows as w


async def main(path: str, steps: int, hang_at: int) -> None:
    w.RECOVERY["hang_at"] = hang_at
    async with durable.Engine(path) as engine:
        await engine.start(w.recovery, steps, id="recovery")
        await asyncio.sleep(3600)  # killed long before


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
