"""The one command: `python -m benchmarks [--quick] [--only NAMES] [--peers]`.

Runs each case, prints one table of medians, floors and ratios, and writes
the rows to benchmarks/results/ (git-ignored) unless `--no-save`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence

if __package__ in (None, ""):  # `python benchmarks/run.py`: make the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "benchmarks"

from .harness import Row, Settings, format_table, skipped  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")

# name -> (module, needs a database or a subprocess)
CASES: dict[str, tuple[str, bool]] = {
    "memory": ("bench_memory", False),
    "sqlite": ("bench_sqlite", True),
    "postgres": ("bench_postgres", True),
    "replay": ("bench_replay", False),
    "recovery": ("bench_recovery", True),
    "footprint": ("bench_footprint", False),
    "peers": ("bench_peers", True),
}


def _runner(module: str) -> Callable[[Settings], list[Row]]:
    import importlib

    return importlib.import_module(f".{module}", __package__).run  # type: ignore[no-any-return]


def machine() -> str:
    return (f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
            f"SQLite {sqlite3.sqlite_version} · {platform.platform(terse=True)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, 3 repetitions (under a minute)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 1 repetition (for the test suite)")
    parser.add_argument("--only", default="", help=f"comma-separated cases: {', '.join(CASES)}")
    parser.add_argument("--peers", action="store_true", help="also install and run DBOS (into benchmarks/.peers/)")
    parser.add_argument("--memory-only", action="store_true",
                        help="skip what needs SQLite, PostgreSQL or a worker process")
    parser.add_argument("--no-save", action="store_true", help="do not write benchmarks/results/")
    args = parser.parse_args(argv)

    names = [n.strip() for n in args.only.split(",") if n.strip()] or [n for n in CASES if n != "peers"]
    if args.peers and "peers" not in names:
        names.append("peers")
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"

    workdir = tempfile.mkdtemp(prefix="durable-bench-")
    cfg = Settings(mode=mode, memory_only=args.memory_only, peers=args.peers, workdir=workdir)
    print(f"durable benchmarks ({mode}) on {machine()}", flush=True)
    rows: list[Row] = []
    started = time.time()
    try:
        for name in names:
            module, needs_db = CASES[name]
            if needs_db and cfg.memory_only:
                continue
            t0 = time.perf_counter()
            print(f"-- {name} ...", flush=True)
            try:
                got = _runner(module)(cfg)
            except Exception as exc:  # one broken case must not hide the others
                traceback.print_exc()
                got = [skipped(name, "(case failed)", f"error: {type(exc).__name__}: {exc}")]
            rows.extend(got)
            print(format_table(got), flush=True)
            print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    table = format_table(rows)
    print("\n== summary: medians; ratio = cost relative to the floor measured in the same run ==")
    print(table)
    if not args.no_save:
        os.makedirs(RESULTS, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
        base = os.path.join(RESULTS, f"{stamp}-{mode}")
        meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(started)), "machine": machine(),
                "command": " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])]),
                "mode": mode}
        with open(base + ".json", "w") as f:
            json.dump({**meta, "rows": [r.as_dict() for r in rows]}, f, indent=1, default=str)
        with open(base + ".txt", "w") as f:
            f.write(f"{meta['date']}  {meta['machine']}\n{meta['command']}\n\n{table}\n")
        print(f"\nwritten: {base}.txt and .json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
