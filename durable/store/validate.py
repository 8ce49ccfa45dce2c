"""Stated limits on ids and names, checked before anything is stored.

Ids and names are data, never SQL: any string is stored exactly, except one
that is not a string, is empty, is not valid Unicode (a lone surrogate has no
UTF-8 form), or is longer than the limit below. Every store checks a whole
commit before it changes anything: workflow ids and names (children's
too) and the names in journal entries (activity, signal, version change).
"""

from __future__ import annotations

from .types import NewWorkflow, Write

__all__ = ["MAX_ID_BYTES", "MAX_NAME_BYTES", "check_id", "check_name", "check_new", "check_write"]

#: Longest workflow id, in UTF-8 bytes (fits a PostgreSQL btree key).
MAX_ID_BYTES = 2000
#: Longest workflow, activity or signal name, in UTF-8 bytes.
MAX_NAME_BYTES = 1000


def _check(value: object, what: str, limit: int, empty_ok: bool = False) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__qualname__}")
    if not value and not empty_ok:
        raise ValueError(f"{what} must not be empty")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid Unicode (it holds a lone surrogate)") from None
    if size > limit:
        raise ValueError(f"{what} is {size:,} bytes in UTF-8; the limit is {limit:,} bytes")
    return value


def check_id(value: object, what: str = "workflow id") -> str:
    return _check(value, what, MAX_ID_BYTES)


def check_name(value: object, what: str = "name", empty_ok: bool = False) -> str:
    return _check(value, what, MAX_NAME_BYTES, empty_ok)


def check_new(new: NewWorkflow, parent: str | None = None) -> None:
    if parent is None:
        check_id(new.id)
        check_name(new.name, "workflow name")
    else:
        check_id(new.id, f"the id of a child workflow of {_show(parent)}")
        check_name(new.name, f"the name of a child workflow of {_show(parent)}")


def check_write(write: Write) -> None:
    """Refuse a write holding a name or child id that cannot be stored, naming where it is."""
    for entry in write.entries:
        kind, name = entry[1], entry[2]
        # Fast path, the usual case: short ASCII (isascii() is O(1) on CPython).
        if (type(name) is str and name.isascii() and len(name) <= MAX_NAME_BYTES
                and type(kind) is str and kind.isascii() and 0 < len(kind) <= MAX_NAME_BYTES):
            continue
        where = f"journal entry {entry[0]} of {_show(write.workflow_id)}"
        check_name(kind, f"the kind of {where}")
        check_name(name, f"the {kind} name in {where}", empty_ok=True)
    for new in write.creates:
        check_new(new, parent=write.workflow_id)


def _show(workflow_id: str) -> str:
    text = repr(workflow_id)
    return f"workflow {text}" if len(text) <= 80 else f"workflow {text[:60]}... ({len(workflow_id):,} characters)"
