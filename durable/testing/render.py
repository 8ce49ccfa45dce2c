"""Journals and outcomes as text people read: counterexamples, `durable show`."""

from __future__ import annotations

import datetime as _dt
import reprlib
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["render_journal", "render_outcome", "short"]

_repr = reprlib.Repr()
_repr.maxstring = 60
_repr.maxother = 60
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 6
_repr.maxlevel = 3


def short(value: Any) -> str:
    """A one-line, bounded repr of `value` (datetimes in ISO form, exceptions as `Type: message`)."""
    if isinstance(value, BaseException):
        text = str(value)
        text = text if len(text) <= 100 else text[:97] + "..."
        return f"{type(value).__name__}: {text}" if text else type(value).__name__
    if isinstance(value, _dt.datetime):
        return value.isoformat(sep=" ")
    return _repr.repr(value).replace("\n", "\\n")


def _name(kind: str, name: str) -> str:
    return repr(name) if kind in ("receive", "version") else name


def render_journal(
    entries: Iterable[Any], *, lines: Mapping[int, str] | None = None, indent: str = "  ", values: bool = True
) -> str:
    """A table of entries (position, kind, name, outcome[, source line]).

    With `values=False` outcomes are not shown (for encrypted journals read without a key).
    """
    rows = []
    for entry in sorted(entries, key=lambda e: e[0]):
        position, kind, name, _digest, failed, value = entry[:6]
        if not values:
            outcome = "failed" if failed else "ok"
        elif failed:
            outcome = f"failed  {short(value)}"
        else:
            outcome = f"ok  {short(value)}"
        at = (lines or {}).get(position)
        rows.append((str(position), kind, _name(kind, name), outcome, f"[{at}]" if at else ""))
    if not rows:
        return f"{indent}(no entries)"
    head = ("pos", "kind", "name", "outcome", "")
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(4)]
    out = []
    for pos, kind, name, outcome, at in (head, *rows):
        out.append(f"{indent}{pos:>{widths[0]}}  {kind:<{widths[1]}}  {name:<{widths[2]}}  "
                   f"{outcome:<{widths[3]}}  {at}")
    return "\n".join(line.rstrip() for line in out)


def render_outcome(state: str, value: Any = None, error: BaseException | None = None) -> str:
    """`completed -> 42`, `failed -> ValueError: ...`, `waiting`."""
    if error is not None:
        return f"{state} -> {short(error)}"
    if state in ("completed", "continued"):
        return f"{state} -> {short(value)}"
    return state
