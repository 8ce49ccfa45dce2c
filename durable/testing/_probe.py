"""A transparent wrapper around a workflow generator, for the testing tools.

The driver only uses `send`, `throw`, `close`, `gi_frame` and `gi_yieldfrom`;
the probe forwards them, remembers what the code yielded last (to describe a
divergence) and can run every step inside a context (the nondeterminism
tracer).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

__all__ = ["Probe"]


class Probe:
    """Forwards to `gen`; `last` is the value it yielded last, `ended` whether it returned or raised
    (`error`: what it raised, None if it returned)."""

    __slots__ = ("gen", "last", "ended", "error", "around")

    def __init__(self, gen: Any, around: Callable[[], contextlib.AbstractContextManager[Any]] | None = None) -> None:
        self.gen = gen
        self.last: Any = None
        self.ended = False
        self.error: BaseException | None = None
        self.around = around

    def send(self, value: Any) -> Any:
        return self._step(self.gen.send, value)

    def throw(self, error: BaseException) -> Any:
        return self._step(self.gen.throw, error)

    def _step(self, how: Callable[[Any], Any], arg: Any) -> Any:
        try:
            if self.around is None:
                self.last = how(arg)
            else:
                with self.around():
                    self.last = how(arg)
        except StopIteration:
            self.ended = True
            self.last = None
            raise
        except BaseException as exc:
            self.ended = True
            self.last = None
            self.error = exc
            raise
        return self.last

    def close(self) -> None:
        self.gen.close()

    @property
    def gi_frame(self) -> Any:
        return getattr(self.gen, "gi_frame", None)

    @property
    def gi_yieldfrom(self) -> Any:
        return getattr(self.gen, "gi_yieldfrom", None)
