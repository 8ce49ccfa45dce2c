"""Re-encode every stored payload under a codec chain: key rotation and chain changes.

    from durable.engine import reencode
    report = await reencode(store, target=Pipeline(codecs=[AESGCMCodec(keys={"k2": new, "k1": old}, active="k2")]))

Rotation, step by step: give every worker the new key as the active one and
keep the old one (they then write new payloads under the new key and still
read old ones); run this; drop the old key. It pages through the store,
leaves payloads the target chain already writes as they are, and swaps each
other payload only where it still holds the bytes it read (compare and
swap), so engines may keep running, and an interrupted run is resumed by
running it again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..codecs.pipeline import Pipeline, describe_chain
from ..errors import CodecError
from ..store.base import Store
from ..store.types import StoredPayload
from .recorder import payload_context

__all__ = ["ReencodeReport", "reencode"]


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
) -> ReencodeReport:
    """Rewrite every payload of `store` that `target` would not write as it is.

    Payloads are read with the source chain their header names (`sources`,
    a list of pipelines or a function from a chain signature like "j+z+a" to
    one, plus `target` itself, which reads whatever its keys can); a payload
    no configured chain reads raises `CodecError` naming where it is, and
    nothing already swapped is undone. The store must be open.
    """
    readers = _Readers(sources, target)
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
            changes.append((payload, _convert(payload, context, readers, target)))
        replaced = await store.replace_payloads(changes)
        report.reencoded += replaced
        report.changed_meanwhile += len(changes) - replaced
        after = page[-1].where
        if progress is not None:
            progress(report)


class _Readers:
    def __init__(self, sources: Sequence[Pipeline] | Callable[[str], Pipeline | None], target: Pipeline) -> None:
        self._make = sources if callable(sources) else None
        self._known: dict[str, Pipeline | None] = {} if callable(sources) else {p.signature: p for p in sources}
        self._known.setdefault(target.signature, target)

    def get(self, signature: str) -> Pipeline | None:
        if signature not in self._known and self._make is not None:
            self._known[signature] = self._make(signature)
        return self._known.get(signature)


def _convert(payload: StoredPayload, context: bytes, readers: _Readers, target: Pipeline) -> bytes:
    signature = target.signature_of(payload.data)
    source = readers.get(signature or "")
    where = _where(payload)
    if source is None:
        written = describe_chain(signature) if signature else "an unreadable header"
        raise CodecError(
            f"{where} was written by codec chain {written}, and no configured chain reads it; "
            "pass the chain that wrote it as a source",
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
