"""The simulated world check() runs in agrees with the engine on what gets recorded."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import find
from hypothesis.strategies import SearchStrategy

import durable
from durable.testing.checker import compare, crash_points
from durable.testing.world import Divergence, Setup, Sim, Step

from .flows import order, reg


class Simplest:
    """Always the first option and the simplest value: a fixed, engine-like run."""

    def pick(self, count: int) -> int:
        return 0

    def draw(self, strategy: SearchStrategy[Any]) -> Any:
        return find(strategy, lambda _: True)


def _shape(entries: Any) -> list[tuple]:
    return [tuple(e[:5]) for e in sorted(entries, key=lambda e: e[0])]


@pytest.mark.parametrize("cents", [4200, 50_000], ids=["approval-times-out", "card-declined"])
async def test_simulated_journal_matches_the_engines(memory_engine, cents: int) -> None:
    sim = Sim(order, ("o-1", cents), {}, Setup(inject=False, cancel=False), chooser=Simplest()).run()
    async with memory_engine(registry=reg) as engine:
        handle = await engine.start(order, "o-1", cents, id="o-1")
        engine_result = await handle.result(timeout=5)
        journal = await engine.journal("o-1")
    assert _shape(sim.written) == _shape(journal)
    assert sim.state == "completed" and sim.value == engine_result


def test_every_crash_point_of_a_deterministic_run_recovers_identically() -> None:
    setup = Setup(signals={"approve": "ann", "hurry": None})
    reference = Sim(order, ("o-1", 4200), {}, setup, chooser=Simplest()).run()
    points = crash_points(reference)
    assert points[0].written == 0 and [p.written for p in points] == sorted({p.written for p in points})
    assert points[-1].written == len(reference.written)
    for point in points:
        recovered = Sim(order, ("o-1", 4200), {}, setup, reference=reference).recover(point)
        assert compare(reference, recovered) is None


def test_a_step_the_recovered_run_cannot_take_is_a_divergence() -> None:
    reference = Sim(order, ("o-1", 4200), {}, Setup(inject=False, cancel=False), chooser=Simplest()).run()
    recovered = Sim(order, ("o-1", 4200), {}, reference.setup, reference=reference)
    recovered.start(())
    bogus = Step("complete", 99, reference.written[0])
    with pytest.raises(Divergence, match="no longer waits on position 99"):
        recovered.apply(bogus)


def test_an_activity_retrying_forever_never_finishes() -> None:
    @durable.activity(name="tt.always-down", retry=durable.Retry(attempts=None, initial=0.01))
    def always_down() -> None:
        raise ConnectionError("down")

    @reg.workflow(name="tt.forever")
    def forever() -> Any:
        index, _ = yield durable.race(durable.call(always_down), durable.sleep(5))
        return index

    sim = Sim(forever, (), {}, Setup(inject=False, cancel=False), chooser=Simplest()).run()
    assert sim.value == 1  # the timer won: the activity is still retrying
