"""`durable keygen` and `durable reencode`: keys and key rotation."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..codecs.pipeline import Pipeline
from ._client import _chain, _must_exist, _pairs, _signature, add_keys, add_store, run_async, store_factory

__all__ = ["register"]

_NO_LIMIT = 2**62  # re-encoding never refuses what was stored before


def _keygen(args: argparse.Namespace) -> int:
    if args.fernet:
        from ..codecs import FernetCodec

        print(FernetCodec.generate_key().decode("ascii"))
    else:
        from ..codecs.aesgcm import generate_key, key_to_text

        print(key_to_text(generate_key()))
    return 0


def _pipeline(signature: str, args: argparse.Namespace) -> Pipeline | None:
    built = _chain(signature, args)
    if isinstance(built, str):
        return None
    serializer, codecs = built
    return Pipeline(serializer, codecs, max_payload=_NO_LIMIT)


async def _reencode(args: argparse.Namespace) -> int:
    from ..engine.reencode import reencode
    from ..store import open_store

    _pairs(args.aes_key, "--aes-key")
    _pairs(args.fernet_key, "--fernet-key")
    spec = store_factory(args.store)
    if isinstance(spec, str):
        _must_exist(spec)
    signature = args.to or await _signature(spec)
    if signature is None:
        print("durable reencode: the store holds no payloads yet; nothing to do", file=sys.stderr)
        return 0
    built = _chain(signature, args)
    if isinstance(built, str):
        raise ValueError(f"cannot build the target chain {signature!r}: {built}")
    target = Pipeline(built[0], built[1], max_payload=_NO_LIMIT)
    store: Any = open_store(spec) if isinstance(spec, str) else spec
    await store.open()

    def progress(report: Any) -> None:
        print(f"\r  {report}", end="", file=sys.stderr, flush=True)

    try:
        report = await reencode(store, target, lambda sig: _pipeline(sig, args), batch=args.batch,
                                progress=progress if sys.stderr.isatty() else None)
    finally:
        await store.close()
    print(("\n" if sys.stderr.isatty() else "") + f"durable reencode: {report}", file=sys.stderr)
    active = built[1][-1].active if built[1] and hasattr(built[1][-1], "active") else None
    if active is not None:
        print(f"every payload now uses key {active!r}; older keys can be dropped from the configuration",
              file=sys.stderr)
    return 0


def register(commands: Any) -> None:
    keygen = commands.add_parser("keygen", help="print a new random encryption key")
    keygen.add_argument("--fernet", action="store_true", help="a Fernet key instead of an AES-256-GCM key")
    keygen.set_defaults(run=_keygen)

    parser = commands.add_parser(
        "reencode",
        help="re-encrypt every stored payload under the active key (key rotation; resumable, safe to interrupt)",
        description="Re-encode every payload under the target chain: the first --aes-key (or --fernet-key) "
                    "given is the active one; give the old keys after it so old payloads can be read. "
                    "Engines may keep running meanwhile; run it again after an interruption.",
    )
    add_store(parser)
    add_keys(parser)
    parser.add_argument("--to", metavar="CHAIN",
                        help="the target chain signature, e.g. j+z+a (default: the chain the store uses now)")
    parser.add_argument("--batch", type=int, default=500, help="payloads per transaction (default 500)")
    parser.set_defaults(run=lambda args: run_async(lambda: _reencode(args)))
