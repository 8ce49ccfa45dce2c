"""Tools for testing workflows.

- `replay(fn, journal, *args)`: drive workflow code over a recorded or
  exported journal without running anything; `NondeterminismError` where
  they part ways.
- `check(fn, *args, activities=...)`: a hypothesis property that the
  workflow recovers from a crash after any journal write exactly as it ran.
- `export_journal` / `load_journal`: the versioned JSON-lines export format.
- `assert_replays(fn, *paths)`: replay every exported journal under `paths`.
- `strategies`: hypothesis strategies for outcomes, signals, timers, races.
- `VirtualClock`: week-long sleeps in milliseconds.
- The pytest plugin (`durable.testing.plugin`, loaded automatically)
  runs `async def` tests and provides engine, clock and registry fixtures.
"""

from typing import Any

from ..clock import VirtualClock
from .export import FORMAT, VERSION, ExportedJournal, dumps_journal, export_journal, load_journal, loads_journal
from .replayer import ReplayResult, replay
from .verdict import Verdict, assert_replays, judge

__all__ = [
    "FORMAT",
    "VERSION",
    "ExportedJournal",
    "ReplayResult",
    "Verdict",
    "VirtualClock",
    "assert_replays",
    "check",
    "dumps_journal",
    "export_journal",
    "judge",
    "load_journal",
    "loads_journal",
    "replay",
    "strategies",
]


def __getattr__(name: str) -> Any:
    # check() and the strategies need hypothesis (the "test" extra); replay and the
    # export format do not, and neither does the pytest plugin that imports this package.
    if name == "check":
        from .checker import check

        return check
    if name == "strategies":
        from . import strategies

        return strategies
    raise AttributeError(f"module 'durable.testing' has no attribute {name!r}")
