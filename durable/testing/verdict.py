"""Judging whether new workflow code can take over recorded journals.

`judge` replays one journal and classifies what it finds:

- ok: the code goes through every recorded entry and stops where the
  recorded run stopped (finished, or waiting at the tail);
- compatible: every recorded entry still matches, and the code only adds
  effects after the recorded tail of a finished run, or now ends where an
  in-flight run was waiting;
- incompatible: an effect changed (other kind, name or arguments), was
  removed, or was reordered: a run in flight would be blocked; or the code
  now raises where the recorded run went on, waited or completed (`now
  fails`);
- error: the journal could not be replayed at all (another workflow's
  journal, arguments the code no longer accepts, an unreadable file).
"""

from __future__ import annotations

import datetime as _dt
import glob
import os
import uuid as _uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..effects import Effect, Gather, Race
from ..errors import NondeterminismError
from ..journal import Entry, Journal
from ..registry import Registry, Workflow
from .render import short
from .replayer import Replay, ReplayResult, as_journal, as_workflow, raised_at

__all__ = ["Verdict", "assert_replays", "judge", "journal_files"]

_IN_FLIGHT = ("running", "waiting", "blocked")
_FINISHED = ("completed", "failed", "cancelled")


@dataclass
class Verdict:
    """The outcome of replaying one journal against the current code."""

    label: str  # the file, or the workflow id
    workflow: str | None
    outcome: str  # "ok", "compatible", "incompatible", "error"
    change: str  # "unchanged", "appended", "ends early", "arguments changed", "changed", "removed",
    #              "reordered", "now fails", "arguments not accepted", "other workflow", "error"
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
    unaccepted = replayer.unaccepted()
    if unaccepted is not None:
        if getattr(loaded, "args", None) is None:
            detail = (f"the journal carries no arguments and the code cannot be called without any "
                      f"({short(unaccepted)}): export the run with its arguments (durable export does)")
        else:
            detail = (f"the code cannot be called with the arguments the run was started with "
                      f"({short(unaccepted)}): runs in flight would be blocked; give new parameters a default")
        return Verdict(label, wf.name, "error", "arguments not accepted", detail)
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
    if result.state == "failed" and status in (*_IN_FLIGHT, "completed"):
        # It replays every recorded entry, then crashes where the recorded run went on.
        where = raised_at(result.error)
        return Verdict(label, name, "incompatible", "now fails",
                       f"position {result.position}: after the last recorded entry the code now raises "
                       f"{short(result.error)}" + (f" (at {where})" if where else "")
                       + f", where the recorded run was {status}: runs like it would fail",
                       position=result.position, yielded=f"raises {type(result.error).__name__}",
                       yielded_at=where, result=result)
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
        error = replayer.probe.error
        how = exc.yielded
        if error is not None and exc.yielded.startswith("raises"):
            verdict.change = "now fails"
            how = f"raises {short(error)}"
            verdict.yielded_at = verdict.yielded_at or raised_at(error)
        else:
            verdict.change = "removed"
        more = _more(len(later) - 1)
        verdict.detail = (f"the code now {how} at position {position}, where the journal "
                          f"recorded {exc.recorded}{more}")
        return _located(verdict, journal)
    leaf = _leaf_at(replayer, position)
    if exc.yielded.endswith("with other arguments"):
        verdict.change = "arguments changed"
        verdict.detail = f"{exc.recorded} is called with other arguments"
        return _located(verdict, journal)
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
            return _located(verdict, journal)
    if later == [position] and not exc.yielded.startswith("waits"):
        # The last recorded entry differs. If the journal replays without it, it was removed, or
        # moved past what the code now does there (the look-ahead tells, where it can).
        moved = _moved_later(wf, journal, [position], replayer)
        if moved is not None:
            verdict.change = "reordered"
            verdict.detail = (f"{exc.recorded} (recorded at position {position}) now comes after "
                              f"{verdict.yielded}" + (f", at {moved}" if moved else ""))
            return _located(verdict, journal)
        if _replays_without(wf, journal, [position]):
            verdict.change = "removed"
            verdict.detail = (f"the code no longer performs {exc.recorded} (the last recorded entry) there: it "
                              f"yields {verdict.yielded} instead (if {exc.recorded} comes later, it was moved)")
            return _located(verdict, journal)
    if exc.yielded.startswith("waits"):
        verdict.detail = f"the code {exc.yielded}, where the journal goes on with {exc.recorded}"
    else:
        verdict.detail = f"the code now {exc.yielded} where the journal recorded {exc.recorded}"
    return _located(verdict, journal)


def _more(count: int) -> str:
    if count <= 0:
        return ""
    return f" and {count} more {'entry' if count == 1 else 'entries'}"


def _located(verdict: Verdict, journal: Journal) -> Verdict:
    where = []
    if verdict.recorded_at:
        where.append(f"recorded at {verdict.recorded_at}")
    else:
        where.append(f"recorded at: unknown ({_no_line(journal)})")
    if verdict.yielded_at:
        where.append(f"code now at {verdict.yielded_at}")
    verdict.detail += f" ({'; '.join(where)})"
    verdict.detail = f"position {verdict.position}: {verdict.detail}"
    return verdict


def _no_line(journal: Journal) -> str:
    """Why the source line of a recorded entry is not known."""
    if getattr(journal, "lines", None):
        return "the journal has no source line for this position"
    if getattr(journal, "source", None):
        return "exported without --workflow, which records the source lines"
    return "the journal carries no source lines; stores keep none"


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


def _without(wf: Workflow[Any, Any], journal: Journal, skipped: list[int]) -> Replay:
    """A replay of `journal` with the entries at `skipped` taken out (later positions shifted down)."""
    gone = set(skipped)
    kept = [e for e in journal if e.position not in gone]
    shifted = [e._replace(position=_shift(e.position, skipped)) for e in kept]
    trial = Journal(shifted, workflow_id=journal.workflow_id, workflow=journal.workflow, run=journal.run,
                    digest_key=journal.digest_key)
    args: tuple = getattr(journal, "args", None) or ()
    kwargs: dict = getattr(journal, "kwargs", None) or {}
    return Replay(wf, trial, args, kwargs)


def _replays_without(wf: Workflow[Any, Any], journal: Journal, skipped: list[int]) -> bool:
    try:
        _without(wf, journal, skipped).run()
    except Exception:  # noqa: BLE001 - a divergence, or the code under test raising: not without them
        return False
    return True


def _moved_later(wf: Workflow[Any, Any], journal: Journal, skipped: list[int], replayer: Replay) -> str | None:
    """If the skipped entries come back later in the code: where (or "" if unknown); else None."""
    gone = [e for e in journal if e.position in set(skipped)]
    again = _without(wf, journal, skipped)
    try:
        again.run()
    except NondeterminismError as exc:
        leaf = _leaf_at(again, exc.position)
        if leaf is not None and any(_matches(again, leaf, entry) for entry in gone):
            return exc.location or ""
        return None
    except Exception:  # noqa: BLE001 - the code under test may raise anything: no answer
        return None
    # Without them the journal replays: they come back past its tail, or never.
    return _look_ahead(again, gone)


# What a look-ahead past the tail answers: waits whose outcome carries no information the code
# could depend on much (a receive's payload is guessed as None). Calls are not guessed.
_GUESSES: dict[str, Any] = {
    "sleep": lambda: None, "receive": lambda: None, "random": lambda: 0.0, "uuid": lambda: _uuid.UUID(int=0),
    "now": lambda: _dt.datetime(2000, 1, 1, tzinfo=_dt.UTC),
}
_LOOK_AHEAD = 8


def _look_ahead(again: Replay, gone: list[Entry]) -> str | None:
    """Follow a replay past its tail, as a run would go on (timers fire, signals come): where one of the
    `gone` entries comes back, or None if it does not within a few steps."""
    driver = again.driver
    try:
        for _ in range(_LOOK_AHEAD):
            pending = dict(driver.pending)
            if driver.finished or not pending:
                return None
            if any(_matches(again, leaf.effect, entry) for leaf in pending.values() for entry in gone):
                return driver.location() or ""
            guessable = [(p, leaf) for p, leaf in sorted(pending.items()) if leaf.effect.kind in _GUESSES]
            if not guessable:
                return None  # waits on calls only: their outcomes would be guesses
            position, leaf = guessable[0]
            value = _GUESSES[leaf.effect.kind]()
            driver.resolve(position, Entry(position, leaf.effect.kind, "", b"", False, value), True, value)
    except Exception:  # noqa: BLE001 - the code did not take a guessed value, or diverged: no answer
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
    others: dict[str, int] = {}  # journals of workflows not given: name -> how many
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
            else:
                others[journal.workflow or "?"] = others.get(journal.workflow or "?", 0) + 1
            continue
        verdicts.append(judge(wf, journal, label=path))
    names = ", ".join(sorted(by_name))
    if not verdicts:
        message = f"no journals of {names} found under {', '.join(map(os.fspath, paths)) or 'no path'}"
        for other, count in sorted(others.items()):
            message += (f"; found {count} journal{'s' if count != 1 else ''} of {other!r}: did the workflow's "
                        f"name change? Runs in flight of {other!r} would be blocked as not registered")
        raise AssertionError(message)
    failed = [v for v in verdicts if v.failed]
    if failed:
        listing = "\n".join(f"  {v.describe()}" for v in failed)
        raise AssertionError(
            f"{len(failed)} of {len(verdicts)} recorded journals cannot be replayed by the current code "
            f"of {names}:\n{listing}\nRuns in flight with these journals would be blocked (or fail) after "
            "this deploy; guard the change with durable.version() or start new runs under a new name."
        )
    return verdicts


def _workflows(fn: Any) -> dict[str, Workflow[Any, Any]]:
    if isinstance(fn, Registry):
        return {wf.name: wf for wf in fn}
    if isinstance(fn, Workflow) or callable(fn):
        wf = as_workflow(fn)
        return {wf.name: wf}
    return {as_workflow(f).name: as_workflow(f) for f in fn}
