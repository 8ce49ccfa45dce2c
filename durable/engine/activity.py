"""Running one attempt of an activity: async ones as tasks, sync ones in threads."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from ..errors import Timeout
from ..registry import Activity

__all__ = ["ActivityInfo", "activity_info", "idempotency_key", "start_attempt"]


@dataclass(frozen=True, slots=True)
class ActivityInfo:
    """What a running activity may know about itself."""

    workflow_id: str
    workflow: str
    run: int
    position: int
    activity: str
    attempt: int
    #: Stable across retries and crashes: pass it to external APIs so a re-run
    #: is not a second charge.
    idempotency_key: str


_current: contextvars.ContextVar[ActivityInfo] = contextvars.ContextVar("durable_activity")


def activity_info() -> ActivityInfo:
    """The `ActivityInfo` of the activity this code runs in.

    Raises RuntimeError outside an activity run by an engine (for example when
    a test calls the activity function directly).
    """
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError(
            "durable.activity_info() is only available inside an activity run by a durable "
            "Engine; a direct call of the function has no workflow around it"
        ) from None


def idempotency_key(workflow_id: str, run: int, position: int) -> str:
    """32 hex characters naming one activity call of one run, whatever the attempt."""
    raw = f"{workflow_id}\x00{run}\x00{position}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(raw, digest_size=16, person=b"durable-idem").hexdigest()


Done = Callable[[int, int, bool, Any], None]  # (position, attempt, ok, value_or_exception)


def start_attempt(
    activity: Activity[Any, Any],
    args: tuple,
    kwargs: dict,
    info: ActivityInfo,
    timeout: float | None,
    executor: Executor | None,
    done: Done,
) -> asyncio.Future[Any]:
    """Start one attempt; `done` is called on the loop with its outcome, unless cancelled.

    Returns the task or future, so the caller can cancel an abandoned attempt.
    """
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    context.run(_current.set, info)
    position, attempt = info.position, info.attempt
    timer: asyncio.TimerHandle | None = None
    timed_out = False

    if activity.is_async:
        try:
            coro = context.run(activity.fn, *args, **kwargs)
        except Exception as exc:  # a bad call signature raises before any await
            fut: asyncio.Future[Any] = loop.create_future()
            fut.set_exception(exc)
        else:
            fut = loop.create_task(coro, context=context)
    else:
        call = functools.partial(context.run, activity.fn, *args, **kwargs)
        fut = loop.run_in_executor(executor, call)

    def on_timeout() -> None:
        nonlocal timed_out
        timed_out = True
        fut.cancel()

    if timeout is not None:
        timer = loop.call_later(timeout, on_timeout)

    def finished(f: asyncio.Future[Any]) -> None:
        if timer is not None:
            timer.cancel()
        if f.cancelled():
            if timed_out:
                secs = f"{timeout:g}"
                done(position, attempt, False, Timeout(
                    f"attempt {attempt} of activity {activity.name!r} ran past its {secs}s timeout",
                    workflow_id=info.workflow_id, position=position,
                ))
            else:
                # Cancelled by the engine (the caller ignores this outcome), or the
                # activity cancelled itself, which counts as a failed attempt.
                done(position, attempt, False, asyncio.CancelledError())
            return
        error = f.exception()
        if error is None:
            done(position, attempt, True, f.result())
        else:
            done(position, attempt, False, error)

    fut.add_done_callback(finished)
    return fut
