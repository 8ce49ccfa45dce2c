"""Offline replay: drive workflow code over a recorded journal, running nothing.

This is the check to run before deploying a workflow change: every journal
of a run still in flight must replay against the new code. Built on the
pure driver with no live effects: what the journal answers is answered, and
whatever the code would do past the recorded tail is reported, not done.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..codecs.pickle import PickleSerializer
from ..codecs.pipeline import KEYED_DIGEST, Pipeline
from ..driver import CANCELLED, CONTINUED, DONE, FAILED, Driver
from ..effects import Effect
from ..errors import CodecError, NondeterminismError
from ..journal import Entry, Journal
from ..registry import Workflow, make_workflow
from ._probe import Probe
from .export import load_journal
from .render import short
from .sources import _is_user_code, _relative

__all__ = ["ReplayResult", "replay"]

_STATES = {DONE: "completed", FAILED: "failed", CANCELLED: "cancelled", CONTINUED: "continued"}


@dataclass(eq=False)
class ReplayResult:
    """Where replaying a journal left the code.

    `state` is "completed" (`value` is the return value), "failed" or
    "cancelled" (`error` is the exception), "continued" (`value` is the
    `continue_as_new` effect) or "waiting": the code wants the `pending`
    effects (position -> effect), which the journal does not answer.
    `position` is the next position the code would assign, `replayed` how
    many entries were answered from the journal, `lines` the source line of
    the yield each replayed position came from.
    """

    workflow: str
    workflow_id: str | None
    state: str
    position: int
    replayed: int
    value: Any = None
    error: BaseException | None = None
    pending: dict[int, Effect] = field(default_factory=dict)
    lines: dict[int, str] = field(default_factory=dict)
    digests_checked: bool = True  # False if keyed digests could not be checked (no key)

    @property
    def finished(self) -> bool:
        return self.state != "waiting"

    def outcome(self) -> Any:
        """The return value; raises the workflow's exception if it failed or was cancelled."""
        if self.error is not None:
            raise self.error
        if self.state == "waiting":
            raise RuntimeError(
                f"workflow {self.workflow!r} has not finished: after {self.replayed} replayed entries "
                f"it waits on {self.describe_pending()}"
            )
        return self.value

    def describe_pending(self) -> str:
        return ", ".join(f"{e.describe()} at position {p}" for p, e in sorted(self.pending.items())) or "nothing"

    def __repr__(self) -> str:
        if self.state == "waiting":
            how = f"waiting on {self.describe_pending()}"
        elif self.error is not None:
            how = f"{self.state}: {type(self.error).__name__}: {self.error}"
        else:
            how = self.state
        return f"<ReplayResult {self.workflow} position={self.position} replayed={self.replayed} {how}>"


def replay(fn: Callable[..., Any], journal: Any, /, *args: Any, **kwargs: Any) -> ReplayResult:
    """Replay workflow `fn` over `journal` without running any activity.

    `journal` is a `durable.Journal` or list of `Entry` (from
    `engine.journal(id)`), or the path of an exported journal. Arguments
    default to those the export carries. Raises `NondeterminismError` where
    the code and the journal part ways, including code that returns, or
    waits, while recorded entries remain.
    """
    loaded = as_journal(journal)
    if not args and not kwargs and getattr(loaded, "args", None) is not None:
        args, kwargs = loaded.args, loaded.kwargs or {}  # type: ignore[attr-defined]
    return Replay(as_workflow(fn), loaded, args, kwargs).run()


def as_journal(journal: Any) -> Journal:
    """A Journal from a Journal, a list of entries, or the path of an export."""
    if isinstance(journal, (str, os.PathLike)):
        return load_journal(journal)
    if isinstance(journal, Journal):
        return journal
    if isinstance(journal, Iterable):
        entries = [e if isinstance(e, Entry) else Entry(*e) for e in journal]
        return Journal(entries)
    raise TypeError(f"replay() takes a Journal, a list of Entry or a file path, got {type(journal).__qualname__}")


def as_workflow(fn: Any) -> Workflow[Any, Any]:
    if isinstance(fn, Workflow):
        return fn
    return make_workflow(fn, None)


class Digests:
    """Argument digests for replay: plain ones always, keyed ones with the journal's key."""

    def __init__(self, key: bytes | None, workflow_id: str | None = None) -> None:
        # Digests of JSON-able arguments are the same under every serializer;
        # the pickle fallback covers journals written by PickleSerializer.
        self.pipeline = Pipeline(PickleSerializer())
        self.pipeline.set_digest_key(key)
        self.key = key
        self.workflow_id = workflow_id  # keyed digests cover the workflow id
        self.unchecked = 0

    def __call__(self, effect: Any, position: int, recorded: bytes | None) -> bytes:
        scheme = recorded[:1] if recorded else None
        if scheme == KEYED_DIGEST and self.key is None:
            self.unchecked += 1
            return recorded  # type: ignore[return-value]  # nothing to check it against
        try:
            return self.pipeline.digest(effect.args, effect.kwargs, scheme, workflow_id=self.workflow_id)
        except CodecError:  # a scheme this durable cannot compute
            self.unchecked += 1
            return recorded  # type: ignore[return-value]


class Replay:
    """One replay of `wf` over `journal`; `run()` returns the result or raises."""

    def __init__(self, wf: Workflow[Any, Any], journal: Journal, args: tuple, kwargs: dict) -> None:
        self.wf = wf
        self.journal = journal
        self.args, self.kwargs = args, kwargs
        self.lines: dict[int, str] = {}
        self.digests = Digests(getattr(journal, "digest_key", None), getattr(journal, "workflow_id", None))
        self.call_error: BaseException | None = None  # what calling the workflow function raised
        try:
            gen = wf.fn(*args, **kwargs)
        except Exception as exc:  # the engine fails a workflow whose call raises
            self.call_error = exc
            gen = _raising(exc)
        self.probe = Probe(gen)
        self.driver = Driver(
            self.probe,
            workflow_id=getattr(journal, "workflow_id", None),
            workflow=wf.name,
            digest=self.digests,
            decode=self._decode,
            live=None,
        )

    def _decode(self, entry: Any) -> tuple[bool, Any]:
        # Called as the driver matches an entry: the generator still sits at its yield.
        where = self.driver.location()
        if where is not None:
            self.lines[entry[0]] = where
        return (not entry[4], entry[5])

    def run(self) -> ReplayResult:
        driver = self.driver
        driver.feed(self.journal, last=True)
        try:
            driver.start()  # raises NondeterminismError on divergence, even a wait short of the journal
        except NondeterminismError as exc:
            raise self._explained(exc) from None
        state = _STATES.get(driver.state, "waiting")
        ok = driver.state in (DONE, CONTINUED)
        return ReplayResult(
            workflow=self.wf.name,
            workflow_id=driver.workflow_id,
            state=state,
            position=driver.position,
            replayed=driver.replayed,
            value=driver.result if ok else None,
            error=None if ok or not driver.finished else driver.result,
            pending={p: leaf.effect for p, leaf in sorted(driver.pending.items())},
            lines=dict(self.lines),
            digests_checked=self.digests.unchecked == 0,
        )

    def unaccepted(self) -> TypeError | None:
        """The TypeError of calling the workflow with arguments its signature no longer takes."""
        error = self.call_error
        if not isinstance(error, TypeError):
            return None
        try:
            inspect.signature(self.wf.fn).bind(*self.args, **self.kwargs)
        except TypeError:
            return error
        except ValueError:  # no signature to check against
            return None
        return None  # the arguments fit; the TypeError came from elsewhere

    def _explained(self, exc: NondeterminismError) -> NondeterminismError:
        """`exc` with what the code raised (the driver names only its type) in its message."""
        if not exc.yielded.startswith("raises"):
            return exc
        unaccepted = self.unaccepted()
        if unaccepted is not None:
            yielded = "cannot be called with the recorded arguments"
            detail = f" ({short(unaccepted)}; give new parameters a default)"
        elif self.probe.error is not None:
            yielded, detail = exc.yielded, f" ({short(self.probe.error)})"
        else:
            return exc
        return NondeterminismError(workflow_id=exc.workflow_id, workflow=exc.workflow, position=exc.position,
                                   recorded=exc.recorded, yielded=yielded, location=exc.location,
                                   detail=exc.detail + detail)


def raised_at(error: BaseException | None) -> str | None:
    """`file:line` of the innermost frame of user code (not durable, not the stdlib) `error` passed through."""
    where = None
    tb = error.__traceback__ if error is not None else None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if _is_user_code(filename):
            where = f"{_relative(filename)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def _raising(exc: BaseException) -> Any:
    raise exc
    yield  # pragma: no cover - makes this a generator
