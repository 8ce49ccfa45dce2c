"""Spotting workflow code that reads the wall clock or a random source directly.

Replay equivalence catches most nondeterminism, but not all of it within
one test process: `datetime.now().hour` is the same in the first run and in
the recovery a millisecond later, and would only differ in production,
after a real crash, days later. So while `check` runs workflow code it also
profiles it (`sys.setprofile`, only while the generator runs a step) and
records every call from user code (not the standard library, not durable)
to a clock, the global `random` generator, an unseeded `random.Random()`,
`uuid1`/`uuid4`, `os.urandom` or `secrets`. A seeded `random.Random(seed)`
of your own is fine. The profiler does not see arguments, so the `time`
functions that read the clock only when given no time (`localtime()`,
`strftime(fmt)`, `ctime()`...) are wrapped while a step runs; a name bound
by `from time import localtime` keeps the original and is not seen.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import random as _random
import secrets as _secrets
import sys
import sysconfig
import threading
import time as _time
import uuid as _uuid
from collections.abc import Iterator
from typing import Any, NamedTuple

__all__ = ["Finding", "Tracer"]

_CLOCK_FUNCTIONS = {
    _time.time: "time.time()",
    _time.time_ns: "time.time_ns()",
    _time.monotonic: "time.monotonic()",
    _time.monotonic_ns: "time.monotonic_ns()",
    _time.perf_counter: "time.perf_counter()",
    _time.perf_counter_ns: "time.perf_counter_ns()",
    _time.process_time: "time.process_time()",
    _time.process_time_ns: "time.process_time_ns()",
    _time.thread_time: "time.thread_time()",
    _time.thread_time_ns: "time.thread_time_ns()",
    os.urandom: "os.urandom()",
}
_CLOCK_METHODS = {"now", "utcnow", "today"}
_PY_FUNCTIONS = {
    _uuid.uuid1.__code__: "uuid.uuid1()",
    _uuid.uuid4.__code__: "uuid.uuid4()",
}
# Functions of `time` that read the clock only when not given a time (`localtime()`, not
# `localtime(seconds)`): the profiler does not see arguments, so while code is watched these
# are replaced by wrappers that do. Name -> index of the time argument.
_TIME_DEFAULTS = {"localtime": 0, "gmtime": 0, "ctime": 0, "asctime": 0, "strftime": 1}
_TIME_ORIGINALS = {name: getattr(_time, name) for name in _TIME_DEFAULTS}
_RANDOM_FILE = _random.__file__
_RANDOM_SEEDING = {_random.Random.__init__.__code__: "x", _random.Random.seed.__code__: "a"}
_SECRETS_FILE = _secrets.__file__
_STDLIB = os.path.normcase(sysconfig.get_paths()["stdlib"]) + os.sep
_DURABLE = os.path.normcase(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))) + os.sep

_HINTS = {
    "clock": "use `yield durable.now()`, which is recorded, or `yield durable.sleep(...)` to wait",
    "random": "use `yield durable.random()` or `yield durable.uuid()`, which are recorded, or a "
              "random.Random(seed) whose seed the workflow got from a recorded effect",
}


class Finding(NamedTuple):
    """One direct read of a nondeterministic source: `what` it was, `where` (`file:line`)."""

    what: str
    where: str
    family: str  # "clock" or "random"

    def describe(self) -> str:
        return f"{self.what} at {self.where}: {_HINTS[self.family]}"


# Test machinery can run inside a workflow step (hypothesis times garbage
# collections from a gc callback, for one): its reads are not the workflow's.
_TOOLING = ("hypothesis", "_pytest", "pytest", "pluggy", "coverage", "pytest_cov", "xdist", "pytest_timeout")


def _tooling_dirs() -> tuple[str, ...]:
    dirs = []
    for name in _TOOLING:
        module = sys.modules.get(name)
        location = getattr(module, "__file__", None)
        if location:
            base = os.path.dirname(location) if location.endswith("__init__.py") else location
            dirs.append(os.path.normcase(base))
    return tuple(dirs)


def _is_user_code(filename: str) -> bool:
    if filename.startswith("<"):
        return False
    path = os.path.normcase(filename)
    if path.startswith(_DURABLE) or path.startswith(_tooling_dirs()):
        return False
    if path.startswith(_STDLIB) and "site-packages" not in path and "dist-packages" not in path:
        return False
    return True


class Tracer:
    """Collects `Finding`s while code runs inside `with tracer.watching():`."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self._seen: set[tuple[str, str]] = set()
        self._user: dict[str, bool] = {}

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        previous = sys.getprofile()
        thread = threading.get_ident()
        outer = _watchers.get(thread)
        _watchers[thread] = self
        _patch_time()
        sys.setprofile(self._profile)
        try:
            yield
        finally:
            sys.setprofile(previous)
            if outer is None:
                del _watchers[thread]
            else:
                _watchers[thread] = outer
            _unpatch_time()

    def _user_frame(self, frame: Any) -> bool:
        filename = frame.f_code.co_filename
        known = self._user.get(filename)
        if known is None:
            known = self._user[filename] = _is_user_code(filename)
        return known

    def _profile(self, frame: Any, event: str, arg: Any) -> None:
        if event == "c_call":
            what = self._c_source(arg)
            if what is not None and self._user_frame(frame):
                self._add(what, frame)
        elif event == "call":
            caller = frame.f_back
            if caller is None:
                return
            what = self._py_source(frame)
            if what is not None and self._user_frame(caller):
                self._add(what, caller)

    @staticmethod
    def _c_source(fn: Any) -> tuple[str, str] | None:
        try:
            name = _CLOCK_FUNCTIONS.get(fn)
        except TypeError:  # unhashable callable
            return None
        if name is not None:
            return (name, "random" if fn is os.urandom else "clock")
        owner = getattr(fn, "__self__", None)
        if owner is _random._inst or isinstance(owner, _random.SystemRandom):
            return (f"random.{getattr(fn, '__name__', '?')}()", "random")
        if isinstance(owner, type) and issubclass(owner, _dt.date) and getattr(fn, "__name__", "") in _CLOCK_METHODS:
            return (f"{owner.__name__}.{fn.__name__}()", "clock")
        return None

    @staticmethod
    def _py_source(frame: Any) -> tuple[str, str] | None:
        code = frame.f_code
        name = _PY_FUNCTIONS.get(code)
        if name is not None:
            return (name, "random")
        filename = code.co_filename
        if filename == _SECRETS_FILE:
            return (f"secrets.{code.co_name}()", "random")
        if filename == _RANDOM_FILE:
            owner = frame.f_locals.get("self")
            if isinstance(owner, _random.SystemRandom):
                method = "" if code.co_name == "__init__" else f".{code.co_name}"
                return (f"random.SystemRandom{method}()", "random")
            if owner is _random._inst:
                return (f"random.{code.co_name}()", "random")
            seed = _RANDOM_SEEDING.get(code)
            if seed is not None and frame.f_locals.get(seed) is None:  # seeded from os.urandom
                what = "random.Random()" if seed == "x" else "random.Random.seed()"
                return (f"{what} without a seed", "random")
        return None

    def _time_read(self, name: str, caller: Any) -> None:
        if self._user_frame(caller):
            self._add((f"time.{name}() without a time", "clock"), caller)

    def _add(self, what: tuple[str, str], frame: Any) -> None:
        where = f"{_relative(frame.f_code.co_filename)}:{frame.f_lineno}"
        key = (what[0], where)
        if key not in self._seen:
            self._seen.add(key)
            self.findings.append(Finding(what[0], where, what[1]))


_watchers: dict[int, Tracer] = {}  # thread -> the tracer watching code on it
_patched = [0]  # how many watchings are active (the time functions stay wrapped meanwhile)


def _time_wrapper(name: str, index: int) -> Any:
    original = _TIME_ORIGINALS[name]

    def wrapper(*args: Any) -> Any:
        tracer = _watchers.get(threading.get_ident())
        if tracer is not None and (len(args) <= index or args[index] is None):
            tracer._time_read(name, sys._getframe(1))
        return original(*args)

    wrapper.__name__ = wrapper.__qualname__ = name
    wrapper.__doc__ = original.__doc__
    return wrapper


_TIME_WRAPPERS = {name: _time_wrapper(name, index) for name, index in _TIME_DEFAULTS.items()}


def _patch_time() -> None:
    _patched[0] += 1
    if _patched[0] == 1:
        for name, wrapper in _TIME_WRAPPERS.items():
            setattr(_time, name, wrapper)


def _unpatch_time() -> None:
    _patched[0] -= 1
    if _patched[0] == 0:
        for name, original in _TIME_ORIGINALS.items():
            if getattr(_time, name) is _TIME_WRAPPERS[name]:
                setattr(_time, name, original)


def _relative(filename: str) -> str:
    try:
        relative = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if relative.startswith("..") else relative
