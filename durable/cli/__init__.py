"""The `durable` command line (also `python -m durable`).

Each command group lives in its own module with a `register(subparsers)`
function; this module only assembles them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

_GROUPS: tuple[str, ...] = (
    "durable.cli.demo", "durable.cli.inspect", "durable.cli.replay", "durable.cli.keys", "durable.cli.worker",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="durable", description="Inspect and run durable workflows.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _GROUPS:
        importlib.import_module(module_name).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a clean one-line error for people; tracebacks are for bugs
        from ..errors import DurableError

        if isinstance(exc, (DurableError, ValueError, TypeError, FileNotFoundError, LookupError)):
            print(f"durable: error: {exc}", file=sys.stderr)
            return 1
        raise
