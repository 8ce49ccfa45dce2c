"""What a journal holds: one entry per leaf effect, in position order.

`StoredEntry` is what stores keep (the payload is bytes, already serialized
and encoded); `Entry` is the same row decoded for people and tests. Both are
named tuples with the same field order, so the driver reads either by index.
"""

from __future__ import annotations

import builtins
import importlib
from typing import Any, NamedTuple

from .errors import (
    ActivityError,
    Cancelled,
    ChildWorkflowError,
    DurableError,
    SerializationError,
    Timeout,
    describe_type,
)

__all__ = ["Entry", "Journal", "StoredEntry"]


class StoredEntry(NamedTuple):
    """One journal row as a store keeps it."""

    position: int
    kind: str  # "call", "sleep", "receive", "uuid", "now", "random", "version"
    name: str  # activity or workflow name, signal name, version change id; "" otherwise
    digest: bytes  # argument digest for calls, b"" otherwise
    failed: bool  # True if the payload is a failure record
    payload: bytes


class Entry(NamedTuple):
    """One journal row, decoded: `value` is the outcome, or the exception if `failed`."""

    position: int
    kind: str
    name: str
    digest: bytes
    failed: bool
    value: Any

    def describe(self) -> str:
        return describe_recorded(self.kind, self.name)


class Journal(list[Entry]):
    """The decoded entries of one workflow run, with what a replay needs to check them."""

    def __init__(
        self,
        entries: list[Entry] = (),  # type: ignore[assignment]
        *,
        workflow_id: str | None = None,
        workflow: str | None = None,
        run: int = 0,
        digest_key: bytes | None = None,
    ) -> None:
        super().__init__(entries)
        self.workflow_id = workflow_id
        self.workflow = workflow
        self.run = run
        self.digest_key = digest_key


def describe_recorded(kind: str, name: str) -> str:
    if kind == "call":
        return f"call({name})"
    if kind in ("receive", "version"):
        return f"{kind}({name!r})"
    return f"{kind}()"


# --- failure records -------------------------------------------------------
# A failure is recorded as a plain dict, so any serializer can hold it:
#   {"type": "module.QualName", "message": str, "args": [plain values] | None,
#    "fields": {...} for durable's own errors, "cause": nested record | None,
#    "origin": "activity" | "timeout" | "cancelled" | "child", "attempts": int,
#    "child_id": str for child failures}
# Messages and args can carry personal data: records are payloads, encrypted
# like any other.

_PLAIN_TYPES = (str, int, float, bool, type(None))


def record_of(exc: BaseException) -> dict[str, Any]:
    """A recordable description of `exc` from which `exception_of` rebuilds it."""
    record: dict[str, Any] = {"type": describe_type(exc), "message": message_of(exc), "args": None}
    if isinstance(exc, (DurableError, Cancelled)):
        record["fields"] = {
            k: v for k, v in vars(exc).items() if type(v) in _PLAIN_TYPES and not k.startswith("_")
        }
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            record["cause"] = record_of(cause)
    elif all(type(a) in _PLAIN_TYPES for a in exc.args):
        record["args"] = list(exc.args)
    return record


def message_of(exc: BaseException) -> str:
    """`str(exc)`, or a placeholder when the exception's own `__str__` fails."""
    try:
        text = str(exc)
    except Exception as error:  # noqa: BLE001 - user code: any failure gets the placeholder
        return f"(the message could not be read: {type(exc).__name__}.__str__ raised {type(error).__name__})"
    return text if type(text) is str else str.__str__(text)


def exception_of(record: dict[str, Any]) -> BaseException | None:
    """The exception `record` describes, if its class still imports and rebuilds; else None."""
    cls = _import_type(record.get("type", ""))
    if not (isinstance(cls, type) and issubclass(cls, BaseException)):
        return None
    fields = record.get("fields")
    if fields is not None and issubclass(cls, (DurableError, Cancelled)):
        exc = cls.__new__(cls)
        BaseException.__init__(exc, record.get("message", ""))
        exc.__dict__.update(fields)
        nested = record.get("cause")
        if nested is not None or hasattr(exc, "cause"):
            cause = exception_of(nested) if nested else None
            exc.cause = cause  # type: ignore[attr-defined]
            exc.__cause__ = cause
        return exc
    args = record.get("args")
    if args is None:
        return None
    try:
        return cls(*args)
    except Exception:
        return None


def _import_type(type_name: str) -> Any:
    if "." not in type_name:
        return getattr(builtins, type_name, None)
    parts = type_name.split(".")
    # A nested class has dots in its qualname too: try the longest module first.
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except Exception:
            continue
        try:
            for part in parts[cut:]:
                obj = getattr(obj, part)
            return obj
        except AttributeError:
            continue
    return None


def activity_failure(exc: BaseException, attempts: int) -> dict[str, Any]:
    """The record of an activity that gave up after `attempts` attempts with `exc`."""
    record = record_of(exc)
    record["origin"] = "activity"
    record["attempts"] = attempts
    return record


def child_failure(child_id: str, child_record: dict[str, Any]) -> dict[str, Any]:
    """The record a parent keeps when its child workflow failed with `child_record`."""
    return {
        "type": child_record.get("type", ""),
        "message": child_record.get("message", ""),
        "args": None,
        "origin": "child",
        "child_id": child_id,
        "cause": child_record,
    }


def signal_failure(origin: str, message: str) -> dict[str, Any]:
    """The record of a Timeout ("timeout") or Cancelled ("cancelled") outcome."""
    return {"type": origin, "message": message, "args": None, "origin": origin}


def failure_exception(
    record: Any, *, workflow_id: str | None, position: int | None, name: str | None
) -> BaseException:
    """The exception a recorded failure throws into the workflow."""
    if not isinstance(record, dict) or "type" not in record:
        raise SerializationError(
            f"journal entry at position {position} of workflow {workflow_id!r} is marked as a "
            "failure but holds no failure record",
            workflow_id=workflow_id,
            position=position,
        )
    origin = record.get("origin", "activity")
    message = record.get("message", "")
    if origin == "cancelled":
        return Cancelled(message or None, workflow_id=workflow_id)
    if origin == "timeout":
        return Timeout(message or "timed out", workflow_id=workflow_id, position=position)
    if origin == "child":
        return ChildWorkflowError(
            workflow_id=record.get("child_id", ""),
            workflow=name,
            type=record.get("type", ""),
            message=message,
            cause=exception_of(record["cause"]) if record.get("cause") else None,
        )
    return ActivityError(
        type=record["type"],
        message=message,
        attempts=int(record.get("attempts", 1)),
        cause=exception_of(record),
        activity=name,
        workflow_id=workflow_id,
        position=position,
    )
