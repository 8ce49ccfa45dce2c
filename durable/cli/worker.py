"""`durable worker`: run the workflows of some modules until told to stop.

    durable worker myapp.orders myapp.billing --store app.db --aes-key "k1=@/run/secrets/durable-k1"

Importing the modules registers their `@workflow`s; the engine then claims
and runs them (recovering what was in flight) until SIGINT or SIGTERM, when
it stops cleanly: what was not recorded is redone by the next worker.

The chain it writes is `--chain` if given, else the one the store's payload
headers name, else (a new store) JSON plus the cipher of the keys given.
Either way PickleSerializer needs `--pickle`, and every kind of key given
must be used by the chain: a worker given keys never writes in clear.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import sys
from typing import Any

from . import _client
from ._client import _chain, _signature, add_keys, add_store, check_keys_used, codec_keys, default_chain, run_async

__all__ = ["register"]


def _import(modules: list[str]) -> list[str]:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ValueError(f"cannot import module {name!r}: {exc}") from None
    from ..registry import default_registry

    names = sorted(default_registry.names())
    if not names:
        raise ValueError(f"no @workflow was registered by importing {', '.join(modules)}")
    return names


async def _run(args: argparse.Namespace) -> int:
    from ..engine import Engine

    keys = codec_keys(args)
    names = _import(args.modules)
    spec = _client.store_factory(args.store)  # looked up now: tests replace it
    if args.chain:
        signature = args.chain
        check_keys_used(signature, keys, source="--chain names")
    else:
        signature = await _signature(spec) or default_chain(keys, zlib=args.zlib)
        check_keys_used(signature, keys)
    built = _chain(signature, keys)
    if isinstance(built, str):
        raise ValueError(built)
    serializer, codecs = built
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Engine(spec, serializer=serializer, codecs=codecs, max_active=args.max_active) as engine:
        print(f"durable worker {engine.worker_id}: running {', '.join(names)} on {args.store} "
              f"(codecs {signature}); stop with Ctrl-C", file=sys.stderr, flush=True)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), args.report_every)
            except asyncio.TimeoutError:
                stats = dict(engine.stats)
                print(f"durable worker: {len(engine._active)} active, {stats}", file=sys.stderr, flush=True)
    print("durable worker: stopped", file=sys.stderr)
    return 0


def register(commands: Any) -> None:
    parser = commands.add_parser("worker", help="run the workflows defined in some modules until stopped")
    parser.add_argument("modules", nargs="+", help="modules to import (their @workflows are run)")
    add_store(parser)
    add_keys(parser)
    parser.add_argument("--zlib", action="store_true", help="compress payloads (for a new store)")
    parser.add_argument("--chain", help="the codec chain to write, e.g. j+z+a (default: what the store uses); "
                                         "the worker reads only payloads written by this chain")
    parser.add_argument("--max-active", type=int, default=10_000, help="workflows advanced at once")
    parser.add_argument("--report-every", type=float, default=60.0, metavar="SECONDS",
                        help="print a status line this often")
    parser.set_defaults(run=lambda args: run_async(lambda: _run(args)))
