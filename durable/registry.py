"""`@workflow`, `@activity` and the registry that maps journal names to code."""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import Callable, Generator, Iterator
from datetime import timedelta
from typing import Any, Generic, ParamSpec, TypeVar, overload

from .retry import DEFAULT_RETRY, Retry
from .store.validate import check_name

__all__ = ["Activity", "Registry", "Workflow", "activity", "default_registry", "workflow"]

P = ParamSpec("P")
R = TypeVar("R")


def seconds_of(value: float | timedelta, what: str) -> float:
    """Seconds from an int, a float or a timedelta (as sleep, receive and activity timeouts take them)."""
    if isinstance(value, timedelta):
        secs = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        secs = float(value)
    else:
        raise TypeError(f"{what} takes seconds (int or float) or a timedelta, got {value!r}")
    if secs != secs or secs < 0:
        raise ValueError(f"{what} must not be negative or NaN, got {value!r}")
    return secs


def default_name(fn: Callable[..., Any]) -> str:
    """`module:qualname`, the name journals record unless one is given."""
    qualname = getattr(fn, "__qualname__", None)
    if qualname is None:
        raise TypeError(
            f"{fn!r} has no __qualname__ to derive a name from; decorate it with "
            "@activity(name=...) or @workflow(name=...)"
        )
    return f"{fn.__module__}:{qualname}"


def source_of(fn: Callable[..., Any]) -> str:
    """`module.qualname (file:line)`: enough to find a function."""
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
    code = getattr(fn, "__code__", None)
    if code is None:
        return name
    return f"{name} ({code.co_filename}:{code.co_firstlineno})"


class Activity(Generic[P, R]):
    """A function run by the engine at least once, retried by its policy.

    Calling it directly calls the plain function, which keeps unit tests simple.
    """

    def __init__(self, fn: Callable[P, R], *, name: str, retry: Retry, timeout: float | timedelta | None) -> None:
        seconds = None if timeout is None else seconds_of(timeout, "@activity(timeout=...)")
        if seconds is not None and seconds <= 0:
            raise ValueError(f"@activity(timeout=...) must be positive seconds or a timedelta, got {timeout!r}")
        self.fn = fn
        self.name = check_name(name, f"@activity name of {default_name(fn)}")
        self.retry = retry
        self.timeout = seconds
        self.is_async = inspect.iscoroutinefunction(fn)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<activity {self.name}>"


class Workflow(Generic[P, R]):
    """A generator function whose yields are recorded and replayed.

    Calling it directly returns the plain generator, so one workflow can run
    another inline with `yield from`.
    """

    def __init__(self, fn: Callable[P, Generator[Any, Any, R]], *, name: str) -> None:
        self.fn = fn
        self.name = check_name(name, f"@workflow name of {default_name(fn)}")
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Generator[Any, Any, R]:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<workflow {self.name}>"


class Registry:
    """Maps workflow names to code. Engines claim only workflows registered here.

    The module-level `@workflow` registers into `default_registry`; tests that
    want isolation make their own `Registry()` and decorate with its `workflow`.
    """

    def __init__(self) -> None:
        self._workflows: dict[str, Workflow[Any, Any]] = {}

    def add(self, wf: Workflow[Any, Any]) -> Workflow[Any, Any]:
        """Register `wf` under its name; a different function under that name is a ValueError.

        Re-running the same definition (same code object, e.g. a test that
        defines its workflow inside a parametrized function) replaces the entry.
        """
        if not isinstance(wf, Workflow):
            raise TypeError(f"Registry.add takes a @workflow, got {wf!r}")
        existing = self._workflows.get(wf.name)
        if existing is not None and existing is not wf:
            same = getattr(existing.fn, "__code__", None) is getattr(wf.fn, "__code__", 1)
            if not same:
                raise ValueError(
                    f"workflow name {wf.name!r} is already registered to {source_of(existing.fn)}; "
                    f"cannot register {source_of(wf.fn)} under the same name. Give one of them "
                    "@workflow(name=...)"
                )
        self._workflows[wf.name] = wf
        return wf

    def get(self, name: str) -> Workflow[Any, Any] | None:
        return self._workflows.get(name)

    def names(self) -> frozenset[str]:
        return frozenset(self._workflows)

    def remove(self, name: str) -> None:
        self._workflows.pop(name, None)

    def clear(self) -> None:
        self._workflows.clear()

    def __contains__(self, name: object) -> bool:
        return name in self._workflows

    def __iter__(self) -> Iterator[Workflow[Any, Any]]:
        return iter(list(self._workflows.values()))

    def __len__(self) -> int:
        return len(self._workflows)

    @overload
    def workflow(self, fn: Callable[P, Generator[Any, Any, R]], /) -> Workflow[P, R]: ...
    @overload
    def workflow(
        self, fn: None = None, /, *, name: str | None = None
    ) -> Callable[[Callable[P, Generator[Any, Any, R]]], Workflow[P, R]]: ...

    def workflow(self, fn: Any = None, /, *, name: str | None = None) -> Any:
        """Decorator: mark a generator function as a workflow and register it here."""

        def decorate(f: Callable[..., Any]) -> Workflow[Any, Any]:
            return self.add(make_workflow(f, name))

        return decorate if fn is None else decorate(fn)


def make_workflow(fn: Callable[..., Any], name: str | None) -> Workflow[Any, Any]:
    if isinstance(fn, Workflow):
        return fn if name is None or name == fn.name else Workflow(fn.fn, name=name)
    if inspect.isasyncgenfunction(fn) or inspect.iscoroutinefunction(fn):
        raise TypeError(
            f"@workflow needs a generator function (def ... with yield), but "
            f"{getattr(fn, '__qualname__', fn)!r} is async. Workflows are plain generators "
            "that yield effects; put async code in an @activity and `yield call(...)` it"
        )
    if not inspect.isgeneratorfunction(fn):
        raise TypeError(
            f"@workflow needs a generator function (def ... with yield), but "
            f"{getattr(fn, '__qualname__', fn)!r} is not one: a workflow yields effects "
            "such as call(...), sleep(...) or receive(...)"
        )
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"@workflow(name=...) must be a non-empty string, got {name!r}")
    return Workflow(fn, name=name or default_name(fn))


default_registry = Registry()


@overload
def workflow(fn: Callable[P, Generator[Any, Any, R]], /) -> Workflow[P, R]: ...
@overload
def workflow(
    fn: None = None, /, *, name: str | None = None
) -> Callable[[Callable[P, Generator[Any, Any, R]]], Workflow[P, R]]: ...


def workflow(fn: Any = None, /, *, name: str | None = None) -> Any:
    """Mark a generator function as a workflow, registered by name (default `module:qualname`).

    Use bare (`@workflow`) or called (`@workflow(name="billing")`); pass `name=`
    for long-lived code, because moving or renaming the function changes the
    default name and journals record names.
    """
    return default_registry.workflow(fn, name=name) if fn is not None else default_registry.workflow(name=name)


@overload
def activity(fn: Callable[P, R], /) -> Activity[P, R]: ...
@overload
def activity(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    retry: Retry | None = None,
    timeout: float | timedelta | None = None,
) -> Callable[[Callable[P, R]], Activity[P, R]]: ...


def activity(
    fn: Any = None,
    /,
    *,
    name: str | None = None,
    retry: Retry | None = None,
    timeout: float | timedelta | None = None,
) -> Any:
    """Mark a sync or async function as an activity.

    `retry` defaults to `Retry(attempts=3, initial=1.0, backoff=2.0, maximum=60.0)`;
    `timeout` (seconds or a timedelta) applies to each attempt.
    """

    def decorate(f: Callable[..., Any]) -> Activity[Any, Any]:
        return make_activity(f, name=name, retry=retry, timeout=timeout)

    return decorate if fn is None else decorate(fn)


def make_activity(
    fn: Callable[..., Any], *, name: str | None, retry: Retry | None, timeout: float | timedelta | None
) -> Activity[Any, Any]:
    if isinstance(fn, Workflow):
        raise TypeError(f"{fn!r} is a workflow; call it from another workflow with call() as a child")
    if isinstance(fn, Activity):
        fn = fn.fn
    if not callable(fn):
        raise TypeError(f"@activity needs a function, got {fn!r}")
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(
            f"@activity needs a plain function (sync or async), but {getattr(fn, '__qualname__', fn)!r} "
            "is a generator function; did you mean @workflow?"
        )
    if retry is not None and not isinstance(retry, Retry):
        raise TypeError(f"@activity(retry=...) takes a durable.Retry, got {retry!r}")
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"@activity(name=...) must be a non-empty string, got {name!r}")
    return Activity(fn, name=name or default_name(fn), retry=retry or DEFAULT_RETRY, timeout=timeout)


def as_activity(fn: Callable[..., Any]) -> Activity[Any, Any]:
    """The Activity for `fn`: itself if decorated, else one with the default policy."""
    if isinstance(fn, Activity):
        return fn
    try:
        return _plain_activities[fn]
    except (KeyError, TypeError):
        pass
    made = make_activity(fn, name=None, retry=None, timeout=None)
    try:
        _plain_activities[fn] = made
    except TypeError:  # not weak-referenceable: build it afresh next time
        pass
    return made


_plain_activities: weakref.WeakKeyDictionary[Any, Activity[Any, Any]] = weakref.WeakKeyDictionary()
