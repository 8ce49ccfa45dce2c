"""What encryption costs per step on the in-memory store (a script, not a test).

    .venv/bin/python tests/codecs/bench_encryption.py [steps] [repetitions]

Runs the same workflows on `Engine("memory:")` with no codecs, with
AESGCMCodec, and with ZlibCodec + AESGCMCodec, alternating configurations
so machine noise hits all alike, and prints medians and ratios to plain.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import durable
from durable import Registry, activity, call, now, uuid
from durable.codecs import AESGCMCodec, ZlibCodec

registry = Registry()


@activity(name="bench.enc.step")
async def step(i: int) -> dict:
    return {"i": i, "sku": "SKU-000123", "note": "a small, typical activity result"}


@registry.workflow(name="bench.enc.calls")
def calls(n: int):  # type: ignore[no-untyped-def]
    for i in range(n):
        yield call(step, i)
    return n


@registry.workflow(name="bench.enc.pure")
def pure(n: int):  # type: ignore[no-untyped-def]
    for _ in range(n):
        yield uuid()
        yield now()
    return n


CONFIGS: dict[str, Callable[[], list[Any]]] = {
    "plain": lambda: [],
    "aes-gcm": lambda: [AESGCMCodec({"k1": AESGCMCodec.generate_key()})],
    "zlib+aes-gcm": lambda: [ZlibCodec(), AESGCMCodec({"k1": AESGCMCodec.generate_key()})],
}


async def _per_step(engine: durable.Engine, fn: Any, n: int, steps: int) -> tuple[float, float]:
    start = time.perf_counter()
    handle = await engine.start(fn, n)
    await handle.result()
    run = (time.perf_counter() - start) / steps
    start = time.perf_counter()
    await engine.journal(handle.id)  # decodes every entry, as a replay does
    decode = (time.perf_counter() - start) / steps
    return run, decode


async def main(n: int, reps: int) -> None:
    samples: dict[tuple[str, str], list[float]] = {}
    engines = {name: durable.Engine("memory:", codecs=make(), registry=registry) for name, make in CONFIGS.items()}
    for engine in engines.values():
        await engine.open()
    try:
        for engine in engines.values():  # warm up
            await _per_step(engine, calls, 200, 200)
        for _ in range(reps):
            for name, engine in engines.items():
                run, decode = await _per_step(engine, calls, n, n)
                samples.setdefault((name, "async activity step"), []).append(run)
                samples.setdefault((name, "decode a call entry"), []).append(decode)
                run, _ = await _per_step(engine, pure, n, 2 * n)
                samples.setdefault((name, "pure step (uuid/now)"), []).append(run)
    finally:
        for engine in engines.values():
            await engine.close()
    measures = sorted({what for _, what in samples}, key=list(dict.fromkeys(w for _, w in samples)).index)
    print(f"{n} steps x {reps} repetitions, medians in µs per step")
    for what in measures:
        plain = statistics.median(samples[("plain", what)])
        cells = [f"{name} {statistics.median(samples[(name, what)]) * 1e6:7.2f} "
                 f"(x{statistics.median(samples[(name, what)]) / plain:.2f})" for name in CONFIGS]
        print(f"  {what:22} " + "  ".join(cells))


if __name__ == "__main__":
    steps_arg = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    reps_arg = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    asyncio.run(main(steps_arg, reps_arg))
