"""Codec contexts: every place a payload belongs gets its own, whatever its ids and names hold."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from durable import CodecError
from durable.codecs import AESGCMCodec, FernetCodec, JsonSerializer, Pipeline, ZlibCodec
from durable.codecs.pipeline import context_of

# A signal to workflow 'X' named '0\x1f5\x1fcall', and position 5 of workflow
# 'X\x1f0\x1finbox': both read "X␟0␟inbox␟0␟5␟call" when joined by \x1f.
SIGNAL = ("X", 0, "inbox", "0\x1f5\x1fcall")
ENTRY = ("X\x1f0\x1finbox", 0, 5, "call")
FERNET_KEY = Fernet.generate_key()


def legacy_context_of(workflow_id: str, run: int, position: int | str, kind: str) -> bytes:
    """The contexts durable bound payloads to before they were length-prefixed."""
    return f"{workflow_id}\x1f{run}\x1f{position}\x1f{kind}".encode("utf-8", "surrogatepass")


def chains() -> list[Pipeline]:
    aes = AESGCMCodec(keys={"k1": bytes(range(32))}, active="k1")
    return [
        Pipeline(JsonSerializer(), [aes]),
        Pipeline(JsonSerializer(), [ZlibCodec(min_size=0), aes]),
        Pipeline(JsonSerializer(), [FernetCodec(keys={"f1": FERNET_KEY})]),
    ]


def test_places_whose_joined_fields_coincide_get_different_contexts() -> None:
    assert legacy_context_of(*SIGNAL) == legacy_context_of(*ENTRY)  # the collision this guards against
    assert context_of(*SIGNAL) != context_of(*ENTRY)


@pytest.mark.parametrize("pipeline", chains(), ids=lambda p: p.signature)
def test_a_payload_sealed_for_one_place_is_refused_at_the_colliding_one(pipeline: Pipeline) -> None:
    sealed = pipeline.dump({"approved": True}, context_of(*SIGNAL))
    assert pipeline.load(sealed, context_of(*SIGNAL)) == {"approved": True}
    with pytest.raises(CodecError):
        pipeline.load(sealed, context_of(*ENTRY), workflow_id=ENTRY[0], position=5)
    sealed = pipeline.dump("result", context_of(*ENTRY))
    with pytest.raises(CodecError):
        pipeline.load(sealed, context_of(*SIGNAL))


fields = st.tuples(
    st.text(max_size=12),
    st.integers(min_value=0, max_value=3),
    st.one_of(st.integers(min_value=-1, max_value=20), st.sampled_from(["args", "result", "pending", "inbox"])),
    st.text(max_size=12),
)


@given(fields, fields)
def test_property_contexts_are_equal_only_for_equal_places(a, b) -> None:
    same_place = a == b and type(a[2]) is type(b[2])
    assert (context_of(*a) == context_of(*b)) == same_place
