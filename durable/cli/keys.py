"""`durable keygen` and `durable reencode`: keys and key rotation."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..codecs.pipeline import Pipeline, describe_chain
from . import _client
from ._client import (
    Keys,
    _chain,
    _must_exist,
    _signature,
    add_keys,
    add_store,
    check_keys_used,
    codec_keys,
    run_async,
)

__all__ = ["register"]

_NO_LIMIT = 2**62  # re-encoding never refuses what was stored before
REMAINING = 3  # exit status when payloads are left under another chain or key: do not drop old keys yet


def _keygen(args: argparse.Namespace) -> int:
    if args.fernet:
        from ..codecs import FernetCodec

        print(FernetCodec.generate_key().decode("ascii"))
    else:
        from ..codecs.aesgcm import generate_key, key_to_text

        print(key_to_text(generate_key()))
    return 0


def _source(signature: str, keys: Keys) -> Pipeline:
    """A reader for the chain a payload header names; ValueError (the reason) if it cannot be built."""
    built = _chain(signature, keys)
    if isinstance(built, str):
        raise ValueError(built)
    serializer, codecs = built
    return Pipeline(serializer, codecs, max_payload=_NO_LIMIT)


async def _reencode(args: argparse.Namespace) -> int:
    from ..engine.reencode import count_outdated, reencode
    from ..store import open_store

    keys = codec_keys(args)
    spec = _client.store_factory(args.store)  # looked up now: tests replace it
    if isinstance(spec, str):
        _must_exist(spec)
    signature = args.to
    if signature is None:
        signature = await _signature(spec)
        if signature is None:
            print("durable reencode: the store holds no payloads yet; nothing to do", file=sys.stderr)
            return 0
        check_keys_used(signature, keys, hint="To re-encode under another chain, name it with --to. ")
    try:
        target = _source(signature, keys)
    except ValueError as exc:
        raise ValueError(f"cannot build the target chain {signature!r}: {exc}") from None
    store: Any = open_store(spec) if isinstance(spec, str) else spec
    await store.open()

    def progress(report: Any) -> None:
        print(f"\r  {report}", end="", file=sys.stderr, flush=True)

    try:
        report = await reencode(store, target, lambda sig: _source(sig, keys), batch=args.batch,
                                progress=progress if sys.stderr.isatty() else None,
                                allow_plain_sources=args.from_plain)
        print(("\n" if sys.stderr.isatty() else "") + f"durable reencode: {report}", file=sys.stderr)
        # Check rather than assume: engines may have written under an old key or chain meanwhile.
        remaining = await count_outdated(store, target, batch=args.batch)
    finally:
        await store.close()
    if remaining:
        print(f"durable reencode: {remaining:,} payloads are not under the target chain "
              f"{describe_chain(target.signature)} and its active key yet (engines still configured with an "
              "older key or chain wrote them meanwhile); give every engine the new configuration, run "
              "`durable reencode` again, and keep the old keys until it reports none", file=sys.stderr)
        return REMAINING
    active = getattr(target.codecs[-1], "active", None) if target.codecs else None
    if active is not None:
        print(f"durable reencode: checked: every payload now uses key {active!r}; older keys can be dropped "
              "from the engines' configuration (keep them as long as backups written under them exist)",
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
                    "Engines may keep running meanwhile; run it again after an interruption. A second, "
                    "read-only pass then checks that nothing is left under another chain or key; if "
                    f"something is, it says so and exits with status {REMAINING}.",
    )
    add_store(parser)
    add_keys(parser)
    parser.add_argument("--to", metavar="CHAIN",
                        help="the target chain signature, e.g. j+z+a (default: the chain the store uses now)")
    parser.add_argument("--from-plain", action="store_true",
                        help="this store was unencrypted until now: read unencrypted payloads (j, j+z) and "
                             "encrypt them. Without it, an unencrypted payload in a store being encrypted "
                             "stops the run: anyone with write access to the store could have written it")
    parser.add_argument("--batch", type=int, default=500, help="payloads per transaction (default 500)")
    parser.set_defaults(run=lambda args: run_async(lambda: _reencode(args)))
