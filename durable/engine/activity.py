"""Running one attempt of an activity: async ones as tasks, sync ones in threads."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, NamedTuple

from ..errors import Timeout
from ..registry import Activity

__all__ = ["ActivityInfo", "activity_info", "idempotency_key", "start_attempt"]


def idempotency_key(workflow_id: str, run: int, position: int) -> str:
    """32 hex characters naming one activity call of one run, whatever the attempt."""
    raw = f"{workflow_id}\x00{run}\x00{position}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(raw, digest_size=16, person=b"durable-idem").hexdigest()


class ActivityInfo(NamedTuple):
    """What a running activity may know about itself."""

    workflow_id: str
    workflow: str
    run: int
    position: int
    activity: str
    attempt: int

    @property
    def idempotency_key(self) -> str:
        """Stable across retries and crashes: pass it to external APIs so a re-run is not a second charge."""
        return idempotency_key(self.workflow_id, self.run, self.position)


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


Done = Callable[[int, int, bool, Any], None]  # (position, attempt, ok, value_or_exception)


async def _run_async(activity: Activity[Any, Any], args: tuple, kwargs: dict, info: ActivityInfo,
                     done: Done) -> None:
    # The task runs in its own copy of the context, so this is seen by the activity only.
    _current.set(info)
    try:
        value = await activity.fn(*args, **kwargs)
    except asyncio.CancelledError:
        # Cancelled by the engine (which then ignores this outcome), or the
        # activity cancelled itself: a failed attempt.
        done(info.position, info.attempt, False, asyncio.CancelledError())
        raise
    except Exception as exc:
        done(info.position, info.attempt, False, exc)
    else:
        done(info.position, info.attempt, True, value)


def _run_sync(activity: Activity[Any, Any], args: tuple, kwargs: dict, info: ActivityInfo) -> Any:
    _current.set(info)
    return activity.fn(*args, **kwargs)


def start_attempt(
    activity: Activity[Any, Any],
    args: tuple,
    kwargs: dict,
    info: ActivityInfo,
    timeout: float | None,
    executor: Executor | None,
    done: Done,
) -> asyncio.Future[Any]:
    """Start one attempt; `done` is called on the loop with its outcome.

    Returns the task or future so the caller can cancel an abandoned attempt
    (whose outcome the caller then ignores).
    """
    loop = asyncio.get_running_loop()
    position, attempt = info.position, info.attempt
    if activity.is_async and timeout is None:
        # The fast path: the task reports its own outcome, no extra callback.
        return loop.create_task(_run_async(activity, args, kwargs, info, done))
    if activity.is_async:
        fut: asyncio.Future[Any] = loop.create_task(_with_result(activity, args, kwargs, info))
    else:
        call = functools.partial(contextvars.copy_context().run, _run_sync, activity, args, kwargs, info)
        fut = loop.run_in_executor(executor, call)
    timed_out = False

    def on_timeout() -> None:
        nonlocal timed_out
        timed_out = True
        fut.cancel()

    timer = loop.call_later(timeout, on_timeout) if timeout is not None else None

    def finished(f: asyncio.Future[Any]) -> None:
        if timer is not None:
            timer.cancel()
        if f.cancelled():
            if timed_out:
                done(position, attempt, False, Timeout(
                    f"attempt {attempt} of activity {activity.name!r} ran past its {timeout:g}s timeout",
                    workflow_id=info.workflow_id, position=position,
                ))
            else:
                done(position, attempt, False, asyncio.CancelledError())
            return
        error = f.exception()
        if error is None:
            done(position, attempt, True, f.result())
        else:
            done(position, attempt, False, error)

    fut.add_done_callback(finished)
    return fut


async def _with_result(activity: Activity[Any, Any], args: tuple, kwargs: dict, info: ActivityInfo) -> Any:
    _current.set(info)
    return await activity.fn(*args, **kwargs)
