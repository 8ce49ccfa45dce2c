"""`durable replay module:function FILE... | --store URL [--all]`: can new code take over old journals?

Run it in CI before deploying a workflow change: every journal of a run in
flight (exported files, or straight from the store) is replayed against the
code as it is now, without running anything. The summary classifies each
journal (see `durable.testing.verdict`): effects appended after the
recorded tail are compatible; an effect changed, removed or reordered is
not, and is shown with the source lines on both sides where known. Journals
of other workflows (a shared directory) are skipped and counted. The exit
status is 1 if any journal is incompatible or could not be replayed, or if
there was no journal of the workflow to replay (unless `--allow-empty`).
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
    p.add_argument("--allow-empty", action="store_true",
                   help="exit 0 when there is no journal of the workflow to replay (by default that fails: "
                        "an empty directory, a glob matching nothing or a renamed workflow)")
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

    others: Counter[str] = Counter()  # journals of other workflows: name -> how many

    async def go() -> list[Verdict]:
        verdicts: list[Verdict] = []
        sources: list[tuple[int, AsyncIterator[tuple[str, Any]]]] = []
        client = None
        try:
            if args.store:
                client = await open_client(args)
                ids = await _stored_ids(client, wf.name, args.all)
                if not ids:
                    others.update(await _stored_names(client, args.all))
                sources.append((len(ids), _stored_journals(client, ids)))
            sources.insert(0, (len(files), _files(files)))
            bar = Progress(sum(n for n, _ in sources), sys.stderr, interactive)
            try:
                for _, journals in sources:
                    async for label, journal in journals:
                        verdict = judge(wf, journal, label=label)
                        bar.step(verdict)
                        if verdict.change == "other workflow":  # a shared tests/journals/ directory
                            others[verdict.workflow or "?"] += 1
                            continue
                        verdicts.append(verdict)
                        if verdict.failed and not args.collect_all:
                            return verdicts
            finally:
                bar.close()
        finally:
            if client is not None:
                await close_client(client)
        return verdicts

    verdicts = run_async(go)
    where = " and ".join([*([", ".join(args.files)] if args.files else []),
                          *([f"the store ({'all runs' if args.all else 'runs in flight'})"] if args.store else [])])
    return _summary(wf.name, verdicts, stopped=not args.collect_all and bool(verdicts) and verdicts[-1].failed,
                    others=others, where=where, allow_empty=args.allow_empty)


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


async def _stored_names(client: Any, everything: bool) -> Counter[str]:
    """How many runs (in flight, unless `everything`) the store holds of each workflow name."""
    names: Counter[str] = Counter()
    after = None
    while True:
        page = await client.store.list(limit=500, after=after)
        if not page:
            return names
        names.update(r.name for r in page if everything or r.status in _IN_FLIGHT)
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


def _summary(name: str, verdicts: list[Verdict], *, stopped: bool, others: Counter[str] | None = None,
             where: str = "", allow_empty: bool = False) -> int:
    counts = Counter(v.outcome for v in verdicts)
    for verdict in verdicts:
        if verdict.outcome != "ok":
            print(verdict.describe())
    others = others or Counter()
    found = ", ".join(f"{n} of {other!r}" for other, n in sorted(others.items()))
    if not verdicts:
        message = f"no journals of workflow {name!r} to replay" + (f" in {where}" if where else "")
        if others:
            total = sum(others.values())
            message += (f"; found {total} journal{'s' if total != 1 else ''} of other workflows ({found}). "
                        f"Did the workflow's name change? Runs in flight under the old name would be blocked "
                        f"as not registered; keep the old name with @workflow(name=...)")
        if allow_empty:
            print(message)
            return 0
        print(f"{message}. Nothing was checked, so this fails; pass --allow-empty if that is expected",
              file=sys.stderr)
        return 1
    parts = [f"{counts[k]} {k}" for k in ("ok", "compatible", "incompatible", "error") if counts[k]]
    print(f"replayed {len(verdicts)} journal{'s' if len(verdicts) != 1 else ''} of {name!r}: {', '.join(parts)}"
          + (f" (skipped journals of other workflows: {found})" if others else ""))
    if stopped:
        print("stopped at the first failure; pass --collect-all to replay every journal")
    unchecked = sum(1 for v in verdicts if v.result is not None and not v.result.digests_checked)
    if unchecked:
        print(f"argument digests not checked in {unchecked} journal{'s' if unchecked != 1 else ''}: they are "
              "keyed and the journal carries no digest key (export from a store opened with its keys, or "
              "replay --store with --aes-key), so changed arguments would go unnoticed there")
    unknown = sum(1 for v in verdicts if v.position is not None and not v.recorded_at and v.recorded)
    if unknown:
        print(f"recorded source lines unknown for {unknown} journal{'s' if unknown != 1 else ''} (stores keep "
              "none; an export records them only with `durable export ID --workflow MODULE:FUNCTION`, run with "
              "the code that recorded the run)")
    if counts["compatible"]:
        print("compatible: the code only goes past where the recorded runs ended; recorded steps replay as before")
    if counts["incompatible"]:
        print("incompatible: runs in flight with these journals would be blocked (or fail) with this code; guard "
              "the change with durable.version() or start new runs under a new workflow name")
    if counts["error"]:
        print("error: these journals could not be replayed at all (see each line)")
    return 1 if counts["incompatible"] or counts["error"] else 0
