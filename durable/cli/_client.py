"""What the CLI commands share: the store option, keys, and a client engine that can read the store.

The codec chain is read from the store itself (every payload header names
the chain that wrote it), so `--aes-key` / `--fernet-key` are the only
options a user needs to pass to read an encrypted store.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..codecs.base import Codec, Serializer
from ..store import Store, open_store

__all__ = ["add_keys", "add_store", "import_target", "open_client", "run_async"]

T = TypeVar("T")

#: Tests (and embedders) may replace this to hand the CLI a store object instead of a URL.
store_factory: Callable[[str], Store | str] = lambda url: url  # noqa: E731


def add_store(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    default = os.environ.get("DURABLE_STORE")
    parser.add_argument(
        "--store",
        default=None if required else (default or "app.db"),
        required=required and not default,
        metavar="URL",
        help="the store: a SQLite file, sqlite:///path, postgresql://... (default: $DURABLE_STORE or app.db)",
    )


def add_keys(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--aes-key", action="append", default=[], metavar="KID=KEY",
                        help="an AES-256-GCM key (64 hex digits or base64) by key id; repeat for old keys")
    parser.add_argument("--fernet-key", action="append", default=[], metavar="KID=KEY",
                        help="a Fernet key by key id; repeat for old keys")


def _pairs(values: list[str], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key_id, sep, text = value.partition("=")
        if not sep or not key_id or not text:
            raise ValueError(f"{option} takes KID=KEY (a key id, '=', then the key); got a value without '='"
                             if not sep else f"{option} takes KID=KEY with both parts non-empty")
        pairs[key_id] = text
    return pairs


def _chain(signature: str, args: argparse.Namespace) -> tuple[Serializer, list[Codec]] | str:
    """The serializer and codecs for a chain signature like "j+z+a"; or why they cannot be built."""
    from ..codecs import JsonSerializer, PickleSerializer

    parts = signature.split("+")
    serializers = {"j": JsonSerializer, "p": PickleSerializer}
    if parts[0] not in serializers:
        return f"payloads were written by serializer {parts[0]!r}, which the CLI does not know"
    codecs: list[Codec] = []
    for part in parts[1:]:
        if part == "z":
            from ..codecs import ZlibCodec

            codecs.append(ZlibCodec())
        elif part == "a":
            keys = _pairs(getattr(args, "aes_key", []), "--aes-key")
            if not keys:
                return "payloads are encrypted with AES-GCM: pass --aes-key KID=KEY to read them"
            from ..codecs import AESGCMCodec
            from ..codecs.aesgcm import key_from_text

            codecs.append(AESGCMCodec({k: key_from_text(v, k) for k, v in keys.items()}))
        elif part == "f":
            keys = _pairs(getattr(args, "fernet_key", []), "--fernet-key")
            if not keys:
                return "payloads are encrypted with Fernet: pass --fernet-key KID=KEY to read them"
            from ..codecs import FernetCodec

            codecs.append(FernetCodec(keys))
        else:
            return f"payloads were written by codec {part!r}, which the CLI does not know"
    return serializers[parts[0]](), codecs


async def _signature(spec: Store | str) -> str | None:
    """The codec chain named by a payload header in the store, if it holds any payload."""
    store = open_store(spec) if isinstance(spec, str) else spec
    owned = isinstance(spec, str)
    if owned:
        await store.open()
    try:
        payload = await store.get_meta("digest_key")
        if payload is None:
            records = await store.list(limit=1)
            payload = records[0].args if records else None
    finally:
        if owned:
            await store.close()
    if not payload:
        return None
    size = payload[0]
    try:
        return bytes(payload[1:1 + size]).decode("ascii")
    except UnicodeDecodeError:
        return None


def _must_exist(url: str) -> None:
    """Refuse a SQLite path that names no file: opening it would create an empty store."""
    if url.startswith(("postgresql://", "postgres://")) or url in ("memory:", "memory://", ":memory:"):
        return
    path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else url
    if "://" not in path and not os.path.exists(path):
        raise FileNotFoundError(f"no store at {path!r}: check --store (or $DURABLE_STORE)")


class Client:
    """An opened client engine (or None when the payloads cannot be read), and why not."""

    def __init__(self, engine: Any, store: Store, unreadable: str | None) -> None:
        self.engine = engine
        self.store = store
        self.unreadable = unreadable


async def open_client(args: argparse.Namespace, *, need_values: bool = True) -> Client:
    """Open the store named by `args.store` as a client (no worker).

    With `need_values=False` a store whose payloads cannot be decoded (no key
    given) still opens, for commands that show structure only.
    """
    from ..engine import Engine

    # Check the keys as given even if the store turns out not to need them: a typo should not pass.
    _pairs(getattr(args, "aes_key", []), "--aes-key")
    _pairs(getattr(args, "fernet_key", []), "--fernet-key")
    spec = store_factory(args.store)
    if isinstance(spec, str):
        _must_exist(spec)
    signature = await _signature(spec)
    built = _chain(signature, args) if signature else None
    if isinstance(built, str):
        if need_values:
            raise ValueError(built)
        store = open_store(spec) if isinstance(spec, str) else spec
        await store.open()
        return Client(None, store, built)
    serializer, codecs = built if built else (None, [])
    engine = Engine(spec, worker=False, serializer=serializer, codecs=codecs)
    await engine.open()
    return Client(engine, engine.store, None)


async def close_client(client: Client) -> None:
    if client.engine is not None:
        await client.engine.close()
    else:
        await client.store.close()


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(make())  # type: ignore[arg-type]


def import_target(target: str) -> Any:
    """The object named by `module:qualname` (the current directory is importable, as with `python -m`)."""
    module_name, sep, qualname = target.partition(":")
    if not sep or not module_name or not qualname:
        raise ValueError(f"expected module:function, got {target!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r}: {exc}") from None
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"module {module_name!r} has no {qualname!r}") from None
    return obj
