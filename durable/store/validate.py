"""Stated limits on ids and names, checked before anything is stored.

Ids and names are data, never SQL: any string is stored exactly, except one
that is not a string, is empty, is not valid Unicode (a lone surrogate has no
UTF-8 form), or is longer than the limit below.
"""

from __future__ import annotations

from .types import NewWorkflow

__all__ = ["MAX_ID_BYTES", "MAX_NAME_BYTES", "check_id", "check_name", "check_new"]

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


def check_new(new: NewWorkflow) -> None:
    check_id(new.id)
    check_name(new.name, "workflow name")
