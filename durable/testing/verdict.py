"""Judging whether new workflow code can take over recorded journals.

`judge` replays one journal and classifies what it finds:

- ok: the code goes through every recorded entry and stops where the
  recorded run stopped (finished, or waiting at the tail);
- compatible: every recorded entry still matches, and the code only adds
  effects after the recorded tail of a finished run, or now ends where an
  in-flight run was waiting;
- incompatible: an effect changed (other kind, name or arguments), was
  removed, or was reordered: a run in flight would be blocked;
- error: the journal could not be replayed at all (another workflow's
  journal, arguments the code no longer accepts, an unreadable file).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..effects import Effect, Gather, Race
from ..errors import NondeterminismError
from ..journal import Entry, Journal, describe_recorded
from ..registry import Registry, Workflow
from .replayer import Replay, ReplayResult, as_journal, as_workflow

__all__ = ["Verdict", "assert_replays", "judge", "journal_files"]

_IN_FLIGHT = ("running", "waiting", "blocked")
_FINISHED = ("completed", "failed", "cancelled")


@dataclass
class Verdict:
    """The outcome of replaying one journal against the current code."""

    label: str  # the file, or the workflow id
    workflow: str | None
    outcome: str  # "ok", "compatible", "incompatible", "error"
    change: str  # "unchanged", "appended", "ends early", "arguments changed", "changed", "removed", ...
    detail: str
    position: int | None = None
    recorded: str | None = None
    recorded_at: str | None = None  # source line when the journal was exported (if it says)
    yielded: str | None = None
    yielded_at: str | None = None  # source line in the current code
    result: ReplayResult | None = None

    @property
    def failed(self) -> bool:
        return self.outcome in ("incompatible", "error")

    def describe(self) -> str:
        head = f"{self.label}: {self.outcome}"
        if self.change not in ("unchanged", "error"):
            head += f" ({self.change})"
        return f"{head}: {self.detail}"


def judge(fn: Callable[..., Any], journal: Any, *, label: str | None = None) -> Verdict:
    """Replay `journal` (a Journal, entries or an export path) against `fn` and classify the result."""
    wf = as_workflow(fn)
    try:
        loaded = as_journal(journal)
    except (OSError, ValueError) as exc:
        return Verdict(label or str(journal), None, "error", "error", f"cannot read the journal: {exc}")
    label = label or getattr(loaded, "source", None) or loaded.workflow_id or "<journal>"
    if loaded.workflow is not None and loaded.workflow != wf.name:
        return Verdict(label, loaded.workflow, "error", "other workflow",
                       f"recorded by workflow {loaded.workflow!r}, not {wf.name!r}")
    args: tuple = getattr(loaded, "args", None) or ()
    kwargs: dict = getattr(loaded, "kwargs", None) or {}
    replayer = Replay(wf, loaded, args, kwargs)
    try:
        result = replayer.run()
    except NondeterminismError as exc:
        return _incompatible(wf, loaded, replayer, exc, label)
    except Exception as exc:  # an undecodable value, a bug in the code under test...
        return Verdict(label, wf.name, "error", "error", f"replay raised {type(exc).__name__}: {exc}")
    return _consistent(loaded, result, label)


def _consistent(journal: Journal, result: ReplayResult, label: str) -> Verdict:
    status = getattr(journal, "status", None)
    name = result.workflow
    if result.finished:
        if status in _IN_FLIGHT:
            return Verdict(label, name, "compatible", "ends early",
                           f"the code now ends ({result.state}) after the last recorded entry, where the "
                           f"recorded run was {status}", result=result)
        return Verdict(label, name, "ok", "unchanged", f"replays to the end ({result.state})", result=result)
    waits = result.describe_pending()
    if status in _FINISHED:
        return Verdict(label, name, "compatible", "appended",
                       f"the recorded run {status}, the code now goes on past the recorded tail to {waits}",
                       position=min(result.pending), yielded=waits, result=result)
    return Verdict(label, name, "ok", "unchanged",
                   f"replays {result.replayed} entries, then waits on {waits}", result=result)


def _incompatible(wf: Workflow[Any, Any], journal: Journal, replayer: Replay, exc: NondeterminismError,
                  label: str) -> Verdict:
    entries = {e.position: e for e in journal}
    position = exc.position
    lines = getattr(journal, "lines", None) or {}
    verdict = Verdict(label, wf.name, "incompatible", "changed", "", position=position,
                      recorded=exc.recorded, recorded_at=lines.get(position),
                      yielded=exc.yielded.removeprefix("yields ").removesuffix(" with other arguments"),
                      yielded_at=exc.location)
    later = sorted(p for p in entries if p >= position)
    if replayer.probe.ended or exc.yielded.startswith(("returns", "raises", "continues")):
        verdict.change = "removed"
        more = f" and {len(later) - 1} more entries" if len(later) > 1 else ""
        verdict.detail = (f"the code now {exc.yielded} at position {position}, where the journal "
                          f"recorded {exc.recorded}{more}")
        return _located(verdict)
    leaf = _leaf_at(replayer, position)
    if exc.yielded.endswith("with other arguments"):
        verdict.change = "arguments changed"
        verdict.detail = f"{exc.recorded} is called with other arguments"
        return _located(verdict)
    if leaf is not None:
        found = next((p for p in later if p > position and _matches(replayer, leaf, entries[p])), None)
        if found is not None:
            skipped = [p for p in later if p < found]
            moved = _moved_later(wf, journal, skipped, replayer)
            if moved is not None:
                verdict.change = "reordered"
                verdict.detail = (f"{exc.recorded} (recorded at position {position}) now comes after "
                                  f"{leaf.describe()}" + (f", at {moved}" if moved else ""))
            else:
                verdict.change = "removed"
                removed = ", ".join(entries[p].describe() for p in skipped)
                verdict.detail = f"the code no longer performs {removed} (recorded from position {position})"
            return _located(verdict)
    if exc.yielded.startswith("waits"):
        verdict.detail = f"the code {exc.yielded}, where the journal goes on with {exc.recorded}"
    else:
        verdict.detail = f"the code now {exc.yielded} where the journal recorded {exc.recorded}"
    return _located(verdict)


def _located(verdict: Verdict) -> Verdict:
    where = []
    if verdict.recorded_at:
        where.append(f"recorded at {verdict.recorded_at}")
    if verdict.yielded_at:
        where.append(f"code now at {verdict.yielded_at}")
    if where:
        verdict.detail += f" ({'; '.join(where)})"
    verdict.detail = f"position {verdict.position}: {verdict.detail}"
    return verdict


def _leaves(effect: Any) -> list[Effect]:
    if isinstance(effect, (Gather, Race)):
        return [leaf for member in effect.effects for leaf in _leaves(member)]
    return [effect] if isinstance(effect, Effect) else []


def _leaf_at(replayer: Replay, position: int) -> Effect | None:
    leaves = _leaves(replayer.probe.last)
    first = replayer.driver.position - len(leaves)
    index = position - first
    return leaves[index] if 0 <= index < len(leaves) else None


def _matches(replayer: Replay, leaf: Effect, entry: Entry) -> bool:
    kind = leaf.kind
    name = getattr(leaf, "name", "") if kind in ("call", "receive", "version") else ""
    if entry.kind != kind or entry.name != name:
        return False
    if kind != "call":
        return True
    try:
        return replayer.digests(leaf, entry.position, entry.digest) == entry.digest
    except Exception:
        return False


def _moved_later(wf: Workflow[Any, Any], journal: Journal, skipped: list[int], replayer: Replay) -> str | None:
    """If the skipped entries come back later in the code: where (or "" if unknown); else None."""
    gone = set(skipped)
    kept = [e for e in journal if e.position not in gone]
    shifted = [e._replace(position=_shift(e.position, skipped)) for e in kept]
    trial = Journal(shifted, workflow_id=journal.workflow_id, workflow=journal.workflow, run=journal.run,
                    digest_key=journal.digest_key)
    args: tuple = getattr(journal, "args", None) or ()
    kwargs: dict = getattr(journal, "kwargs", None) or {}
    again = Replay(wf, trial, args, kwargs)
    try:
        again.run()
    except NondeterminismError as exc:
        leaf = _leaf_at(again, exc.position)
        recorded = {describe_recorded(journal_entry.kind, journal_entry.name)
                    for journal_entry in journal if journal_entry.position in gone}
        if leaf is not None and leaf.describe() in recorded:
            return exc.location or ""
    except Exception:
        return None
    return None


def _shift(position: int, skipped: list[int]) -> int:
    return position - sum(1 for p in skipped if p < position)


# -- many journals ------------------------------------------------------------------------


def journal_files(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Files named by `paths`: files as given, directories' `*.jsonl` (recursively), globs."""
    found: list[str] = []
    for path in paths:
        text = os.fspath(path)
        if os.path.isdir(text):
            found.extend(sorted(glob.glob(os.path.join(text, "**", "*.jsonl"), recursive=True)))
        elif any(ch in text for ch in "*?["):
            found.extend(sorted(glob.glob(text, recursive=True)))
        else:
            found.append(text)
    return found


def assert_replays(fn: Callable[..., Any] | Registry | Iterable[Any], *paths: str | os.PathLike[str]) -> list[Verdict]:
    """Replay every exported journal under `paths` against the current code.

    `fn` is a workflow (journals of other workflows are skipped) or a
    Registry / list of workflows (each journal goes to the workflow its
    header names). Raises AssertionError listing every incompatible journal;
    returns the verdicts otherwise.
    """
    by_name = _workflows(fn)
    verdicts = []
    for path in journal_files(paths):
        try:
            journal = as_journal(path)
        except (OSError, ValueError) as exc:
            verdicts.append(Verdict(path, None, "error", "error", f"cannot read the journal: {exc}"))
            continue
        wf = by_name.get(journal.workflow) if journal.workflow else None
        if wf is None and journal.workflow is None and len(by_name) == 1:
            wf = next(iter(by_name.values()))
        if wf is None:
            if isinstance(fn, Registry) and journal.workflow:
                verdicts.append(Verdict(path, journal.workflow, "error", "error",
                                        f"workflow {journal.workflow!r} is not registered"))
            continue
        verdicts.append(judge(wf, journal, label=path))
    names = ", ".join(sorted(by_name))
    if not verdicts:
        raise AssertionError(f"no journals of {names} found under {', '.join(map(os.fspath, paths))}")
    failed = [v for v in verdicts if v.failed]
    if failed:
        listing = "\n".join(f"  {v.describe()}" for v in failed)
        raise AssertionError(
            f"{len(failed)} of {len(verdicts)} recorded journals cannot be replayed by the current code "
            f"of {names}:\n{listing}\nRuns in flight with these journals would be blocked after this "
            "deploy; guard the change with durable.version() or start new runs under a new name."
        )
    return verdicts


def _workflows(fn: Any) -> dict[str, Workflow[Any, Any]]:
    if isinstance(fn, Registry):
        return {wf.name: wf for wf in fn}
    if isinstance(fn, Workflow) or callable(fn):
        wf = as_workflow(fn)
        return {wf.name: wf}
    return {as_workflow(f).name: as_workflow(f) for f in fn}
