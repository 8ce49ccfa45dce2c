"""The pure driver: advances a workflow generator against its journal.

No I/O and no clock: given a generator and the recorded entries, it answers
each yielded effect from the journal (sending recorded results, throwing
recorded failures) until the code reaches effects nothing has recorded yet.
Those it reports as *live*; the engine performs them and hands each outcome
back with `resolve`. The same code path serves the first run, recovery and
the offline replay tool.

Positions are assigned to leaf effects in the order the code yields them
(depth first through `gather` and `race`), so they are a property of the
code, not of timing: members of a gather can finish in any order and the
journal still lines up.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from . import effects as _effects
from .effects import (
    UUID,
    Call,
    ContinueAsNew,
    Effect,
    Gather,
    Now,
    Race,
    Random,
    Receive,
    Sleep,
    Version,
)
from .errors import Cancelled, CodecError, NondeterminismError, bug
from .journal import describe_recorded

__all__ = ["Driver", "Leaf"]

# Driver states
NEW = "new"
WAITING = "waiting"  # blocked on live leaves (see .pending)
NEED_MORE = "need_more"  # the current effect reaches past the entries fed so far
DONE = "done"  # returned; .result is the value
FAILED = "failed"  # raised; .result is the exception
CANCELLED = "cancelled"  # Cancelled escaped the generator; .result is it
CONTINUED = "continued"  # continue_as_new; .result is the ContinueAsNew effect

_LEAF_TYPES = (Call, Sleep, Receive, UUID, Now, Random)
# The effect constructors, for the hint when one is yielded without being called.
_CONSTRUCTORS = frozenset(id(getattr(_effects, name)) for name in (
    "call", "sleep", "receive", "uuid", "now", "random", "gather", "race", "version", "continue_as_new"))
_PURE_TYPES = (UUID, Now, Random)

# DigestFn(effect, position, recorded_digest | None) -> digest to store or compare.
DigestFn = Callable[[Call, int, "bytes | None"], bytes]
# DecodeFn(entry) -> (ok, value or exception)
DecodeFn = Callable[[Any], "tuple[bool, Any]"]
# LiveFn(effect, position) -> (entry, value) for pure effects and version markers
LiveFn = Callable[[Effect, int], "tuple[Any, Any]"]


class Leaf:
    """One leaf effect at one position in the current wait."""

    __slots__ = ("position", "effect", "parent", "index", "done", "ok", "value", "digest", "live")

    def __init__(self, position: int, effect: Effect, parent: Group | None, index: int) -> None:
        self.position = position
        self.effect = effect
        self.parent = parent
        self.index = index
        self.done = False
        self.ok = True
        self.value: Any = None
        self.digest = b""
        self.live = False

    @property
    def kind(self) -> str:
        return self.effect.kind

    def __repr__(self) -> str:
        return f"<leaf {self.position} {self.effect.describe()}>"


class Group:
    """A gather or race node in the current wait."""

    __slots__ = ("effect", "children", "parent", "index", "done", "ok", "value", "race", "remaining")

    def __init__(self, effect: Gather | Race, parent: Group | None, index: int) -> None:
        self.effect = effect
        self.children: list[Leaf | Group] = []
        self.parent = parent
        self.index = index
        self.done = False
        self.ok = True
        self.value: Any = None
        self.race = isinstance(effect, Race)
        self.remaining = 0


class Driver:
    """Drives one workflow generator; see the module docstring.

    `digest` computes argument digests of calls, `decode` turns a recorded
    entry into `(ok, value_or_exception)`, and `live` (None in the offline
    replay tool) produces entries for pure effects reached live.
    """

    def __init__(
        self,
        gen: Any,
        *,
        workflow_id: str | None,
        workflow: str | None,
        digest: DigestFn,
        decode: DecodeFn,
        live: LiveFn | None = None,
    ) -> None:
        self.gen = gen
        self.workflow_id = workflow_id
        self.workflow = workflow
        self.digest = digest
        self.decode = decode
        self.live = live
        self.position = 0  # the next position to assign
        self.recorded: dict[int, Any] = {}  # fed, not yet consumed
        self.frontier = 0  # every recorded entry below this has been fed
        self.exhausted = False  # every recorded entry has been fed
        self.max_recorded = -1
        self.pending: dict[int, Leaf] = {}  # live leaves awaiting an outcome
        self.fresh: list[Leaf] = []  # leaves that became live since the last take
        self.abandoned: list[Leaf] = []  # live leaves whose race was decided without them
        self.outbox: list[Any] = []  # entries recorded live, not yet taken for commit
        self.state = NEW
        self.result: Any = None
        self.current: Leaf | Group | Version | None = None
        self._unknown: list[Leaf] = []  # leaves of the current wait past the frontier
        self._finishing: tuple[bool, Any] | None = None
        self._empty: list[Group] = []  # composites with no members in the current wait
        self.replayed = 0  # entries answered from the journal
        # The generator's frame, kept so that once it has returned or raised its
        # last line is still known (a finished generator's gi_frame is None).
        self._frame: Any = None

    # -- feeding the journal -----------------------------------------------

    def feed(self, entries: Iterable[Any], last: bool = False) -> None:
        """Add recorded entries (in position order); `last` when none remain."""
        recorded = self.recorded
        top = self.max_recorded
        for entry in entries:
            position = entry[0]
            recorded[position] = entry
            if position > top:
                top = position
        self.max_recorded = top
        self.frontier = top + 1
        if last:
            self.exhausted = True
        if self.state == NEED_MORE:
            self._resume()
        elif self.state == WAITING and self.pending:
            self._check_tail()

    def start(self) -> None:
        """Run the generator to its first wait (or to its end)."""
        if self.state != NEW:
            raise bug("Driver.start called twice")
        self.state = WAITING
        self._frame = getattr(self.gen, "gi_frame", None)
        self._run(True, None)

    # -- taking what the engine must act on -------------------------------

    def take_outbox(self) -> list[Any]:
        out, self.outbox = self.outbox, []
        return out

    def take_fresh(self) -> list[Leaf]:
        out, self.fresh = self.fresh, []
        return out

    def take_abandoned(self) -> list[Leaf]:
        out, self.abandoned = self.abandoned, []
        return out

    @property
    def finished(self) -> bool:
        return self.state in (DONE, FAILED, CANCELLED, CONTINUED)

    def wants(self, position: int) -> bool:
        """True if a live outcome for `position` would still be used."""
        return position in self.pending

    # -- live outcomes -------------------------------------------------------

    def resolve(self, position: int, entry: Any, ok: bool, value: Any) -> None:
        """Record the live outcome of the leaf at `position` and carry on.

        `entry` goes to the outbox; `value` (or the exception, if not `ok`) is
        what the generator sees, the same as a replay would decode.
        """
        leaf = self.pending.pop(position, None)
        if leaf is None:
            raise bug(f"outcome for position {position}, which is not awaited")
        self.outbox.append(entry)
        leaf.done = True
        leaf.ok = ok
        leaf.value = value
        root_done = self._complete(leaf)
        if root_done:
            self._deliver()

    # -- internals ---------------------------------------------------------

    def _run(self, ok: bool, value: Any) -> None:
        gen = self.gen
        while True:
            try:
                effect = gen.send(value) if ok else gen.throw(value)
            except StopIteration as stop:
                self._finish(True, stop.value)
                return
            except Cancelled as exc:
                self._finish(False, exc)
                return
            except Exception as exc:
                self._finish(False, exc)
                return
            outcome = self._begin(effect)
            if outcome is None:
                return
            ok, value = outcome

    def _finish(self, ok: bool, value: Any) -> None:
        self.current = None
        if not self.exhausted:
            # Recorded entries may remain past the frontier; learn before ending.
            self._finishing = (ok, value)
            self.state = NEED_MORE
            return
        if self.recorded:
            position = min(self.recorded)
            entry = self.recorded[position]
            if ok and isinstance(value, ContinueAsNew):
                how = "continues as new"
            else:
                how = "returns" if ok else f"raises {type(value).__name__}"
            raise self._diverged(position, describe_recorded(entry[1], entry[2]), how)
        if ok and isinstance(value, ContinueAsNew):
            self.state, self.result = CONTINUED, value
        elif ok:
            self.state, self.result = DONE, value
        elif isinstance(value, Cancelled):
            self.state, self.result = CANCELLED, value
        else:
            self.state, self.result = FAILED, value

    def _begin(self, effect: Any) -> tuple[bool, Any] | None:
        """Start the wait for a freshly yielded value; its outcome if known now."""
        t = type(effect)
        if t in _LEAF_TYPES:
            return self._single(effect, t)
        if t is Gather or t is Race:
            leaves: list[Leaf] = []
            self._empty = []
            root = self._build(effect, None, 0, leaves)
            for leaf in leaves:
                if type(leaf.effect) is Call:
                    failed = self._digest(leaf)
                    if failed is not None:
                        return False, failed
            self.current = root
            return self._settle_root(root, leaves)
        if t is Version:
            self.current = effect
            return self._version(effect)
        if t is ContinueAsNew:
            self.gen.close()
            self._finish(True, effect)
            return None
        return False, self._not_an_effect(effect)

    def _single(self, effect: Any, t: type) -> tuple[bool, Any] | None:
        # The common case, kept lean: one leaf, no tree, no Leaf object while replaying.
        position = self.position
        self.position = position + 1
        entry = self.recorded.pop(position, None) if self.recorded else None
        digest = b""
        if t is Call:
            recorded = entry[3] if entry is not None and entry[1] == "call" else None
            try:
                digest = self.digest(effect, position, recorded)
            except CodecError:
                raise  # the engine cannot digest at all (no digest key): blocks the run, not the code's fault
            except Exception as exc:  # arguments that cannot be recorded: thrown at the yield
                if entry is not None:
                    self.recorded[position] = entry
                return False, exc
        if entry is not None:
            kind = effect.kind
            if entry[1] != kind or (kind == "call" and (entry[3] != digest or entry[2] != effect.name)) or (
                kind == "receive" and entry[2] != effect.name
            ):
                self._check(effect, position, digest, entry)  # raises, naming what differs
            self.replayed += 1
            return self.decode(entry)
        if position >= self.frontier and not self.exhausted:
            leaf = Leaf(position, effect, None, 0)
            leaf.digest = digest
            self.current = leaf
            self._unknown = [leaf]
            self.state = NEED_MORE
            return None
        if t in _PURE_TYPES and self.live is not None:
            entry, value = self.live(effect, position)
            self.outbox.append(entry)
            return True, value
        leaf = Leaf(position, effect, None, 0)
        leaf.digest = digest
        leaf.live = True
        self.current = leaf
        self.pending[position] = leaf
        self.fresh.append(leaf)
        self.state = WAITING
        if self.recorded:
            self._check_tail()
        return None

    def _build(self, effect: Effect, parent: Group | None, index: int, leaves: list[Leaf]) -> Leaf | Group:
        if isinstance(effect, (Gather, Race)):
            group = Group(effect, parent, index)
            for i, member in enumerate(effect.effects):
                group.children.append(self._build(member, group, i, leaves))
            group.remaining = len(group.children)
            if not group.children:
                self._empty.append(group)
            return group
        if not isinstance(effect, _LEAF_TYPES):
            raise bug(f"unexpected member {effect!r} in a composite")
        leaf = Leaf(self.position, effect, parent, index)
        self.position += 1
        leaves.append(leaf)
        return leaf

    def _digest(self, leaf: Leaf) -> BaseException | None:
        entry = self.recorded.get(leaf.position)
        recorded = entry[3] if entry is not None and entry[1] == "call" else None
        try:
            leaf.digest = self.digest(leaf.effect, leaf.position, recorded)  # type: ignore[arg-type]
        except CodecError:
            raise
        except Exception as exc:
            return exc
        return None

    def _settle_root(self, root: Leaf | Group, leaves: list[Leaf]) -> tuple[bool, Any] | None:
        """Answer what the journal knows; report the rest live, or wait for more entries."""
        unknown = []
        for leaf in leaves:
            if leaf.position >= self.frontier and not self.exhausted:
                unknown.append(leaf)
        if unknown:
            self._unknown = unknown
            self.state = NEED_MORE
            return None
        return self._settle(root, leaves)

    def _settle(self, root: Leaf | Group, leaves: list[Leaf]) -> tuple[bool, Any] | None:
        recorded = self.recorded
        # Take every recorded member first: a race decided by a member at a
        # low position can still hold entries of a losing member recorded
        # before the decision, and those belong to this wait too.
        found = [(leaf, recorded.pop(leaf.position)) for leaf in leaves if leaf.position in recorded]
        for leaf, entry in found:
            if entry[1] == "call" and type(leaf.effect) is Call and entry[3][:1] != leaf.digest[:1]:
                # Digest computed before this entry was fed, under another scheme.
                leaf.digest = self.digest(leaf.effect, leaf.position, entry[3])
            self._check(leaf.effect, leaf.position, leaf.digest, entry)
            leaf.ok, leaf.value = self.decode(entry)
            leaf.done = True
            self.replayed += 1
        for leaf, _ in found:
            if not self._decided(leaf) and self._complete(leaf):
                return self._root_outcome(root)
        # gather() with no members is finished as soon as it is reached.
        for group in self._empty:
            if not group.done and not (group.parent is not None and self._decided_group(group)):
                group.done, group.value = True, []
                if self._complete(group):
                    return self._root_outcome(root)
        # Then what is live: pure effects resolve at once, the rest wait.
        for leaf in leaves:
            if leaf.done or self._decided(leaf):
                continue
            if isinstance(leaf.effect, _PURE_TYPES) and self.live is not None:
                entry, value = self.live(leaf.effect, leaf.position)
                self.outbox.append(entry)
                leaf.done = True
                leaf.value = value
                if self._complete(leaf):
                    return self._root_outcome(root)
                continue
            leaf.live = True
            self.pending[leaf.position] = leaf
            self.fresh.append(leaf)
        self.state = WAITING
        self._check_tail()
        return None

    def _check_tail(self) -> None:
        """Waiting live while the journal recorded more: the code took another path."""
        if not self.recorded:
            return
        position = min(self.recorded)
        entry = self.recorded[position]
        waiting = min(self.pending) if self.pending else self.position
        leaf = self.pending.get(waiting)
        what = leaf.effect.describe() if leaf is not None else "an effect"
        raise self._diverged(
            position, describe_recorded(entry[1], entry[2]),
            f"waits at position {waiting} on {what}, which the journal never finished there",
        )

    def _decided_group(self, group: Group) -> bool:
        node = group.parent
        while node is not None:
            if node.done:
                return True
            node = node.parent
        return False

    def _decided(self, leaf: Leaf) -> bool:
        node: Leaf | Group | None = leaf.parent
        while node is not None:
            if node.done:
                return True
            node = node.parent
        return False

    def _root_outcome(self, root: Leaf | Group) -> tuple[bool, Any]:
        self.current = None
        self._drop_pending()
        return root.ok, root.value

    def _complete(self, node: Leaf | Group) -> bool:
        """Propagate a finished node upward; True if the whole wait is finished."""
        while True:
            parent = node.parent
            if parent is None:
                return True
            if parent.done:
                return False
            if parent.race:
                parent.done = True
                parent.ok = node.ok
                parent.value = (node.index, node.value) if node.ok else node.value
                self._abandon(parent)
            else:
                parent.remaining -= 1
                if parent.remaining:
                    return False
                parent.done = True
                failure = next((c for c in parent.children if not c.ok), None)
                if failure is not None:
                    parent.ok, parent.value = False, failure.value
                else:
                    parent.value = [c.value for c in parent.children]
            node = parent

    def _abandon(self, group: Group) -> None:
        for child in group.children:
            if isinstance(child, Group):
                self._abandon(child)
            elif child.live and not child.done:
                child.live = False
                if self.pending.pop(child.position, None) is not None:
                    self.abandoned.append(child)

    def _drop_pending(self) -> None:
        if self.pending:
            for leaf in self.pending.values():
                leaf.live = False
                self.abandoned.append(leaf)
            self.pending.clear()

    def _deliver(self) -> None:
        root = self.current
        if root is None or isinstance(root, Version) or not root.done:
            raise bug("delivering an unfinished wait")
        ok, value = self._root_outcome(root)
        self.state = WAITING
        self._run(ok, value)

    def _resume(self) -> None:
        if self._finishing is not None:
            if not self.exhausted:
                return
            ok, value = self._finishing
            self._finishing = None
            self._finish(ok, value)
            return
        current = self.current
        if isinstance(current, Version):
            outcome = self._version(current)
        else:
            if any(leaf.position >= self.frontier for leaf in self._unknown) and not self.exhausted:
                return
            leaves = self._leaves(current)
            self._unknown = []
            outcome = self._settle(current, leaves)  # type: ignore[arg-type]
        if outcome is not None:
            self.state = WAITING
            self._run(*outcome)

    def _leaves(self, node: Leaf | Group | None) -> list[Leaf]:
        if node is None:
            raise bug("resuming with no current wait")
        if isinstance(node, Leaf):
            return [node]
        out: list[Leaf] = []
        for child in node.children:
            out.extend(self._leaves(child))
        return out

    def _version(self, effect: Version) -> tuple[bool, Any] | None:
        position = self.position
        entry = self.recorded.get(position)
        if entry is None and position >= self.frontier and not self.exhausted:
            self.state = NEED_MORE
            return None
        if entry is not None:
            if entry[1] == "version" and entry[2] == effect.change_id:
                del self.recorded[position]
                self.position += 1
                self.replayed += 1
                ok, value = self.decode(entry)
                self.current = None
                return ok, value
            self.current = None
            return True, 0  # recorded under older code: the marker takes no position
        if self.max_recorded >= position:
            self.current = None
            return True, 0
        if self.live is None:
            # Offline replay: report the marker as the next live effect.
            leaf = Leaf(position, effect, None, 0)
            self.position += 1
            leaf.live = True
            self.pending[position] = leaf
            self.fresh.append(leaf)
            self.state = WAITING
            return None
        self.position += 1
        entry, value = self.live(effect, position)
        self.outbox.append(entry)
        self.current = None
        return True, value

    def _check(self, effect: Any, position: int, digest: bytes, entry: Any) -> None:
        kind = effect.kind
        name = effect.name if kind == "call" or kind == "receive" else ""
        if entry[1] == kind and entry[2] == name and (kind != "call" or entry[3] == digest):
            return
        recorded = describe_recorded(entry[1], entry[2])
        if entry[1] == kind and entry[2] == name:
            raise self._diverged(position, recorded, f"yields {effect.describe()} with other arguments")
        raise self._diverged(position, recorded, f"yields {effect.describe()}")

    def _diverged(self, position: int, recorded: str, yielded: str) -> NondeterminismError:
        return NondeterminismError(
            workflow_id=self.workflow_id,
            workflow=self.workflow,
            position=position,
            recorded=recorded,
            yielded=yielded,
            location=self.location(),
        )

    def location(self) -> str | None:
        """`file:line` of the yield the generator is suspended at (innermost `yield from`)."""
        gen = self.gen
        while True:
            inner = getattr(gen, "gi_yieldfrom", None)
            if inner is None or getattr(inner, "gi_frame", None) is None:
                break
            gen = inner
        frame = getattr(gen, "gi_frame", None)
        if frame is None:
            frame = self._frame  # finished: the line it returned or raised at
            if frame is None:
                return None
        filename = frame.f_code.co_filename
        try:
            relative = os.path.relpath(filename)
            if not relative.startswith(".."):
                filename = relative
        except ValueError:
            pass
        return f"{filename}:{frame.f_lineno}"

    def _not_an_effect(self, value: Any) -> TypeError:
        where = self.location()
        at = f" ({where})" if where else ""
        name = f"workflow {self.workflow!r} (id {self.workflow_id})"
        if hasattr(value, "gi_frame") and hasattr(value, "send"):
            hint = "it is a generator: to run a sub-generator's effects inline, use `yield from`"
        elif id(value) in _CONSTRUCTORS:
            made = value.__name__
            hint = f"it is durable.{made} itself: did you mean `yield {made}(...)`? effects are made by calling them"
        elif hasattr(value, "cr_frame"):
            hint = "it is a coroutine: run async code as an activity with `yield call(fn, ...)`"
        elif callable(value):
            hint = "it is a function: did you mean `yield call(...)` with it?"
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Effect) for v in value):
            hint = "it is a collection of effects: did you mean `yield gather(...)`?"
        else:
            hint = "yield effects such as call(...), sleep(...), receive(...), uuid() or now()"
        return TypeError(
            f"{name} yielded {_short_repr(value)} at position {self.position}{at}, which is not an "
            f"effect; {hint}"
        )


def _short_repr(value: Any) -> str:
    text = f"{type(value).__qualname__} object"
    if isinstance(value, (int, float, bool, type(None))):
        text = repr(value)
    elif isinstance(value, str):
        text = repr(value[:40] + ("..." if len(value) > 40 else ""))
    elif hasattr(value, "__qualname__"):
        text = f"{type(value).__qualname__} {value.__qualname__}"
    return text
