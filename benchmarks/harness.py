"""Shared helpers: settings, timing, medians, result rows and the table.

Every case returns `Row`s. A row holds our median next to the floor measured
in the same run, so the ratio is meaningful even on a noisy machine; the
absolute numbers are not.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "Row",
    "Settings",
    "Target",
    "alternate",
    "alternate_async",
    "format_table",
    "median",
    "skipped",
]


@dataclass
class Settings:
    """Sizes and repetitions for one run of the harness."""

    mode: str = "full"  # "full", "quick" or "smoke" (the test suite's tiny sizes)
    memory_only: bool = False  # skip everything that needs a database or a subprocess
    peers: bool = False
    workdir: str = "/tmp"  # a temp dir for databases, removed afterwards

    @property
    def quick(self) -> bool:
        return self.mode != "full"

    @property
    def smoke(self) -> bool:
        return self.mode == "smoke"

    @property
    def reps(self) -> int:
        return {"full": 7, "quick": 3, "smoke": 1}[self.mode]

    def size(self, full: int, quick: int, smoke: int) -> int:
        return {"full": full, "quick": quick, "smoke": smoke}[self.mode]


@dataclass
class Target:
    """A goal: `op` is "<=" or ">="; `on` is "value" (in the row's unit) or "ratio" (× the floor)."""

    op: str
    limit: float
    on: str = "value"

    def describe(self, unit: str) -> str:
        sign = "≤" if self.op == "<=" else "≥"
        if self.on == "ratio":
            return f"{sign} {self.limit:g}× floor"
        return f"{sign} {_num(self.limit)} {unit}"

    def met(self, value: float | None, ratio: float | None) -> bool | None:
        x = ratio if self.on == "ratio" else value
        if x is None:
            return None
        return x <= self.limit if self.op == "<=" else x >= self.limit


@dataclass
class Row:
    """One measurement. `ratio` is always "times the floor's cost" (1.0 = on the floor)."""

    case: str
    name: str
    value: float | None
    unit: str
    floor: float | None = None
    floor_name: str = ""
    higher_is_better: bool = False  # rates (steps/s): ratio = floor / value
    target: Target | None = None
    note: str = ""
    samples: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.floor is None or self.value == 0 or self.floor == 0:
            return None
        return self.floor / self.value if self.higher_is_better else self.value / self.floor

    @property
    def met(self) -> bool | None:
        return self.target.met(self.value, self.ratio) if self.target else None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["target"] = self.target.describe(self.unit) if self.target else None
        out["ratio"] = self.ratio
        out["met"] = self.met
        return out


def skipped(case: str, name: str, why: str) -> Row:
    """A row that could not be measured here, with the reason in place of a number."""
    return Row(case, name, None, "", note=why)


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def alternate(reps: int, *fns: Callable[[], float], warmup: int = 1) -> list[list[float]]:
    """Run each fn `warmup` times, then `reps` rounds of all of them, interleaved.

    Each fn returns its own measurement (so it can time only the part that
    matters); interleaving spreads the machine's noise over every contender.
    """
    for _ in range(warmup):
        for fn in fns:
            fn()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(reps):
        for i, fn in enumerate(fns):
            gc.collect()
            samples[i].append(fn())
    return samples


async def alternate_async(reps: int, *fns: Callable[[], Awaitable[float]], warmup: int = 1) -> list[list[float]]:
    """`alternate` for coroutine functions (the floor may be a plain function wrapped in one)."""
    for _ in range(warmup):
        for fn in fns:
            await fn()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(reps):
        for i, fn in enumerate(fns):
            gc.collect()
            samples[i].append(await fn())
    return samples


def clock() -> float:
    return time.perf_counter()


# -- the table ------------------------------------------------------------------------


def _num(x: float) -> str:
    if x >= 10_000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def format_table(rows: Sequence[Row]) -> str:
    """A plain-text table: median, floor, ratio, target and whether it is met."""
    header = ("case", "measurement", "median", "unit", "floor (same run)", "ratio", "target", "")
    lines: list[tuple[str, ...]] = []
    for r in rows:
        if r.value is None:
            lines.append((r.case, r.name, "-", "", "", "", "", r.note))
            continue
        floor = ""
        if r.floor is not None:
            floor = _num(r.floor) + (f" ({r.floor_name})" if r.floor_name else "")
        ratio = f"{r.ratio:.2f}×" if r.ratio is not None else ""
        target = r.target.describe(r.unit) if r.target else ""
        met = {True: "ok", False: "MISS", None: ""}[r.met]
        if r.note:
            met = f"{met} {r.note}".strip()
        lines.append((r.case, r.name, _num(r.value), r.unit, floor, ratio, target, met))
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    numeric = {2, 4, 5}

    def fmt(cells: tuple[str, ...]) -> str:
        parts = []
        for i, cell in enumerate(cells):
            if i == len(cells) - 1:
                parts.append(cell)
            elif i in numeric:
                parts.append(cell.rjust(widths[i]))
            else:
                parts.append(cell.ljust(widths[i]))
        return "  ".join(parts).rstrip()

    out = [fmt(header), fmt(tuple("-" * w for w in widths[:-1]) + ("",))]
    out.extend(fmt(line) for line in lines)
    return "\n".join(out)
