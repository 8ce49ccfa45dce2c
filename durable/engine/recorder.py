"""Turns outcomes into journal entries and back, for one engine's pipeline.

Every payload is bound to where it belongs (workflow id, run, position,
kind) through the codec context, so an encrypted payload moved elsewhere
fails to decode.
"""

from __future__ import annotations

import os
import uuid as _uuid
from datetime import datetime, timezone
from random import random as _random
from typing import Any

import orjson

from ..codecs.json import JsonSerializer
from ..codecs.pipeline import Pipeline, context_of
from ..effects import Call, Effect
from ..errors import SerializationError
from ..store.types import StoredPayload
from ..journal import (
    Entry,
    StoredEntry,
    activity_failure,
    exception_of,
    failure_exception,
    record_of,
)

__all__ = ["Recorder"]

# Version 4, RFC 4122 variant.
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_SET = (4 << 76) | (0x8000 << 48)
_SAME_AFTER_ROUND_TRIP = frozenset({int, str, float, bool, type(None)})
# Values nobody can change in place: code may share them instead of a decoded copy.
_IMMUTABLE = frozenset({int, str, float, bool, type(None), bytes})
_new_entry = tuple.__new__
_FAILED = "!"  # appended to the kind in the context of a failed entry

# A forked child must not hand out the uuids left in its parent's pool.
_fork_generation = [0]


def _forked() -> None:
    _fork_generation[0] += 1


os.register_at_fork(after_in_child=_forked)


DIGEST_KEY = "digest_key"  # the meta key of the store's (encoded) digest key
DIGEST_KEY_CONTEXT = b"durable/digest-key"


def payload_context(payload: StoredPayload) -> bytes | None:
    """The codec context of a stored payload, as the Recorder built it; None for meta that is not a payload.

    The formulas here and in the Recorder's methods are the same ones; the
    re-encoding tests round-trip every kind of payload through both.
    """
    slot = payload.slot
    wid = payload.workflow_id or ""
    if slot == "entry":
        kind = payload.kind + _FAILED if payload.failed else payload.kind
        return context_of(wid, payload.run, payload.position if payload.position is not None else -1, kind)
    if slot == "args":
        return context_of(wid, payload.run, "args", f"start:{payload.workflow}")
    if slot == "result":
        part = "result" if payload.status == "completed" else "failure"
        return context_of(wid, payload.run, "result", part)
    if slot == "pending":
        return context_of(wid, payload.run, "pending", "pending")
    if slot == "signal":
        return context_of(wid, 0, "inbox", payload.kind)
    if slot == "meta" and payload.kind == DIGEST_KEY:
        return DIGEST_KEY_CONTEXT
    return None


def immutable(args: tuple, kwargs: dict) -> bool:
    """True if every argument is an immutable scalar (None, bool, int, float, str, bytes)."""
    for arg in args:
        if type(arg) not in _IMMUTABLE:
            return False
    if kwargs:
        for arg in kwargs.values():
            if type(arg) not in _IMMUTABLE:
                return False
    return True


class Recorder:
    """Encodes and decodes everything one engine stores."""

    __slots__ = ("pipeline", "uses_context", "_scalar_identity", "_uuid_pool", "_uuid_at", "_uuid_generation")

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.uses_context = pipeline.uses_context
        # JSON and pickle both rebuild plain scalars exactly: skip decoding those.
        self._scalar_identity = isinstance(pipeline.serializer, JsonSerializer) or pipeline.serializer.id == "p"
        self._uuid_pool = b""
        self._uuid_at = 4096
        self._uuid_generation = _fork_generation[0]

    def context(self, workflow_id: str, run: int, position: int | str, kind: str) -> bytes:
        if not self.uses_context:
            return b""
        return context_of(workflow_id, run, position, kind)

    # -- journal entries -----------------------------------------------------

    def entry(self, workflow_id: str, run: int, position: int, kind: str, name: str, digest: bytes,
              value: Any) -> tuple[StoredEntry, Any]:
        """A successful outcome as an entry, and the value the generator gets (as a replay would)."""
        ctx = self.context(workflow_id, run, position, kind) if self.uses_context else b""
        if type(value) in _SAME_AFTER_ROUND_TRIP and self._scalar_identity:
            payload = self.pipeline.dump(value, ctx, workflow_id=workflow_id, position=position)
            return _new_entry(StoredEntry, (position, kind, name, digest, False, payload)), value
        # Rebuild from the serialized bytes: what a replay will decode, without decrypting again.
        payload, data = self.pipeline.dump_both(value, ctx, workflow_id=workflow_id, position=position)
        try:
            decoded = self.pipeline.serializer.decode(data)
        except SerializationError as exc:
            raise SerializationError(f"{exc} (workflow {workflow_id!r}, position {position})",
                                     workflow_id=workflow_id, position=position) from None
        return _new_entry(StoredEntry, (position, kind, name, digest, False, payload)), decoded

    def failure(self, workflow_id: str, run: int, position: int, kind: str, name: str, digest: bytes,
                record: dict[str, Any]) -> tuple[StoredEntry, BaseException]:
        """A failed outcome as an entry, and the exception the generator gets."""
        # The "failed" flag is bound too, so flipping it in the store cannot pass a
        # failure record off as an activity's result (or the other way round).
        ctx = self.context(workflow_id, run, position, kind + _FAILED)
        try:
            payload = self.pipeline.dump(record, ctx, workflow_id=workflow_id, position=position)
        except SerializationError:
            # The message itself was too large or odd: keep what always fits.
            record = {k: record.get(k) for k in ("type", "origin", "attempts", "child_id")}
            record["message"] = "(the failure message could not be recorded)"
            record["args"] = None
            payload = self.pipeline.dump(record, ctx, workflow_id=workflow_id, position=position)
        entry = _new_entry(StoredEntry, (position, kind, name, digest, True, payload))
        return entry, self.decode(workflow_id, run, entry)[1]

    def activity_failure(self, workflow_id: str, run: int, position: int, name: str, digest: bytes,
                         error: BaseException, attempts: int) -> tuple[StoredEntry, BaseException]:
        return self.failure(workflow_id, run, position, "call", name, digest, activity_failure(error, attempts))

    def decode(self, workflow_id: str, run: int, entry: Any) -> tuple[bool, Any]:
        """`(ok, value)` of a stored entry; a failure's value is the exception to throw."""
        position = entry[0]
        kind = entry[1] + _FAILED if entry[4] else entry[1]
        ctx = self.context(workflow_id, run, position, kind) if self.uses_context else b""
        value = self.pipeline.load(entry[5], ctx, workflow_id=workflow_id, position=position)
        if entry[4]:
            return False, failure_exception(value, workflow_id=workflow_id, position=position, name=entry[2])
        return True, value

    def decoder(self, workflow_id: str, run: int) -> Any:
        """`decode` for one run, specialized: replay calls it for every entry."""
        pipeline = self.pipeline
        fast_at = pipeline._fast_at  # noqa: SLF001 - the pipeline's own fast path, inlined
        if self.uses_context or not fast_at:
            return lambda entry: self.decode(workflow_id, run, entry)
        header = pipeline.header
        load = pipeline.load
        loads = orjson.loads

        def decode(entry: Any) -> tuple[bool, Any]:
            payload = entry[5]
            if not entry[4]:
                if payload[fast_at - 1 : fast_at] == b"=" and payload.startswith(header):
                    try:
                        return True, loads(payload[fast_at:])
                    except orjson.JSONDecodeError:
                        pass
                return True, load(payload, workflow_id=workflow_id, position=entry[0])
            return self.decode(workflow_id, run, entry)

        return decode

    def digester(self, workflow_id: str) -> Any:
        """The driver's `digest` callback for one workflow."""
        digest = self.pipeline.digest

        def call_digest(effect: Call, position: int, recorded: bytes | None) -> bytes:
            try:
                return digest(effect.args, effect.kwargs, recorded[:1] if recorded else None,
                              workflow_id=workflow_id)
            except SerializationError as exc:
                raise SerializationError(
                    f"the arguments of {effect.describe()} at position {position} of workflow "
                    f"{workflow_id!r} cannot be recorded: {exc}",
                    workflow_id=workflow_id, position=position, type_name=exc.type_name,
                ) from None

        return call_digest

    def entry_for_people(self, workflow_id: str, run: int, entry: StoredEntry) -> Entry:
        ok, value = self.decode(workflow_id, run, entry)
        return Entry(entry[0], entry[1], entry[2], entry[3], not ok, value)

    # -- pure effects ------------------------------------------------------------

    def pure(self, workflow_id: str, run: int, effect: Effect, position: int, clock: Any) -> tuple[StoredEntry, Any]:
        """Entry and value for a uuid/now/random effect or a version marker reached live."""
        kind = effect.kind
        if kind == "uuid":
            value: Any = self._uuid4()
        elif kind == "now":
            value = datetime.fromtimestamp(clock.now(), timezone.utc)
        elif kind == "random":
            value = _random()
        else:
            value = effect.latest  # type: ignore[attr-defined]
        name = effect.change_id if kind == "version" else ""  # type: ignore[attr-defined]
        ctx = self.context(workflow_id, run, position, kind) if self.uses_context else b""
        payload = self.pipeline.dump(value, ctx, workflow_id=workflow_id, position=position)
        return _new_entry(StoredEntry, (position, kind, name, b"", False, payload)), value

    def _uuid4(self) -> _uuid.UUID:
        # One urandom call per 256 uuids: the syscall dominates a single uuid4().
        at = self._uuid_at
        if at >= 4096 or _fork_generation[0] != self._uuid_generation:
            self._uuid_pool = os.urandom(4096)
            self._uuid_generation = _fork_generation[0]
            at = 0
        self._uuid_at = at + 16
        raw = int.from_bytes(self._uuid_pool[at : at + 16], "big")
        raw = (raw & _UUID_CLEAR) | _UUID_SET
        # Skip UUID.__init__'s argument parsing: the value is valid by construction.
        made = object.__new__(_uuid.UUID)
        object.__setattr__(made, "int", raw)
        object.__setattr__(made, "is_safe", _uuid.SafeUUID.unknown)
        return made

    # -- digests -------------------------------------------------------------------

    def digest(self, workflow_id: str, effect: Call, position: int, recorded: bytes | None) -> bytes:
        scheme = recorded[:1] if recorded else None
        try:
            return self.pipeline.digest(effect.args, effect.kwargs, scheme, workflow_id=workflow_id)
        except SerializationError as exc:
            raise SerializationError(
                f"the arguments of {effect.describe()} at position {position} of workflow "
                f"{workflow_id!r} cannot be recorded: {exc}",
                workflow_id=workflow_id,
                position=position,
                type_name=exc.type_name,
            ) from None

    # -- workflow arguments, results and state ------------------------------------

    # Arguments are bound to the workflow's name too: a store operator who
    # renames a workflow cannot make other code run with these arguments.
    def dump_args(self, workflow_id: str, run: int, args: tuple, kwargs: dict, *, name: str) -> bytes:
        ctx = self.context(workflow_id, run, "args", f"start:{name}")
        return self.pipeline.dump([[*args], kwargs], ctx, workflow_id=workflow_id)

    def start_args(self, workflow_id: str, run: int, args: tuple, kwargs: dict, *,
                   name: str) -> tuple[bytes, tuple, dict]:
        """The stored payload of a run's arguments, and the arguments its first run hands the code.

        Those are decoded from the same serialized bytes (exactly what a replay
        will get), so a caller who mutates an argument after `start` changes
        nothing; immutable scalars are handed over as they are.
        """
        ctx = self.context(workflow_id, run, "args", f"start:{name}")
        if self._scalar_identity and immutable(args, kwargs):
            return self.pipeline.dump([[*args], kwargs], ctx, workflow_id=workflow_id), args, kwargs
        payload, data = self.pipeline.dump_both([[*args], kwargs], ctx, workflow_id=workflow_id)
        try:
            decoded_args, decoded_kwargs = self.pipeline.serializer.decode(data)
        except SerializationError as exc:
            raise SerializationError(f"{exc} (the arguments of workflow {workflow_id!r})",
                                     workflow_id=workflow_id) from None
        return payload, tuple(decoded_args), decoded_kwargs

    def copy_args(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """A decoded copy of an activity's arguments: the activity cannot change the workflow's objects.

        The engine's serializer makes it; should that refuse, the JSON
        serializer, which the argument digest tried first and which accepted them.
        """
        value = [[*args], kwargs]
        serializer = self.pipeline.serializer
        try:
            copied_args, copied_kwargs = serializer.decode(serializer.encode(value))
        except Exception:  # noqa: BLE001 - a custom serializer may refuse with any error
            json = self.pipeline._json  # the serializer the argument digest tries first
            copied_args, copied_kwargs = json.decode(json.encode(value))
        return tuple(copied_args), copied_kwargs

    def load_args(self, workflow_id: str, run: int, payload: bytes, *, name: str) -> tuple[tuple, dict]:
        ctx = self.context(workflow_id, run, "args", f"start:{name}")
        args, kwargs = self.pipeline.load(payload, ctx, workflow_id=workflow_id)
        return tuple(args), kwargs

    def dump_result(self, workflow_id: str, run: int, value: Any) -> bytes:
        return self.pipeline.dump(value, self.context(workflow_id, run, "result", "result"), workflow_id=workflow_id)

    def dump_failure(self, workflow_id: str, run: int, error: BaseException) -> bytes:
        ctx = self.context(workflow_id, run, "result", "failure")
        try:
            return self.pipeline.dump(record_of(error), ctx, workflow_id=workflow_id)
        except SerializationError:
            record = {"type": record_of(error)["type"], "message": "(the failure message could not be recorded)",
                      "args": None}
            return self.pipeline.dump(record, ctx, workflow_id=workflow_id)

    def load_result(self, workflow_id: str, run: int, payload: bytes) -> Any:
        return self.pipeline.load(payload, self.context(workflow_id, run, "result", "result"), workflow_id=workflow_id)

    def load_failure(self, workflow_id: str, run: int, payload: bytes) -> dict[str, Any]:
        return self.pipeline.load(payload, self.context(workflow_id, run, "result", "failure"), workflow_id=workflow_id)

    def dump_signal(self, workflow_id: str, name: str, value: Any) -> bytes:
        return self.pipeline.dump(value, self.context(workflow_id, 0, "inbox", name), workflow_id=workflow_id)

    def load_signal(self, workflow_id: str, name: str, payload: bytes) -> Any:
        return self.pipeline.load(payload, self.context(workflow_id, 0, "inbox", name), workflow_id=workflow_id)

    def dump_pending(self, workflow_id: str, run: int, state: dict[str, Any]) -> bytes | None:
        if not state:
            return None
        return self.pipeline.dump(state, self.context(workflow_id, run, "pending", "pending"), workflow_id=workflow_id)

    def load_pending(self, workflow_id: str, run: int, payload: bytes | None) -> dict[str, Any]:
        if payload is None:
            return {}
        return self.pipeline.load(payload, self.context(workflow_id, run, "pending", "pending"), workflow_id=workflow_id)

    @staticmethod
    def exception(record: dict[str, Any]) -> BaseException | None:
        return exception_of(record)
