"""What the CLI commands share: the store option, keys, and a client engine that can read the store.

The codec chain is read from the store itself (every payload header names
the chain that wrote it), so keys are the only options a user needs to read
an encrypted store. But whoever can write the store writes those headers
too, so what they name is checked before it is built: PickleSerializer only
with `--pickle` (unpickling runs code stored in the database, in a process
that holds the keys), and with keys given, only a chain that uses them (a
chain without the encryption would trust forged plain payloads and write
signals in clear).
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
from ..codecs.pipeline import describe_chain
from ..store import Store, open_store

__all__ = ["Keys", "add_keys", "add_store", "check_keys_used", "codec_keys", "default_chain", "import_target",
           "open_client", "run_async"]

T = TypeVar("T")

#: Tests (and embedders) may replace this to hand the CLI a store object instead of a URL.
store_factory: Callable[[str], Store | str] = lambda url: url  # noqa: E731

# argparse destination -> (option, environment variable, codec id, codec name)
_KEY_KINDS = {
    "aes_key": ("--aes-key", "DURABLE_AES_KEYS", "a", "AES-GCM"),
    "fernet_key": ("--fernet-key", "DURABLE_FERNET_KEYS", "f", "Fernet"),
}
PICKLE_REFUSED = ("payloads were written by PickleSerializer ('p'): reading them runs code stored in the "
                  "database; pass --pickle if you trust the store")


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
                        help="an AES-256-GCM key (64 hex digits or base64) by key id, or KID=@FILE to read "
                             "the key from FILE (keeps it out of the process list and shell history); "
                             "repeat for old keys, the first encrypts. Without --aes-key or --fernet-key, "
                             "keys come from $DURABLE_AES_KEYS and $DURABLE_FERNET_KEYS ('kid=key,kid2=key2')")
    parser.add_argument("--fernet-key", action="append", default=[], metavar="KID=KEY",
                        help="a Fernet key by key id (or KID=@FILE); repeat for old keys, the first encrypts")
    parser.add_argument("--pickle", action="store_true",
                        help="read payloads written by PickleSerializer: reading them runs code stored in "
                             "the database, so pass it only if you trust whoever can write the store")


class Keys:
    """The keys a command was given, already built into codecs (so a bad key fails before anything runs)."""

    def __init__(self, codecs: dict[str, Codec], given: list[str], pickle: bool) -> None:
        self.codecs = codecs  # codec id ("a", "f") -> codec
        self.given = given  # for messages: "--aes-key k2, k1" or "$DURABLE_AES_KEYS (k1)"; ids only
        self.pickle = pickle

    def describe(self) -> str:
        return "; ".join(self.given)


def _read_key_file(path: str, key_id: str, option: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ValueError(f"{option} {key_id}=@{path}: cannot read the key file ({why})") from None
    if not text:
        raise ValueError(f"{option} {key_id}=@{path}: the key file is empty")
    return text


def _pairs(values: list[str], option: str) -> dict[str, str]:
    """Key id -> key text, in the order given; `KID=@FILE` reads the key from FILE. Never echoes a key."""
    pairs: dict[str, str] = {}
    for value in values:
        key_id, sep, text = value.partition("=")
        key_id, text = key_id.strip(), text.strip()
        if not sep or not key_id or not text:
            raise ValueError(f"{option} takes KID=KEY (a key id, '=', then the key); got a value without '='"
                             if not sep else f"{option} takes KID=KEY with both parts non-empty")
        if key_id in pairs:
            raise ValueError(f"{option} names key id {key_id!r} twice")
        pairs[key_id] = _read_key_file(text[1:], key_id, option) if text.startswith("@") else text
    return pairs


def codec_keys(args: argparse.Namespace) -> Keys:
    """The keys on the command line or, when none is there, in $DURABLE_AES_KEYS / $DURABLE_FERNET_KEYS."""
    if not hasattr(args, "aes_key"):  # a command that reads no payload (list)
        return Keys({}, [], False)
    from_argv = any(getattr(args, dest) for dest in _KEY_KINDS)
    codecs: dict[str, Codec] = {}
    given: list[str] = []
    for dest, (option, env, codec_id, _) in _KEY_KINDS.items():
        if from_argv:
            pairs, origin = _pairs(getattr(args, dest), option), option
        else:
            values = [part for part in os.environ.get(env, "").split(",") if part.strip()]
            pairs, origin = _pairs(values, f"${env}"), f"${env}"
        if not pairs:
            continue
        if codec_id == "a":
            from ..codecs import AESGCMCodec
            from ..codecs.aesgcm import key_from_text

            codecs["a"] = AESGCMCodec({k: key_from_text(v, k) for k, v in pairs.items()})
        else:
            from ..codecs import FernetCodec

            codecs["f"] = FernetCodec(pairs)
        given.append(f"{origin} {', '.join(pairs)}" if from_argv else f"{origin} ({', '.join(pairs)})")
    return Keys(codecs, given, bool(getattr(args, "pickle", False)))


def default_chain(keys: Keys, *, zlib: bool = False) -> str:
    """The chain for a store that holds no payload yet: JSON, then zlib if asked, then the keys' cipher."""
    parts = ["j"]
    if zlib:
        parts.append("z")
    if keys.codecs:
        parts.append("a" if "a" in keys.codecs else "f")
    return "+".join(parts)


def check_keys_used(signature: str, keys: Keys, *, source: str = "the store's payloads name", hint: str = "") -> None:
    """Refuse a chain that leaves out the cipher of keys given: it would be a silent downgrade to plain."""
    parts = signature.split("+")
    unused = [codec_id for codec_id in keys.codecs if codec_id not in parts[1:]]
    if not unused:
        return
    names = " and ".join(name for _, _, codec_id, name in _KEY_KINDS.values() if codec_id in unused)
    encrypted = "+".join([*parts, unused[0]])
    raise ValueError(
        f"{source} codec chain {describe_chain(signature)}, which does not use the {names} keys given "
        f"({keys.describe()}): going on would trust payloads nobody encrypted and write new ones without "
        f"that encryption. {hint}If the store is meant to be plain, give no keys (and unset "
        f"$DURABLE_AES_KEYS / $DURABLE_FERNET_KEYS); to encrypt a plain store, stop its workers and run "
        f"`durable reencode --to {encrypted} --from-plain` with the keys; if it was encrypted, its payload "
        "headers were changed by someone with access to the store: check it before going on"
    )


def _chain(signature: str, keys: Keys) -> tuple[Serializer, list[Codec]] | str:
    """The serializer and codecs for a chain signature like "j+z+a"; or why they cannot be built."""
    from ..codecs import JsonSerializer, PickleSerializer

    parts = signature.split("+")
    if parts[0] == "p" and not keys.pickle:
        return PICKLE_REFUSED
    serializers = {"j": JsonSerializer, "p": PickleSerializer}
    if parts[0] not in serializers:
        return f"payloads were written by serializer {parts[0]!r}, which the CLI does not know"
    codecs: list[Codec] = []
    for part in parts[1:]:
        if part == "z":
            from ..codecs import ZlibCodec

            codecs.append(ZlibCodec())
        elif part in ("a", "f"):
            option, env, _, name = next(kind for kind in _KEY_KINDS.values() if kind[2] == part)
            if part not in keys.codecs:
                return f"payloads are encrypted with {name}: pass {option} KID=KEY to read them (or set ${env})"
            codecs.append(keys.codecs[part])
        else:
            return f"payloads were written by codec {part!r}, which the CLI does not know"
    return serializers[parts[0]](), codecs


async def _signature(spec: Store | str) -> str | None:
    """The codec chain named by a payload header in the store, if it holds any payload (not trusted: see above)."""
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

    keys = codec_keys(args)  # a typo in a key fails here, even if the store turns out not to need it
    spec = store_factory(args.store)
    if isinstance(spec, str):
        _must_exist(spec)
    signature = await _signature(spec)
    if signature is not None:
        check_keys_used(signature, keys)
    # An empty store holds no workflow to read or signal: a plain engine writes nothing (not even a digest key).
    built = _chain(signature, keys) if signature else None
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
