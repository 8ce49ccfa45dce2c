"""The default serializer: orjson, made type-faithful.

Plain JSON values (str, bool, None, 64-bit ints, finite floats, lists, dicts
with str keys) go to orjson untouched. Everything else DESIGN promises to
round-trip (tuple, set, frozenset, bytes, bytearray, big int, NaN and
infinities, dicts with other keys, datetime, date, time, timedelta, UUID,
Decimal, dataclasses, enums, named tuples) is packed as a one-key object
`{"~": [tag, data]}`; a user dict that happens to look like one is packed
too, so decoding is never ambiguous. Sets are written in a canonical order
(by their items' packed bytes, never by hash), so equal values always give
equal bytes in every process (argument digests rely on that). Ints beyond
64 bits are written in decimal up to 4,300 digits (CPython's default limit
on int <-> str conversion) and in hexadecimal beyond, which has no limit.

The first byte says whether any packing happened ("=" plain, "~" packed),
so decoding plain JSON costs one orjson.loads and no walk.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import enum
import importlib
import math
import re
import uuid as _uuid
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from ..errors import SerializationError

__all__ = ["JsonSerializer"]

_PLAIN = b"="
_PACKED = b"~"
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
_TAG = "~"
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_MICROSECOND = _dt.timedelta(microseconds=1)
# Ints in (-_DECIMAL_BELOW, _DECIMAL_BELOW) are written in decimal (tag "i"),
# larger ones in hexadecimal (tag "x"); the bound is fixed, not the process's
# sys.get_int_max_str_digits(), so equal ints give equal bytes everywhere.
_DECIMAL_BELOW = 10**4300
_DIGITS = re.compile(r"-?[0-9]+")


def _fail(value: Any, why: str = "") -> SerializationError:
    name = f"{type(value).__module__}.{type(value).__qualname__}"
    if type(value).__module__ == "builtins":
        name = type(value).__qualname__
    return SerializationError(
        f"JsonSerializer cannot record a value of type {name}{why}. It records str, int, float, "
        "bool, None, list, tuple, dict, set, frozenset, bytes, bytearray, datetime, date, time, "
        "timedelta, UUID, Decimal, and importable dataclasses, enums and named tuples; convert "
        "the value, or use PickleSerializer",
        type_name=name,
    )


def _is_plain(value: Any) -> bool:
    """True if orjson alone round-trips `value` exactly (no packing needed)."""
    t = type(value)
    if t is str or t is bool or value is None:
        return True
    if t is int:
        return _INT_MIN <= value <= _INT_MAX
    if t is float:
        return math.isfinite(value)
    if t is list:
        return all(_is_plain(v) for v in value)
    if t is dict:
        if len(value) == 1 and _TAG in value:
            return False
        for k, v in value.items():
            if type(k) is not str or not _is_plain(v):
                return False
        return True
    return False


_paths: dict[type, str] = {}


def _class_path(cls: type, value: Any) -> str:
    """`module:qualname` for a class that decoding can import back, checked now."""
    path = _paths.get(cls)
    if path is not None:
        return path
    qualname = cls.__qualname__
    if "<locals>" in qualname or cls.__module__ == "__main__":
        where = "inside a function" if "<locals>" in qualname else "in __main__"
        raise _fail(value, f" (defined {where}, so it cannot be imported back at replay; "
                           "define it at module level in an importable module)")
    path = f"{cls.__module__}:{qualname}"
    try:
        found = _import_class(path)
    except SerializationError:
        found = None
    if found is not cls:
        raise _fail(value, f" ({path} does not import back to the same class)")
    _paths[cls] = path
    return path


def _import_class(path: str) -> Any:
    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        raise SerializationError(f"cannot import {path!r} to rebuild a recorded value: {exc}") from None
    return obj


def _sort_key(packed: Any) -> bytes:
    return orjson.dumps(packed)


def _pack(value: Any) -> Any:
    t = type(value)
    if t is str or t is bool or value is None:
        return value
    if t is int:
        return value if _INT_MIN <= value <= _INT_MAX else _pack_big_int(value)
    if t is float:
        return value if math.isfinite(value) else {_TAG: ["F", repr(value)]}
    if t is list:
        return [_pack(v) for v in value]
    if t is dict:
        if all(type(k) is str for k in value) and not (len(value) == 1 and _TAG in value):
            return {k: _pack(v) for k, v in value.items()}
        return {_TAG: ["d", [[_pack(k), _pack(v)] for k, v in value.items()]]}
    if t is tuple:
        return {_TAG: ["T", [_pack(v) for v in value]]}
    if t is set or t is frozenset:
        items = sorted((_pack(v) for v in value), key=_sort_key)
        return {_TAG: ["s" if t is set else "f", items]}
    if t is bytes:
        return {_TAG: ["b", base64.b64encode(value).decode("ascii")]}
    if t is bytearray:
        return {_TAG: ["B", base64.b64encode(value).decode("ascii")]}
    if t is _uuid.UUID:
        return {_TAG: ["u", value.hex]}
    if t is _dt.datetime:
        if value.tzinfo is _dt.timezone.utc and not value.fold:
            return {_TAG: ["dtu", (value - _EPOCH) // _MICROSECOND]}
        return {_TAG: ["dt", _pack_datetime(value)]}
    if t is _dt.date:
        return {_TAG: ["D", value.isoformat()]}
    if t is _dt.time:
        return {_TAG: ["t", [value.replace(tzinfo=None).isoformat(), _pack_tz(value.tzinfo, value), value.fold]]}
    if t is _dt.timedelta:
        return {_TAG: ["td", [value.days, value.seconds, value.microseconds]]}
    if t is Decimal:
        return {_TAG: ["dec", str(value)]}
    if isinstance(value, enum.Enum):
        return {_TAG: ["e", [_class_path(t, value), _pack(value.value)]]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # an instance, not the class
        fields = {f.name: _pack(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {_TAG: ["dc", [_class_path(t, value), fields]]}
    if isinstance(value, tuple) and hasattr(t, "_fields"):
        return {_TAG: ["nt", [_class_path(t, value), [_pack(v) for v in value]]]}
    raise _fail(value)


def _pack_big_int(value: int) -> Any:
    if -_DECIMAL_BELOW < value < _DECIMAL_BELOW:
        try:
            text = str(value)
        except ValueError:  # the process lowered sys.set_int_max_str_digits()
            text = str(Decimal(value))
        return {_TAG: ["i", text]}
    return {_TAG: ["x", format(value, "x")]}


def _unpack_decimal_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        # Over this process's int <-> str digit limit (written by a process
        # that raised it): Decimal converts without the limit, exactly.
        if type(text) is str and _DIGITS.fullmatch(text):
            return int(Decimal(text))
        raise


def _pack_tz(tz: _dt.tzinfo | None, value: Any) -> Any:
    if tz is None:
        return None
    if isinstance(tz, ZoneInfo):
        return tz.key
    if type(tz) is _dt.timezone:
        offset = tz.utcoffset(None)
        name = tz.tzname(None)
        default = _dt.timezone(offset).tzname(None)
        return [offset.total_seconds()] if name == default else [offset.total_seconds(), name]
    raise _fail(value, f" (its tzinfo {type(tz).__qualname__} is neither datetime.timezone nor ZoneInfo)")


def _pack_datetime(value: _dt.datetime) -> list[Any]:
    return [value.replace(tzinfo=None).isoformat(), _pack_tz(value.tzinfo, value), value.fold]


def _unpack_tz(data: Any) -> _dt.tzinfo | None:
    if data is None:
        return None
    if isinstance(data, str):
        return ZoneInfo(data)
    offset = _dt.timedelta(seconds=data[0])
    if offset == _dt.timedelta(0) and len(data) == 1:
        return _dt.timezone.utc
    return _dt.timezone(offset, data[1]) if len(data) > 1 else _dt.timezone(offset)


def _unpack(value: Any) -> Any:
    t = type(value)
    if t is list:
        return [_unpack(v) for v in value]
    if t is not dict:
        return value
    if len(value) == 1 and _TAG in value:
        packed = value[_TAG]
        try:
            tag, data = packed
            return _UNPACKERS[tag](data)
        except SerializationError:
            raise
        except Exception as exc:
            raise _unrebuildable(packed, exc) from exc
    return {k: _unpack(v) for k, v in value.items()}


_TYPE_NAMES = {"i": "int", "x": "int", "F": "float", "d": "dict", "T": "tuple", "s": "set", "f": "frozenset",
               "b": "bytes", "B": "bytearray", "u": "UUID", "dt": "datetime", "dtu": "datetime", "D": "date",
               "t": "time", "td": "timedelta", "dec": "Decimal", "e": "enum", "dc": "dataclass",
               "nt": "named tuple"}
_HINTS = {"e": " (was that member removed, or its value changed?)",
          "dc": " (were its fields changed?)", "nt": " (were its fields changed?)"}


def _unrebuildable(packed: Any, exc: Exception) -> SerializationError:
    """Why a packed value could not be rebuilt, naming its type and the exception's class.

    Never the exception's text: it can quote the recorded value (an Enum
    refusing a removed value names it), and this message may be stored in
    the clear (a blocked workflow's reason). The exception is chained as
    __cause__ for local debugging.
    """
    tag = packed[0] if type(packed) is list and packed and type(packed[0]) is str else None
    what = _TYPE_NAMES.get(tag) if tag is not None else None
    if what is None:
        return SerializationError(
            f"JsonSerializer cannot decode this payload: it holds a value of a type it does not "
            f"know ({type(exc).__qualname__}); was it written by a newer durable, or damaged?"
        )
    type_name = what
    data = packed[1] if len(packed) > 1 else None
    if tag in _HINTS and type(data) is list and data and type(data[0]) is str:
        type_name = data[0].replace(":", ".")  # the class, e.g. "app.models.Tier": code, not data
        what = f"{what} {type_name}"
    return SerializationError(
        f"JsonSerializer cannot rebuild a recorded {what}: {type(exc).__qualname__} was raised "
        f"while rebuilding it{_HINTS.get(tag, ' (is the payload damaged?)')}",
        type_name=type_name,
    )


def _unpack_datetime(data: list[Any]) -> _dt.datetime:
    naive = _dt.datetime.fromisoformat(data[0])
    return naive.replace(tzinfo=_unpack_tz(data[1]), fold=data[2])


def _unpack_time(data: list[Any]) -> _dt.time:
    naive = _dt.time.fromisoformat(data[0])
    return naive.replace(tzinfo=_unpack_tz(data[1]), fold=data[2])


def _unpack_dataclass(data: list[Any]) -> Any:
    cls = _import_class(data[0])
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise SerializationError(f"recorded value names {data[0]!r}, which is no longer a dataclass")
    obj = cls.__new__(cls)
    # Restore the recorded state exactly: __init__/__post_init__ could change it.
    for name, field_value in data[1].items():
        object.__setattr__(obj, name, _unpack(field_value))
    return obj


def _unpack_enum(data: list[Any]) -> Any:
    cls = _import_class(data[0])
    if not (isinstance(cls, type) and issubclass(cls, enum.Enum)):
        raise SerializationError(f"recorded value names {data[0]!r}, which is no longer an Enum")
    return cls(_unpack(data[1]))


def _unpack_namedtuple(data: list[Any]) -> Any:
    cls = _import_class(data[0])
    if not (isinstance(cls, type) and issubclass(cls, tuple)):
        raise SerializationError(f"recorded value names {data[0]!r}, which is no longer a named tuple")
    return cls(*(_unpack(v) for v in data[1]))


_UNPACKERS: dict[str, Any] = {
    "i": _unpack_decimal_int,
    "x": lambda text: int(text, 16),
    "F": float,
    "d": lambda pairs: {_unpack(k): _unpack(v) for k, v in pairs},
    "T": lambda items: tuple(_unpack(v) for v in items),
    "s": lambda items: {_unpack(v) for v in items},
    "f": lambda items: frozenset(_unpack(v) for v in items),
    "b": lambda text: base64.b64decode(text),
    "B": lambda text: bytearray(base64.b64decode(text)),
    "u": lambda text: _uuid.UUID(hex=text),
    "dt": _unpack_datetime,
    "dtu": lambda micros: _EPOCH + _dt.timedelta(microseconds=micros),
    "D": _dt.date.fromisoformat,
    "t": _unpack_time,
    "td": lambda parts: _dt.timedelta(days=parts[0], seconds=parts[1], microseconds=parts[2]),
    "dec": Decimal,
    "e": _unpack_enum,
    "dc": _unpack_dataclass,
    "nt": _unpack_namedtuple,
}


def _fast_datetime(value: _dt.datetime) -> bytes:
    if value.tzinfo is _dt.timezone.utc and not value.fold:
        return b'~{"~":["dtu",%d]}' % ((value - _EPOCH) // _MICROSECOND)
    return _PACKED + orjson.dumps(_pack(value))


def _fast_int(value: int) -> bytes:
    if _INT_MIN <= value <= _INT_MAX:
        return b"=%d" % value
    return _PACKED + orjson.dumps(_pack(value))


# Exact types that are common on the hot path (pure effects, small results)
# and need no walk: encoded directly.
_FAST: dict[type, Any] = {
    str: lambda v: _PLAIN + orjson.dumps(v),
    int: _fast_int,
    float: lambda v: _PLAIN + orjson.dumps(v) if math.isfinite(v) else _PACKED + orjson.dumps(_pack(v)),
    bool: lambda v: b"=true" if v else b"=false",
    type(None): lambda v: b"=null",
    _uuid.UUID: lambda v: b'~{"~":["u","%s"]}' % v.hex.encode("ascii"),
    _dt.datetime: _fast_datetime,
}


class JsonSerializer:
    """orjson with type-faithful packing; the default serializer.

    Refuses anything it cannot rebuild with the same type, with a
    `SerializationError` at the moment the value is recorded.
    """

    id = "j"

    def encode(self, value: Any) -> bytes:
        try:
            fast = _FAST.get(type(value))
            if fast is not None:
                return fast(value)
            if _is_plain(value):
                return _PLAIN + orjson.dumps(value)
            return _PACKED + orjson.dumps(_pack(value))
        except (RecursionError, orjson.JSONEncodeError) as exc:
            # e.g. a str holding a lone surrogate, which has no UTF-8 form
            raise _fail(value, f" ({exc})") from None

    def decode(self, data: bytes) -> Any:
        flag = data[:1]
        try:
            if flag == _PLAIN:
                return orjson.loads(data[1:])
            if flag == _PACKED:
                return _unpack(orjson.loads(data[1:]))
        except SerializationError:
            raise
        except orjson.JSONDecodeError as exc:
            raise SerializationError(
                "JsonSerializer cannot decode this payload: it is not valid JSON; it is damaged, or was "
                "not written by JsonSerializer"
            ) from exc
        except Exception as exc:
            # Never the exception's text: it can quote recorded values (see _unrebuildable).
            raise SerializationError(
                f"JsonSerializer cannot decode this payload: {type(exc).__qualname__} was raised while "
                "rebuilding it"
            ) from exc
        raise SerializationError(
            f"JsonSerializer cannot decode this payload: it starts with {bytes(flag)!r}, "
            "not '=' or '~' (was it written by another serializer?)"
        )

    def __repr__(self) -> str:
        return "JsonSerializer()"
