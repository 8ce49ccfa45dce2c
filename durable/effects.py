"""Effects: the plain value objects a workflow yields.

Each is a `__slots__` class (not a frozen dataclass: these are built on every
step and a frozen dataclass costs twice as much). Yielding one suspends the
workflow until its outcome is known, live or from the journal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from .registry import Activity, Workflow, as_activity, seconds_of
from .retry import Retry
from .store.validate import check_name

__all__ = [
    "Call",
    "ContinueAsNew",
    "Effect",
    "Gather",
    "Now",
    "Race",
    "Random",
    "Receive",
    "Sleep",
    "UUID",
    "Version",
    "call",
    "continue_as_new",
    "gather",
    "now",
    "race",
    "random",
    "receive",
    "sleep",
    "uuid",
    "version",
]


class Effect:
    """Base of every effect. `kind` is what the journal records."""

    __slots__ = ()
    kind = ""

    def describe(self) -> str:
        return f"{self.kind}()"

    def __repr__(self) -> str:
        return f"<effect {self.describe()}>"

    def __eq__(self, other: object) -> bool:
        """Value equality: the same kind of effect with equal fields (`sleep(5) == sleep(5)`)."""
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in type(self).__slots__)

    # Equal by value and holding lists and dicts (arguments): unhashable, like a list.
    __hash__ = None  # type: ignore[assignment]


def format_seconds(secs: float) -> str:
    if secs >= 86400 and secs % 3600 == 0:
        return f"{secs / 86400:g}d"
    if secs >= 3600 and secs % 60 == 0:
        return f"{secs / 3600:g}h"
    return f"{secs:g}s"


class Call(Effect):
    """Run an activity, or a workflow as a child, and wait for its outcome."""

    __slots__ = ("target", "name", "args", "kwargs", "id", "retry", "timeout")
    kind = "call"

    def __init__(self, target: Activity[Any, Any] | Workflow[Any, Any], args: tuple, kwargs: dict) -> None:
        self.target = target
        self.name = target.name  # a slot, not a property: replay reads it for every entry
        self.args = args
        self.kwargs = kwargs
        self.id: str | None = None
        self.retry: Retry | None = None
        self.timeout: float | None = None

    @property
    def is_child(self) -> bool:
        return isinstance(self.target, Workflow)

    def options(
        self, *, id: str | None = None, retry: Retry | None = None, timeout: float | None = None
    ) -> Call:
        """Per-call options: a child workflow's `id`; an activity's `retry` policy and `timeout`."""
        if id is not None:
            if not self.is_child:
                raise TypeError(f"call({self.name}).options(id=...) applies to child workflows only")
            if not isinstance(id, str) or not id:
                raise ValueError(f"a child workflow id must be a non-empty string, got {id!r}")
            self.id = id
        if retry is not None:
            if self.is_child:
                raise TypeError("a child workflow is not retried; retry= applies to activities")
            if not isinstance(retry, Retry):
                raise TypeError(f"options(retry=...) takes a durable.Retry, got {retry!r}")
            self.retry = retry
        if timeout is not None:
            if self.is_child:
                raise TypeError("timeout= applies to activities; race a child against sleep() instead")
            self.timeout = seconds_of(timeout, "options(timeout=...)") or None
        return self

    def describe(self) -> str:
        return f"call({self.target.name})"


class Sleep(Effect):
    """A durable timer; its deadline is recorded when first reached."""

    __slots__ = ("seconds",)
    kind = "sleep"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def describe(self) -> str:
        return f"sleep({format_seconds(self.seconds)})"


class Receive(Effect):
    """The next signal of `name`, oldest first; `durable.Timeout` after `timeout` seconds."""

    __slots__ = ("name", "timeout")
    kind = "receive"

    def __init__(self, name: str, timeout: float | None) -> None:
        self.name = name
        self.timeout = timeout

    def describe(self) -> str:
        return f"receive({self.name!r})"


class UUID(Effect):
    __slots__ = ()
    kind = "uuid"


class Now(Effect):
    __slots__ = ()
    kind = "now"


class Random(Effect):
    __slots__ = ()
    kind = "random"


class Version(Effect):
    """A marker for changing workflow code while old runs are in flight."""

    __slots__ = ("change_id", "latest")
    kind = "version"

    def __init__(self, change_id: str, latest: int) -> None:
        self.change_id = change_id
        self.latest = latest

    @property
    def name(self) -> str:
        return self.change_id

    def describe(self) -> str:
        return f"version({self.change_id!r})"


class Gather(Effect):
    """All of `effects`, concurrently; their outcomes as a list in argument order."""

    __slots__ = ("effects",)
    kind = "gather"

    def __init__(self, effects: tuple[Effect, ...]) -> None:
        self.effects = effects

    def describe(self) -> str:
        return f"gather({', '.join(e.describe() for e in self.effects)})"


class Race(Effect):
    """The first of `effects` to finish, as `(index, outcome)`; the rest are abandoned."""

    __slots__ = ("effects",)
    kind = "race"

    def __init__(self, effects: tuple[Effect, ...]) -> None:
        self.effects = effects

    def describe(self) -> str:
        return f"race({', '.join(e.describe() for e in self.effects)})"


class ContinueAsNew(Effect):
    """End this run and start the same workflow afresh (same id, empty journal)."""

    __slots__ = ("args", "kwargs")
    kind = "continue_as_new"

    def __init__(self, args: tuple, kwargs: dict) -> None:
        self.args = args
        self.kwargs = kwargs


# Leaf kinds that take a journal position; composites only group leaves.
PURE_KINDS = frozenset({"uuid", "now", "random"})
LEAF_TYPES = (Call, Sleep, Receive, UUID, Now, Random, Version)

_UUID = UUID()
_NOW = Now()
_RANDOM = Random()


def call(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Call:
    """Run `fn` as an activity (retried by its policy), or as a child workflow if it is one.

    Outcome: its return value; `ActivityError` once retries are exhausted;
    `ChildWorkflowError` if a child workflow fails.
    """
    if isinstance(fn, (Activity, Workflow)):
        return Call(fn, args, kwargs)
    if isinstance(fn, Effect):
        raise TypeError(f"call() takes a function, not an effect ({fn.describe()}); yield the effect itself")
    if not callable(fn):
        raise TypeError(f"call() takes an activity or workflow function, got {fn!r}")
    return Call(as_activity(fn), args, kwargs)


def sleep(duration: float | timedelta, /) -> Sleep:
    """A durable timer: no process waits, and a restart neither lengthens nor shortens it."""
    return Sleep(seconds_of(duration, "sleep()"))


def receive(name: str, /, timeout: float | timedelta | None = None) -> Receive:
    """The next signal called `name`, oldest first; signals sent earlier are kept until then."""
    if not isinstance(name, str):
        raise TypeError(f"receive() takes a signal name (str), got {name!r}")
    if len(name) > 250 or not name.isascii():  # the usual name passes without the UTF-8 encode
        check_name(name, "receive() signal name", empty_ok=True)
    return Receive(name, None if timeout is None else seconds_of(timeout, "receive(timeout=...)"))


def uuid() -> UUID:
    """A random `uuid.UUID`, recorded so replays see the same one."""
    return _UUID


def now() -> Now:
    """The current time as an aware UTC `datetime`, recorded so replays see the same one."""
    return _NOW


def random() -> Random:
    """A float in [0, 1), recorded so replays see the same one."""
    return _RANDOM


def version(change_id: str, /, latest: int = 1) -> Version:
    """`latest` for runs that reach this point live; 0 for runs already past it under older code."""
    if not isinstance(change_id, str) or not change_id:
        raise TypeError(f"version() takes a non-empty change id (str), got {change_id!r}")
    check_name(change_id, "version() change id")
    if not isinstance(latest, int) or isinstance(latest, bool) or latest < 1:
        raise ValueError(f"version(latest=...) must be a positive int, got {latest!r}")
    return Version(change_id, latest)


def _members(effects: tuple[Any, ...], what: str) -> tuple[Effect, ...]:
    for index, effect in enumerate(effects):
        if not isinstance(effect, Effect) or isinstance(effect, ContinueAsNew):
            hint = " (did you forget call(...)?)" if callable(effect) else ""
            raise TypeError(f"{what}() takes effects; argument {index} is {effect!r}{hint}")
        if isinstance(effect, Version):
            raise TypeError(f"{what}() cannot hold version(); yield it on its own")
    return effects


def gather(*effects: Effect) -> Gather:
    """Run `effects` concurrently; outcome: the list of their outcomes in argument order.

    If any fails, the first failure in argument order is thrown once all have finished.
    """
    return Gather(_members(effects, "gather"))


def race(*effects: Effect) -> Race:
    """The first of `effects` to finish wins: outcome `(index, value)`, or its failure thrown.

    Among members ready at once the lowest index wins; the rest are abandoned.
    """
    if not effects:
        raise TypeError("race() needs at least one effect")
    return Race(_members(effects, "race"))


def continue_as_new(*args: Any, **kwargs: Any) -> ContinueAsNew:
    """Yield or return this to restart the workflow with new arguments and an empty journal."""
    return ContinueAsNew(args, kwargs)
