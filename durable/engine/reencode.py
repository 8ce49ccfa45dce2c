"""Re-encode every stored payload under a codec chain: key rotation and chain changes.

    from durable.engine import reencode
    report = await reencode(store, target=Pipeline(codecs=[AESGCMCodec(keys={"k2": new, "k1": old}, active="k2")]))

Rotation, step by step: give every worker the new key as the active one and
keep the old one (they then write new payloads under the new key and still
read old ones); run this; drop the old key. It pages through the store,
leaves payloads the target chain already writes as they are, and swaps each
other payload only where it still holds the bytes it read (compare and
swap), so engines may keep running, and an interrupted run is resumed by
running it again. `count_outdated` then checks that nothing is left under
an old key before you drop it.

Re-encoding seals what it reads as authentic, so when the target encrypts it
refuses payloads that were not encrypted (a plain `j` or `j+z` chain): anyone
who can write the store can write one. Moving a plain store to encryption
says so with `allow_plain_sources=True`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..codecs.pipeline import Pipeline, describe_chain
from ..errors import CodecError
from ..store.base import Store
from ..store.types import StoredPayload
from .recorder import payload_context

__all__ = ["ReencodeReport", "count_outdated", "reencode"]


@dataclass
class ReencodeReport:
    """What a re-encoding pass did."""

    seen: int = 0
    reencoded: int = 0
    current: int = 0  # already written by the target chain and key: left alone
    changed_meanwhile: int = 0  # rewritten by a running engine between read and swap: left alone
    skipped: list[str] = field(default_factory=list)  # meta entries that are not payloads

    def __str__(self) -> str:
        return (f"{self.seen:,} payloads: {self.reencoded:,} re-encoded, {self.current:,} already current, "
                f"{self.changed_meanwhile:,} changed meanwhile (left as the engine wrote them)")


async def reencode(
    store: Store,
    target: Pipeline,
    sources: Sequence[Pipeline] | Callable[[str], Pipeline | None] = (),
    *,
    batch: int = 500,
    progress: Callable[[ReencodeReport], None] | None = None,
    allow_plain_sources: bool = False,
) -> ReencodeReport:
    """Rewrite every payload of `store` that `target` would not write as it is.

    Payloads are read with the source chain their header names (`sources`,
    a list of pipelines or a function from a chain signature like "j+z+a" to
    one, or to None or a ValueError saying why it cannot; plus `target`
    itself, which reads whatever its keys can); a payload no configured chain
    reads raises `CodecError` naming where it is, and nothing already swapped
    is undone. The store must be open.

    If `target` encrypts (a codec with `secret = True`), a payload whose own
    chain does not encrypt raises `CodecError` too, unless
    `allow_plain_sources=True`: pass it only when the store was unencrypted
    until now, since re-encoding turns whatever such a payload holds into an
    authenticated value.
    """
    readers = _Readers(sources, target)
    refuse_plain = target.secret and not allow_plain_sources
    report = ReencodeReport()
    after = None
    while True:
        page = await store.payloads(after, batch)
        if not page:
            return report
        changes: list[tuple[StoredPayload, bytes]] = []
        for payload in page:
            report.seen += 1
            context = payload_context(payload)
            if context is None:
                report.skipped.append(payload.kind)
                continue
            if target.is_current(payload.data):
                report.current += 1
                continue
            changes.append((payload, _convert(payload, context, readers, target, refuse_plain)))
        replaced = await store.replace_payloads(changes)
        report.reencoded += replaced
        report.changed_meanwhile += len(changes) - replaced
        after = page[-1].where
        if progress is not None:
            progress(report)


async def count_outdated(store: Store, target: Pipeline, *, batch: int = 500) -> int:
    """How many payloads `target` would not write as they are (another chain or key): 0 once rotation is done.

    Read-only; the store must be open. Engines that still write under an old
    key or chain between this count and dropping that key make it stale, so
    give every engine the new configuration first.
    """
    outdated = 0
    after = None
    while page := await store.payloads(after, batch):
        outdated += sum(1 for p in page if payload_context(p) is not None and not target.is_current(p.data))
        after = page[-1].where
    return outdated


class _Readers:
    def __init__(self, sources: Sequence[Pipeline] | Callable[[str], Pipeline | None], target: Pipeline) -> None:
        self._make = sources if callable(sources) else None
        self._known: dict[str, Pipeline | None] = {} if callable(sources) else {p.signature: p for p in sources}
        self._known.setdefault(target.signature, target)
        self.why: dict[str, str] = {}  # chain signature -> why the function would not build a reader

    def get(self, signature: str) -> Pipeline | None:
        if signature not in self._known and self._make is not None:
            try:
                self._known[signature] = self._make(signature)
            except ValueError as exc:
                self._known[signature] = None
                self.why[signature] = str(exc)
        return self._known.get(signature)


def _convert(payload: StoredPayload, context: bytes, readers: _Readers, target: Pipeline,
             refuse_plain: bool) -> bytes:
    signature = target.signature_of(payload.data)
    source = readers.get(signature or "")
    where = _where(payload)
    written = describe_chain(signature) if signature else "an unreadable header"
    if source is None:
        why = readers.why.get(signature or "")
        raise CodecError(
            f"{where} was written by codec chain {written}, which cannot be read here: {why}" if why else
            f"{where} was written by codec chain {written}, and no configured chain reads it; "
            "pass the chain that wrote it as a source",
            workflow_id=payload.workflow_id, position=payload.position,
        )
    if refuse_plain and not source.secret:
        raise CodecError(
            f"{where} was written by codec chain {written}, which does not encrypt, and re-encoding it "
            f"under {describe_chain(target.signature)} would make whatever it holds pass as authentic. If "
            "the store was unencrypted until now, allow plain sources (`durable reencode --from-plain`, "
            "or reencode(..., allow_plain_sources=True)); if it was encrypted, someone with write access "
            "to the store wrote this payload: inspect it before going on. Pages already re-encoded stay so",
            workflow_id=payload.workflow_id, position=payload.position,
        )
    data = source.open(payload.data, context, workflow_id=payload.workflow_id, position=payload.position)
    if source.serializer.id != target.serializer.id:
        data = target.serializer.encode(source.serializer.decode(data))
    return target.seal(data, context, workflow_id=payload.workflow_id, position=payload.position)


def _where(payload: StoredPayload) -> str:
    if payload.slot == "meta":
        return f"the store's {payload.kind!r} setting"
    if payload.slot == "entry":
        return f"the journal entry at position {payload.position} of workflow {payload.workflow_id!r}"
    if payload.slot == "signal":
        return f"a {payload.kind!r} signal waiting for workflow {payload.workflow_id!r}"
    return f"the {payload.slot} of workflow {payload.workflow_id!r}"
