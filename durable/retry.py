"""Retry policies for activities."""

from __future__ import annotations

import random as _random
from collections.abc import Iterable

__all__ = ["Retry"]


class Retry:
    """How often and how patiently an activity is retried.

    `attempts` counts every attempt, the first included (None: no limit).
    The delay before attempt n+1 is `initial * backoff**(n-1)`, capped at
    `maximum`. `non_retryable` exception classes (a tuple, or one class;
    matched with isinstance) fail the activity at once. `jitter` (0 to 0.1) shortens each delay by up
    to that fraction, at random, so retries of many workflows spread out.
    """

    __slots__ = ("attempts", "initial", "backoff", "maximum", "non_retryable", "jitter")

    def __init__(
        self,
        attempts: int | None = 3,
        initial: float = 1.0,
        backoff: float = 2.0,
        maximum: float = 60.0,
        non_retryable: type[BaseException] | Iterable[type[BaseException]] = (),
        jitter: float = 0.0,
    ) -> None:
        if attempts is not None and (not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1):
            raise ValueError(f"Retry(attempts=...) must be a positive int or None, got {attempts!r}")
        if initial < 0 or maximum < 0:
            raise ValueError("Retry delays (initial, maximum) must not be negative")
        if backoff < 1:
            raise ValueError(f"Retry(backoff=...) must be at least 1, got {backoff!r}")
        if not 0.0 <= jitter <= 0.1:
            raise ValueError(f"Retry(jitter=...) must be between 0 and 0.1, got {jitter!r}")
        if isinstance(non_retryable, type):
            non_retryable = (non_retryable,)  # one class, as isinstance() takes it
        elif not isinstance(non_retryable, Iterable):
            raise TypeError(
                f"Retry(non_retryable=...) takes an exception class or a tuple of them, got {non_retryable!r}"
            )
        non_retryable = tuple(non_retryable)
        for cls in non_retryable:
            if not (isinstance(cls, type) and issubclass(cls, BaseException)):
                raise TypeError(f"Retry(non_retryable=...) takes exception classes, got {cls!r}")
        self.attempts = attempts
        self.initial = float(initial)
        self.backoff = float(backoff)
        self.maximum = float(maximum)
        self.non_retryable = non_retryable
        self.jitter = float(jitter)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        delay = min(self.initial * self.backoff ** (attempt - 1), self.maximum)
        if self.jitter:
            delay *= 1.0 - self.jitter * _random.random()
        return delay

    def gives_up(self, attempt: int, error: BaseException) -> bool:
        """True if attempt number `attempt` failing with `error` ends the activity."""
        if isinstance(error, self.non_retryable):
            return True
        return self.attempts is not None and attempt >= self.attempts

    def __repr__(self) -> str:
        extra = f", non_retryable={self.non_retryable!r}" if self.non_retryable else ""
        extra += f", jitter={self.jitter}" if self.jitter else ""
        return (
            f"Retry(attempts={self.attempts}, initial={self.initial}, backoff={self.backoff}, "
            f"maximum={self.maximum}{extra})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Retry):
            return NotImplemented
        return all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, s) for s in self.__slots__))


DEFAULT_RETRY = Retry(attempts=3, initial=1.0, backoff=2.0, maximum=60.0)
