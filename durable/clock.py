"""Time as the engine sees it: the system clock, or a virtual one for tests.

Workflow time (deadlines of sleeps, receive timeouts and retry backoffs,
and the value of `now()`) comes from the engine's clock. Activity attempt
timeouts and store leases use real time: they guard real work.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Protocol

__all__ = ["Clock", "SystemClock", "VirtualClock"]


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """What the engine needs of a clock. Times are seconds since the epoch."""

    def now(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run `callback` on the event loop once the clock reaches `when`."""
        ...

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever the clock jumps (virtual clocks only)."""
        ...


class SystemClock:
    """Wall-clock time."""

    skips_when_idle = False

    # The C function itself: the engine reads the clock several times a step.
    now = staticmethod(time.time)

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        loop = asyncio.get_running_loop()
        return loop.call_later(max(0.0, when - time.time()), callback)

    def subscribe(self, callback: Callable[[], None]) -> None:
        return None


class _VirtualTimer:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """A clock that moves only when told, so week-long sleeps take milliseconds.

    `advance(seconds | timedelta)` moves it forward and fires what came due.
    With `skip_when_idle=True` (the default) an engine using this clock also
    jumps it to the next deadline whenever a `result()` call is waiting and
    nothing else can happen first, as a test server with time skipping would.
    """

    def __init__(self, start: float | datetime | None = None, *, skip_when_idle: bool = True) -> None:
        if start is None:
            start = time.time()
        elif isinstance(start, datetime):
            if start.tzinfo is None:
                raise ValueError("VirtualClock(start=...) needs an aware datetime (e.g. tzinfo=timezone.utc)")
            start = start.timestamp()
        self._now = float(start)
        self.skips_when_idle = skip_when_idle
        self._timers: list[tuple[float, int, _VirtualTimer, Callable[[], None]]] = []
        self._order = itertools.count()
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> float:
        return self._now

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self._now, timezone.utc)

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        timer = _VirtualTimer()
        if when <= self._now:
            asyncio.get_running_loop().call_soon(callback)
            return timer
        heapq.heappush(self._timers, (when, next(self._order), timer, callback))
        return timer

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def unsubscribe(self, callback: Callable[[], None]) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def advance(self, by: float | timedelta) -> None:
        """Move forward by `by` (seconds or a timedelta) and fire everything due."""
        seconds = by.total_seconds() if isinstance(by, timedelta) else float(by)
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        self.set(self._now + seconds)

    def set(self, when: float | datetime) -> None:
        """Jump to `when` (never backward) and fire everything due."""
        target = when.timestamp() if isinstance(when, datetime) else float(when)
        if target < self._now:
            raise ValueError("a clock only moves forward")
        self._now = target
        while self._timers and self._timers[0][0] <= target:
            _, _, timer, callback = heapq.heappop(self._timers)
            if not timer.cancelled:
                callback()
        for listener in list(self._listeners):
            listener()

    def next_deadline(self) -> float | None:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def __repr__(self) -> str:
        return f"VirtualClock({self.datetime().isoformat()})"
