"""Every error durable raises, each carrying its facts as attributes.

Messages say what happened, where (workflow id, position, key id) and what to
do; they never include argument or result values, because journals are
encrypted for a reason.
"""

from __future__ import annotations

__all__ = [
    "ActivityError",
    "Cancelled",
    "ChildWorkflowError",
    "CodecError",
    "DurableError",
    "NondeterminismError",
    "SerializationError",
    "Timeout",
    "WorkflowClosedError",
    "WorkflowExistsError",
    "WorkflowFailedError",
    "WorkflowNotFoundError",
]


def _rebuild(cls: type[BaseException], args: tuple, state: dict) -> BaseException:
    exc = cls.__new__(cls)
    BaseException.__init__(exc, *args)
    exc.__dict__.update(state)
    return exc


class _Facts:
    """Pickles by state, so errors with keyword-only fields survive a round trip."""

    def __reduce__(self) -> tuple:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))  # type: ignore[attr-defined]


class DurableError(_Facts, Exception):
    """Base class of every error durable raises."""


def where(workflow_id: str | None, position: int | None = None) -> str:
    """`workflow 'x' at position 3`: the location phrase every message uses."""
    if workflow_id is None:
        return "outside any workflow"
    text = f"workflow {workflow_id!r}"
    return text if position is None else f"{text} at position {position}"


class NondeterminismError(DurableError):
    """The workflow code and its journal disagree about what happened at a position.

    Raised by the driver, never thrown into the workflow: the run is blocked,
    its journal untouched, and it resumes once the code is fixed.
    """

    def __init__(
        self,
        *,
        workflow_id: str | None,
        workflow: str | None,
        position: int,
        recorded: str,
        yielded: str,
        location: str | None = None,
        detail: str = "",
    ) -> None:
        self.workflow_id = workflow_id
        self.workflow = workflow
        self.position = position
        self.recorded = recorded
        self.yielded = yielded
        self.location = location
        self.detail = detail
        at = f" ({location})" if location else ""
        name = f"workflow {workflow!r} (id {workflow_id})" if workflow else where(workflow_id)
        super().__init__(
            f"{name} diverged from its journal at position {position}{at}: "
            f"the journal recorded {recorded}, the code now {yielded}{detail}. "
            "Replays must yield the same effects in the same order; if you changed "
            "the workflow, guard the change with durable.version() or start new runs "
            "under a new name."
        )


class ActivityError(DurableError):
    """An activity failed and its retry policy gave up (or the failure was not retryable).

    `type` is the qualified name of the original exception, `message` its text,
    `attempts` how many attempts ran, `cause` the original exception when it
    could be rebuilt from the journal (None otherwise).
    """

    def __init__(
        self,
        *,
        type: str,
        message: str,
        attempts: int,
        cause: BaseException | None = None,
        activity: str | None = None,
        workflow_id: str | None = None,
        position: int | None = None,
    ) -> None:
        self.type = type
        self.message = message
        self.attempts = attempts
        self.cause = cause
        self.activity = activity
        self.workflow_id = workflow_id
        self.position = position
        self.__cause__ = cause
        what = f"activity {activity!r}" if activity else "activity"
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        super().__init__(f"{what} failed after {tries} in {where(workflow_id, position)}: {type}: {message}")


class ChildWorkflowError(DurableError):
    """A child workflow failed or was cancelled; `cause` is the child's own failure."""

    def __init__(
        self,
        *,
        workflow_id: str,
        workflow: str | None = None,
        type: str,
        message: str,
        cause: BaseException | None = None,
    ) -> None:
        self.workflow_id = workflow_id
        self.workflow = workflow
        self.type = type
        self.message = message
        self.cause = cause
        self.__cause__ = cause
        super().__init__(f"child workflow {workflow_id!r} failed: {type}: {message}")


class WorkflowFailedError(DurableError):
    """The workflow raised; `cause` is that exception when it could be rebuilt."""

    def __init__(
        self, *, workflow_id: str, type: str, message: str, cause: BaseException | None = None
    ) -> None:
        self.workflow_id = workflow_id
        self.type = type
        self.message = message
        self.cause = cause
        self.__cause__ = cause
        super().__init__(f"workflow {workflow_id!r} failed: {type}: {message}")


class WorkflowNotFoundError(DurableError):
    """No workflow with this id exists in the store."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(f"no workflow with id {workflow_id!r}")


class WorkflowExistsError(DurableError):
    """The id is taken by a workflow of another function; the existing one is untouched."""

    def __init__(self, workflow_id: str, *, existing: str, requested: str) -> None:
        self.workflow_id = workflow_id
        self.existing = existing
        self.requested = requested
        super().__init__(
            f"workflow id {workflow_id!r} already runs workflow {existing!r}; "
            f"cannot start {requested!r} under the same id (start ids are idempotent "
            "only for the same workflow)"
        )


class WorkflowClosedError(DurableError):
    """The workflow has finished (completed, failed or cancelled) and takes no more signals."""

    def __init__(self, workflow_id: str, status: str) -> None:
        self.workflow_id = workflow_id
        self.status = status
        super().__init__(f"workflow {workflow_id!r} is {status} and takes no more signals")


class Timeout(DurableError):
    """A `receive` timed out, or an activity attempt ran past its timeout.

    Thrown into the workflow generator; catch it to take another path.
    """

    def __init__(self, message: str = "timed out", *, workflow_id: str | None = None,
                 position: int | None = None) -> None:
        self.workflow_id = workflow_id
        self.position = position
        super().__init__(message)


class SerializationError(DurableError):
    """A value cannot be recorded: an unsupported type, or larger than the payload limit.

    Raised when the value is recorded, never later at replay; nothing is written.
    """

    def __init__(
        self,
        message: str,
        *,
        workflow_id: str | None = None,
        position: int | None = None,
        type_name: str | None = None,
        size: int | None = None,
        limit: int | None = None,
    ) -> None:
        self.workflow_id = workflow_id
        self.position = position
        self.type_name = type_name
        self.size = size
        self.limit = limit
        super().__init__(message)


class CodecError(DurableError):
    """A payload could not be decoded: wrong key, unknown key id, other context,
    a flipped or missing byte, or a different codec chain than the one that wrote it.
    """

    def __init__(
        self,
        message: str,
        *,
        key_id: str | None = None,
        workflow_id: str | None = None,
        position: int | None = None,
    ) -> None:
        self.key_id = key_id
        self.workflow_id = workflow_id
        self.position = position
        super().__init__(message)


class Cancelled(_Facts, BaseException):
    """The workflow was cancelled. Thrown into the generator at its current wait.

    Like `asyncio.CancelledError` it derives from `BaseException`, so a bare
    `except Exception` does not swallow it; catch it by name to compensate.
    """

    def __init__(self, message: str | None = None, *, workflow_id: str | None = None) -> None:
        self.workflow_id = workflow_id
        if message is None:
            message = f"workflow {workflow_id!r} was cancelled" if workflow_id is not None else "cancelled"
        super().__init__(message)


def describe_type(exc: BaseException | type) -> str:
    """The qualified name journals record for an exception type (`module.QualName`).

    durable's own public exceptions go by their public name (`durable.Timeout`,
    not `durable.errors.Timeout`), which is what users import and match on.
    """
    cls = exc if isinstance(exc, type) else type(exc)
    module = cls.__module__
    if module == "builtins":
        return cls.__qualname__
    if module == __name__ and cls.__qualname__ in __all__:
        return f"durable.{cls.__qualname__}"
    return f"{module}.{cls.__qualname__}"


def bug(message: str) -> AssertionError:
    """An internal invariant broke: say so plainly."""
    return AssertionError(f"{message} (this is a bug in durable; please report it)")
