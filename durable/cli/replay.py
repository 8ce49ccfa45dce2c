"""`durable replay module:function FILE... | --store URL [--all]`: can new code take over old journals?

Run it in CI before deploying a workflow change: every journal of a run in
flight (exported files, or straight from the store) is replayed against the
code as it is now, without running anything. The summary classifies each
journal (see `durable.testing.verdict`): effects appended after the
recorded tail are compatible; an effect changed, removed or reordered is
not, and is shown with the source lines on both sides where known. The exit
status is 1 if any journal is incompatible or could not be replayed.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from typing import Any, TextIO

from ..registry import Workflow
from ..testing.export import ExportedJournal
from ..testing.replayer import as_workflow
from ..testing.verdict import Verdict, journal_files, judge
from ._client import add_keys, close_client, import_target, open_client, run_async

__all__ = ["register"]

_IN_FLIGHT = ("running", "waiting", "blocked")


def register(commands: Any) -> None:
    p = commands.add_parser(
        "replay",
        help="replay recorded journals against the current code of a workflow (nothing runs)",
        description="Replay exported journal FILEs (directories: every *.jsonl inside) and/or the "
                    "journals in a store against module:function, and report which would break.",
    )
    p.add_argument("target", metavar="MODULE:FUNCTION", help="the workflow, e.g. myapp.orders:order")
    p.add_argument("files", nargs="*", metavar="FILE", help="exported journals (see `durable export`)")
    p.add_argument("--store", metavar="URL", help="replay this workflow's journals from a store")
    p.add_argument("--all", action="store_true", help="with --store: finished runs too, not only those in flight")
    p.add_argument("--collect-all", action="store_true", help="go on after the first failure and report all")
    progress = p.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="draw a progress bar on stderr (default: when stderr is a terminal)")
    progress.add_argument("--no-progress", dest="progress", action="store_false")
    add_keys(p)
    p.set_defaults(run=cmd_replay)


class Progress:
    """A one-line bar on a terminal: `[#####.....] 12/40 journals`."""

    def __init__(self, total: int, out: TextIO, enabled: bool) -> None:
        self.total, self.out, self.enabled = total, out, enabled and total > 1
        self.done = 0

    def step(self, verdict: Verdict) -> None:
        self.done += 1
        if not self.enabled:
            return
        width = 30
        filled = width * self.done // self.total
        bad = " (failures so far)" if verdict.failed else ""
        self.out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} journals{bad}")
        self.out.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            self.out.write("\n")
            self.out.flush()


def cmd_replay(args: argparse.Namespace) -> int:
    target = import_target(args.target)
    if not isinstance(target, Workflow) and not callable(target):
        raise TypeError(f"{args.target} is not a workflow function")
    wf = as_workflow(target)
    if not args.files and not args.store:
        raise ValueError("name exported journal FILEs, or a --store to read journals from")
    if args.all and not args.store:
        raise ValueError("--all applies to --store (exported files are always replayed)")
    files = journal_files(args.files)
    interactive = args.progress if args.progress is not None else sys.stderr.isatty()

    async def go() -> list[Verdict]:
        verdicts: list[Verdict] = []
        sources: list[tuple[int, AsyncIterator[tuple[str, Any]]]] = []
        client = None
        try:
            if args.store:
                client = await open_client(args)
                ids = await _stored_ids(client, wf.name, args.all)
                sources.append((len(ids), _stored_journals(client, ids)))
            sources.insert(0, (len(files), _files(files)))
            bar = Progress(sum(n for n, _ in sources), sys.stderr, interactive)
            try:
                for _, journals in sources:
                    async for label, journal in journals:
                        verdict = judge(wf, journal, label=label)
                        verdicts.append(verdict)
                        bar.step(verdict)
                        if verdict.failed and not args.collect_all:
                            return verdicts
            finally:
                bar.close()
        finally:
            if client is not None:
                await close_client(client)
        return verdicts

    verdicts = run_async(go)
    return _summary(wf.name, verdicts, stopped=not args.collect_all and bool(verdicts) and verdicts[-1].failed)


async def _files(paths: Iterable[str]) -> AsyncIterator[tuple[str, Any]]:
    for path in paths:
        yield path, path  # judge() reads the file and reports an unreadable one


async def _stored_ids(client: Any, name: str, everything: bool) -> list[str]:
    ids: list[str] = []
    after = None
    while True:
        page = await client.store.list(name=name, limit=500, after=after)
        if not page:
            return ids
        ids.extend(r.id for r in page if everything or r.status in _IN_FLIGHT)
        after = page[-1].id


async def _stored_journals(client: Any, ids: list[str]) -> AsyncIterator[tuple[str, Any]]:
    engine = client.engine
    for workflow_id in ids:
        record = await engine.describe(workflow_id)
        journal = await engine.journal(workflow_id)
        args, kwargs = engine._recorder.load_args(workflow_id, record.run, record.args, name=record.name)
        yield workflow_id, ExportedJournal(
            list(journal), workflow_id=workflow_id, workflow=record.name, run=record.run,
            digest_key=journal.digest_key, args=args, kwargs=kwargs, status=record.status,
        )


def _summary(name: str, verdicts: list[Verdict], *, stopped: bool) -> int:
    counts = Counter(v.outcome for v in verdicts)
    for verdict in verdicts:
        if verdict.outcome != "ok":
            print(verdict.describe())
    if not verdicts:
        print(f"no journals of workflow {name!r} to replay")
        return 0
    parts = [f"{counts[k]} {k}" for k in ("ok", "compatible", "incompatible", "error") if counts[k]]
    print(f"replayed {len(verdicts)} journal{'s' if len(verdicts) != 1 else ''} of {name!r}: {', '.join(parts)}")
    if stopped:
        print("stopped at the first failure; pass --collect-all to replay every journal")
    if counts["compatible"]:
        print("compatible: the code only goes past where the recorded runs ended; recorded steps replay as before")
    if counts["incompatible"]:
        print("incompatible: runs in flight with these journals would be blocked by this code; guard the "
              "change with durable.version() or start new runs under a new workflow name")
    return 1 if counts["incompatible"] or counts["error"] else 0
