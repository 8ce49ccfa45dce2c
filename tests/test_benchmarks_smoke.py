"""The benchmark harness runs end to end (tiny sizes, in-memory cases only).

No timing assertions: numbers on a shared machine prove nothing here; this
only keeps `python -m benchmarks` from rotting as the engine changes.
"""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_harness_runs_memory_cases() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--memory-only", "--no-save", "--only", "memory,replay"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "== summary" in out
    assert "pure effect (uuid/now/random) per step" in out
    assert "async activity call per step" in out
    assert "memory, plain, 100 entries" in out
    assert "(case failed)" not in out, out
