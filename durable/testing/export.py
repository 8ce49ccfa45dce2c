"""The journal export format: versioned JSON lines, type-faithful.

Format `durable-journal`, version 1. The first line is a header object:

    {"format": "durable-journal", "version": 1,
     "workflow_id": "order-17", "workflow": "order", "run": 0,
     "digest_key": "9f2c..." | null,
     "args": [...], "kwargs": {...},          optional: the run's arguments
     "status": "waiting",                     optional: the run's status when exported
     "result": ..., "failure": {...}}         optional: outcome of a finished run

then one line per journal entry, in position order:

    {"position": 4, "kind": "call", "name": "charge", "digest": "00a1...",
     "failed": false, "value": ..., "at": "orders.py:31"}

Values (arguments, results, entry values) use the tagged packing of
`durable.codecs.JsonSerializer` (`{"~": [tag, data]}` for tuples, sets,
bytes, datetimes, UUIDs, Decimals, dataclasses...), so they load back with
the same types. A failed entry's value is its failure record (`type`,
`message`, `origin`, `attempts`, ...), from which loading rebuilds the
exception the engine would throw. `digest` is the argument digest in hex,
as recorded: a scheme byte, then what the scheme keeps (BLAKE2b, plain or
keyed with the digest key; or short encoded arguments as they are). `at` is
the source line of the yield, present when the exporter had the code.

An export is decrypted plaintext: it carries every value and the store's
digest key (hex), so keep it as private as the data. Readers ignore keys
they do not know; a change that old readers would misread bumps `version`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import IO, Any

import orjson

from ..codecs.json import JsonSerializer
from ..errors import ActivityError, Cancelled, ChildWorkflowError, SerializationError, Timeout
from ..journal import Entry, Journal, StoredEntry, child_failure, failure_exception, record_of, signal_failure

__all__ = [
    "FORMAT",
    "VERSION",
    "ExportedJournal",
    "dumps_journal",
    "export_journal",
    "export_workflow",
    "failure_record",
    "load_journal",
    "loads_journal",
]

FORMAT = "durable-journal"
VERSION = 1

_json = JsonSerializer()
_MISSING: Any = object()


class ExportedJournal(Journal):
    """A `Journal` read from an export, with what the header adds.

    `args`/`kwargs` are the run's arguments (None if the export has none),
    `status` its status when exported, `result` the return value of a
    completed run, `failure` the failure record of a failed or cancelled one,
    `lines` maps positions to the `file:line` recorded with them, and
    `source` names the file it was read from.
    """

    def __init__(self, entries: list[Entry] = (), **meta: Any) -> None:  # type: ignore[assignment]
        self.args: tuple | None = meta.pop("args", None)
        self.kwargs: dict | None = meta.pop("kwargs", None)
        self.status: str | None = meta.pop("status", None)
        self.result: Any = meta.pop("result", None)
        self.failure: dict[str, Any] | None = meta.pop("failure", None)
        self.lines: dict[int, str] = meta.pop("lines", None) or {}
        self.source: str | None = meta.pop("source", None)
        super().__init__(entries, **meta)


# -- values ------------------------------------------------------------------------


def pack(value: Any) -> Any:
    """`value` as plain JSON data, tagged where JSON alone would lose its type."""
    data = _json.encode(value)
    # The serializer writes one flag byte, then JSON that is already packed.
    return orjson.loads(data[1:])


def unpack(data: Any) -> Any:
    """The value `pack` made `data` from."""
    return _json.decode(b"~" + orjson.dumps(data))


def failure_record(error: BaseException) -> dict[str, Any]:
    """The failure record a journal keeps for `error`, as the engine wrote it.

    Entries from `engine.journal()` carry the exception the workflow saw
    (`ActivityError`, `Timeout`, ...); this is the inverse of decoding it.
    """
    if isinstance(error, ActivityError):
        base = record_of(error.cause) if error.cause is not None else {"args": None}
        return {**base, "type": error.type, "message": error.message, "origin": "activity",
                "attempts": error.attempts}
    if isinstance(error, Timeout):
        return signal_failure("timeout", str(error))
    if isinstance(error, Cancelled):
        return signal_failure("cancelled", str(error))
    if isinstance(error, ChildWorkflowError):
        cause = record_of(error.cause) if error.cause is not None else {
            "type": error.type, "message": error.message, "args": None}
        return child_failure(error.workflow_id, cause)
    if isinstance(error, BaseException):
        return {**record_of(error), "origin": "activity", "attempts": 1}
    raise TypeError(f"a failed entry holds an exception, got {type(error).__qualname__}")


# -- writing ---------------------------------------------------------------------------


def dumps_journal(
    journal: Iterable[Any],
    *,
    workflow_id: str | None = _MISSING,
    workflow: str | None = _MISSING,
    run: int | None = None,
    digest_key: bytes | None = _MISSING,
    args: tuple | list | None = None,
    kwargs: Mapping[str, Any] | None = None,
    status: str | None = None,
    result: Any = _MISSING,
    failure: BaseException | Mapping[str, Any] | None = None,
    lines: Mapping[int, str] | None = None,
) -> str:
    """The export text of `journal` (a `Journal` or a list of `Entry`).

    Metadata defaults to what the journal carries; pass `args`/`kwargs` so a
    replay needs no arguments, `status`/`result`/`failure` to record how the
    run stood, `lines` to record the source line of each position.
    """
    meta = getattr(journal, "__dict__", {})
    if lines is None:
        lines = getattr(journal, "lines", None) or {}
    if args is None and kwargs is None and getattr(journal, "args", None) is not None:
        args, kwargs = journal.args, journal.kwargs  # type: ignore[attr-defined]
    header: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "workflow_id": meta.get("workflow_id") if workflow_id is _MISSING else workflow_id,
        "workflow": meta.get("workflow") if workflow is _MISSING else workflow,
        "run": int(meta.get("run") or 0) if run is None else int(run),
    }
    key = meta.get("digest_key") if digest_key is _MISSING else digest_key
    header["digest_key"] = key.hex() if key else None
    if args is not None or kwargs is not None:
        header["args"] = pack(list(args or ()))
        header["kwargs"] = pack(dict(kwargs or {}))
    status = status if status is not None else meta.get("status")
    if status is not None:
        header["status"] = status
    if result is _MISSING and status == "completed" and "result" in meta:
        result = meta["result"]
    if result is not _MISSING:
        header["result"] = pack(result)
    if failure is None:
        failure = meta.get("failure")
    if failure is not None:
        header["failure"] = pack(failure_record(failure) if isinstance(failure, BaseException) else dict(failure))
    out = [orjson.dumps(header)]
    for entry in sorted(journal, key=lambda e: e[0]):
        out.append(orjson.dumps(_entry_line(entry, lines.get(entry[0]))))
    return b"\n".join(out).decode("utf-8") + "\n"


def _entry_line(entry: Any, at: str | None) -> dict[str, Any]:
    position, kind, name, digest, failed, value = entry
    if isinstance(entry, StoredEntry):
        raise TypeError("export decoded entries (from engine.journal()), not StoredEntry rows holding payloads")
    try:
        packed = pack(failure_record(value) if failed else value)
    except SerializationError as exc:
        raise SerializationError(
            f"cannot export the value at position {position}: {exc}", position=position,
            type_name=exc.type_name,
        ) from None
    line: dict[str, Any] = {
        "position": position,
        "kind": kind,
        "name": name,
        "digest": bytes(digest).hex(),
        "failed": bool(failed),
        "value": packed,
    }
    if at:
        line["at"] = at
    return line


def export_journal(journal: Iterable[Any], path: str | os.PathLike[str] | IO[str], **meta: Any) -> None:
    """Write `journal` to `path` (or an open text file) in the export format.

    Keyword arguments are those of `dumps_journal`.
    """
    text = dumps_journal(journal, **meta)
    if hasattr(path, "write"):
        path.write(text)  # type: ignore[union-attr]
        return
    with open(path, "w", encoding="utf-8", newline="\n") as handle:  # type: ignore[arg-type]
        handle.write(text)


async def export_workflow(engine: Any, workflow_id: str, *, fn: Any = None) -> str:
    """The export text of workflow `workflow_id` as `engine` (open, any mode) sees it now.

    Includes the run's arguments, status and outcome. With `fn` (the
    workflow's code) each entry also records the source line of its yield.
    """
    from ..errors import WorkflowFailedError, WorkflowNotFoundError

    # What the store holds: `describe` would show a run no live worker has registered as blocked,
    # which says where the journal is seen from, not where the run stands.
    record = await engine.store.get(workflow_id)
    if record is None:
        raise WorkflowNotFoundError(workflow_id)
    journal = await engine.journal(workflow_id)
    # The engine keeps arguments encoded; its recorder decodes them with the engine's codecs.
    args, kwargs = engine._recorder.load_args(workflow_id, record.run, record.args, name=record.name)
    meta: dict[str, Any] = {"args": args, "kwargs": kwargs, "status": record.status}
    if record.status == "completed":
        meta["result"] = await engine.result(workflow_id)
    elif record.status in ("failed", "cancelled"):
        try:
            await engine.result(workflow_id)
        except WorkflowFailedError as exc:
            cause = record_of(exc.cause) if exc.cause is not None else {"args": None}
            meta["failure"] = {**cause, "type": exc.type, "message": exc.message}
        except Cancelled as exc:
            meta["failure"] = signal_failure("cancelled", str(exc))
    if fn is not None:
        from .replayer import Replay, as_workflow

        replayer = Replay(as_workflow(fn), journal, args, kwargs)
        try:
            replayer.run()
        except Exception:
            pass  # the lines of the positions before a divergence are still right
        meta["lines"] = replayer.lines
    return dumps_journal(journal, **meta)


# -- reading ---------------------------------------------------------------------------


def load_journal(path: str | os.PathLike[str] | IO[str]) -> ExportedJournal:
    """Read an exported journal file; `ValueError` says what is wrong and on which line."""
    if hasattr(path, "read"):
        return loads_journal(path.read(), source=getattr(path, "name", None))  # type: ignore[union-attr]
    with open(path, encoding="utf-8") as handle:
        return loads_journal(handle.read(), source=os.fspath(path))


def loads_journal(text: str, *, source: str | None = None) -> ExportedJournal:
    """Parse export text (see the module docstring)."""
    where = source or "<journal>"
    lines = text.split("\n")  # not splitlines(): U+0085 and U+2028 may sit unescaped in JSON strings
    if not lines or not lines[0].strip():
        raise ValueError(f"{where}: empty file; a journal export starts with a header line")
    header = _parse(lines[0], where, 1)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{where}:1: not a durable journal export (the header must name format {FORMAT!r})")
    version = header.get("version")
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"{where}:1: the header has no valid version")
    if version > VERSION:
        raise ValueError(
            f"{where}:1: written in {FORMAT} version {version}; this durable reads up to version "
            f"{VERSION}: upgrade durable to read it"
        )
    workflow_id = header.get("workflow_id")
    workflow = header.get("workflow")
    key = header.get("digest_key")
    meta: dict[str, Any] = {
        "workflow_id": workflow_id,
        "workflow": workflow,
        "run": int(header.get("run") or 0),
        "digest_key": bytes.fromhex(key) if key else None,
        "status": header.get("status"),
        "source": source,
    }
    if "args" in header or "kwargs" in header:
        meta["args"] = tuple(unpack(header.get("args") or []))
        meta["kwargs"] = dict(unpack(header.get("kwargs") or {}))
    if "result" in header:
        meta["result"] = unpack(header["result"])
    if "failure" in header:
        meta["failure"] = unpack(header["failure"])
    entries: list[Entry] = []
    at: dict[int, str] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        data = _parse(line, where, number)
        try:
            position = int(data["position"])
            kind, name, failed = str(data["kind"]), str(data["name"]), bool(data["failed"])
            digest = bytes.fromhex(data.get("digest") or "")
            value = unpack(data.get("value"))
        except (KeyError, TypeError, ValueError, SerializationError) as exc:
            raise ValueError(f"{where}:{number}: not a journal entry ({type(exc).__name__}: {exc})") from None
        if failed:
            value = failure_exception(value, workflow_id=workflow_id, position=position, name=name)
        if entries and position <= entries[-1].position:
            raise ValueError(f"{where}:{number}: position {position} is out of order (entries must ascend)")
        entries.append(Entry(position, kind, name, digest, failed, value))
        if data.get("at"):
            at[position] = str(data["at"])
    meta["lines"] = at
    return ExportedJournal(entries, **meta)


def _parse(line: str, where: str, number: int) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{where}:{number}: not valid JSON ({exc})") from None
