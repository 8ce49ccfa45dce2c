"""`durable list | show | signal | cancel | export`: look at and steer stored workflows."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from typing import Any

from ..testing.render import render_journal, short
from ._client import add_keys, add_store, close_client, import_target, open_client, run_async

__all__ = ["register"]


def register(commands: Any) -> None:
    p = commands.add_parser("list", help="list stored workflows")
    add_store(p)
    p.add_argument("--status", choices=("running", "waiting", "completed", "failed", "cancelled", "blocked"))
    p.add_argument("--name", help="only workflows of this name")
    p.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    p.set_defaults(run=cmd_list)

    p = commands.add_parser("show", help="show a workflow and its journal (values need the key if encrypted)")
    add_store(p)
    add_keys(p)
    p.add_argument("id")
    p.set_defaults(run=cmd_show)

    p = commands.add_parser("signal", help="send a signal to a workflow")
    add_store(p)
    add_keys(p)
    p.add_argument("id")
    p.add_argument("name", help="the signal name")
    p.add_argument("payload", nargs="?", default="null", help="the payload as JSON (default: null)")
    p.set_defaults(run=cmd_signal)

    p = commands.add_parser("cancel", help="cancel a workflow (it may catch durable.Cancelled and compensate)")
    add_store(p)
    add_keys(p)
    p.add_argument("id")
    p.set_defaults(run=cmd_cancel)

    p = commands.add_parser("export", help="export a journal as JSON lines (decrypted: keep it private)")
    add_store(p)
    add_keys(p)
    p.add_argument("id")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    p.add_argument("--workflow", metavar="MODULE:FUNCTION",
                   help="the workflow's code, to record the source line of each entry")
    p.set_defaults(run=cmd_export)


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return _dt.datetime.fromtimestamp(timestamp, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def cmd_list(args: argparse.Namespace) -> int:
    async def go() -> int:
        client = await open_client(args, need_values=False)
        try:
            records: list[Any] = []
            after = None
            while len(records) < args.limit:
                page = await client.store.list(status=args.status, name=args.name,
                                               limit=min(500, args.limit - len(records)), after=after)
                if not page:
                    break
                records.extend(page)
                after = page[-1].id
        finally:
            await close_client(client)
        rows = [(r.id, r.name, r.status, str(r.run), _when(r.updated_at)) for r in records]
        head = ("ID", "NAME", "STATUS", "RUN", "UPDATED (UTC)")
        widths = [max([len(head[i])] + [len(row[i]) for row in rows]) for i in range(len(head))]
        for row in [head, *rows]:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        return 0

    return run_async(go)


def cmd_show(args: argparse.Namespace) -> int:
    async def go() -> int:
        client = await open_client(args, need_values=False)
        try:
            record = await client.store.get(args.id)
            if record is None:
                from ..errors import WorkflowNotFoundError

                raise WorkflowNotFoundError(args.id)
            print(f"id:       {record.id}")
            print(f"workflow: {record.name}")
            print(f"status:   {record.status}" + (f" ({record.blocked_reason})" if record.blocked_reason else ""))
            print(f"run:      {record.run}")
            print(f"created:  {_when(record.created_at)} UTC   updated: {_when(record.updated_at)} UTC")
            engine = client.engine
            if engine is None:
                entries = []
                async for chunk in client.store.load(args.id):
                    entries.extend((e.position, e.kind, e.name, e.digest, e.failed, None) for e in chunk)
                print(f"journal ({len(entries)} entries; {client.unreadable}):")
                print(render_journal(entries, values=False))
                return 0
            recorder = engine._recorder  # decodes with the engine's codecs and this workflow's context
            values, kwargs = recorder.load_args(record.id, record.run, record.args, name=record.name)
            shown = ", ".join([*(short(v) for v in values), *(f"{k}={short(v)}" for k, v in kwargs.items())])
            print(f"args:     ({shown})")
            journal = await engine.journal(args.id)
            print(f"journal ({len(journal)} entries):")
            print(render_journal(journal))
            if record.status == "completed":
                print(f"result:   {short(recorder.load_result(record.id, record.run, record.result))}")
            elif record.status in ("failed", "cancelled"):
                failure = recorder.load_failure(record.id, record.run, record.result)
                print(f"failure:  {failure.get('type')}: {failure.get('message')}")
        finally:
            await close_client(client)
        return 0

    return run_async(go)


def cmd_signal(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.payload)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the payload must be JSON (strings in double quotes): {exc}") from None

    async def go() -> int:
        client = await open_client(args)
        try:
            await client.engine.signal(args.id, args.name, payload)
        finally:
            await close_client(client)
        print(f"signalled {args.id}: {args.name}")
        return 0

    return run_async(go)


def cmd_cancel(args: argparse.Namespace) -> int:
    async def go() -> int:
        client = await open_client(args, need_values=False)
        try:
            if client.engine is not None:
                await client.engine.cancel(args.id)
            else:  # cancelling writes no payload: no key needed
                from ..errors import WorkflowNotFoundError

                if await client.store.get(args.id) is None:
                    raise WorkflowNotFoundError(args.id)
                await client.store.cancel(args.id, _dt.datetime.now(_dt.timezone.utc).timestamp())
        finally:
            await close_client(client)
        print(f"cancel requested for {args.id}")
        return 0

    return run_async(go)


def cmd_export(args: argparse.Namespace) -> int:
    from ..testing.export import export_workflow

    fn = import_target(args.workflow) if args.workflow else None

    async def go() -> str:
        client = await open_client(args)
        try:
            return await export_workflow(client.engine, args.id, fn=fn)
        finally:
            await close_client(client)

    text = run_async(go)
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        print(f"exported {args.id} to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
