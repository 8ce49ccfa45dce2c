"""AESGCMCodec: round trips, and every way a payload can be damaged is refused by name."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import durable.codecs.aesgcm as aesgcm_module
from durable import CodecError
from durable.codecs import AESGCMCodec
from durable.codecs.aesgcm import key_from_text, key_to_text
from durable.codecs.pipeline import context_of

K1 = bytes(range(32))
K2 = bytes(range(100, 132))
CTX = context_of("order-17", 0, 3, "call")
SECRET = b"4111 1111 1111 1111, exp 12/29"


def codec() -> AESGCMCodec:
    return AESGCMCodec({"k2": K2, "k1": K1}, active="k2")


def refused(c: AESGCMCodec, data: bytes, context: bytes = CTX) -> CodecError:
    with pytest.raises(CodecError) as info:
        c.decode(data, context)
    return info.value


def test_round_trip_and_layout() -> None:
    c = codec()
    sealed = c.encode(SECRET, CTX)
    assert c.decode(sealed, CTX) == SECRET
    # version, key id length, key id, 12-byte nonce, ciphertext, 16-byte tag
    assert sealed[:4] == b"\x01\x02k2"
    assert len(sealed) == len(SECRET) + 4 + 12 + 16
    assert SECRET not in sealed
    assert c.decode(c.encode(b"", CTX), CTX) == b""


def test_nonces_are_fresh() -> None:
    c = codec()
    sealed = {c.encode(SECRET, CTX) for _ in range(50)}
    assert len(sealed) == 50
    assert len({s[4:16] for s in sealed}) == 50


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=2000), context=st.binary(max_size=64))
def test_round_trip_any_bytes(data: bytes, context: bytes) -> None:
    c = codec()
    assert c.decode(c.encode(data, context), context) == data


def test_every_flipped_byte_is_refused_naming_the_key() -> None:
    c = codec()
    sealed = c.encode(SECRET, CTX)
    header = 4  # version, length, "k2"
    for at in range(len(sealed)):
        for mask in (0x01, 0x80, 0xFF):
            damaged = bytearray(sealed)
            damaged[at] ^= mask
            err = refused(c, bytes(damaged))
            if at >= header:
                assert err.key_id == "k2", at
                assert "'k2'" in str(err)
            elif err.key_id is not None:
                # A damaged key id is reported as read, so the operator sees what is there.
                assert repr(err.key_id) in str(err)
            else:
                assert "key id" in str(err)


def test_every_truncation_is_refused() -> None:
    c = codec()
    sealed = c.encode(SECRET, CTX)
    for size in range(len(sealed)):
        err = refused(c, sealed[:size])
        if size >= 4:
            assert err.key_id == "k2", size
            assert "'k2'" in str(err)
        else:
            assert err.key_id is None
            assert "cannot read the key id" in str(err)
    assert refused(c, b"").key_id is None


def test_extended_payload_is_refused() -> None:
    c = codec()
    sealed = c.encode(SECRET, CTX)
    assert refused(c, sealed + b"\x00").key_id == "k2"


@pytest.mark.parametrize(
    "other",
    [
        context_of("order-18", 0, 3, "call"),  # another workflow
        context_of("order-17", 1, 3, "call"),  # another run of it
        context_of("order-17", 0, 4, "call"),  # another position
        context_of("order-17", 0, 3, "receive"),  # another kind
        context_of("order-17", 0, 3, "call!"),  # the failed flag flipped
        b"",
    ],
)
def test_payload_moved_elsewhere_is_refused(other: bytes) -> None:
    c = codec()
    err = refused(c, c.encode(SECRET, CTX), other)
    assert err.key_id == "k2"
    assert "moved" in str(err)


def test_wrong_key_under_the_same_id() -> None:
    sealed = codec().encode(SECRET, CTX)
    err = refused(AESGCMCodec({"k2": K1}), sealed)
    assert err.key_id == "k2"
    assert "wrong key" in str(err)


def test_unknown_key_id_names_it_and_the_configured_ones() -> None:
    sealed = AESGCMCodec({"k0": K1}).encode(SECRET, CTX)
    err = refused(codec(), sealed)
    assert err.key_id == "k0"
    assert "'k0'" in str(err) and "'k2', 'k1'" in str(err)


def test_relabelled_key_id_is_refused() -> None:
    # Both keys are configured: a payload relabelled from k2 to k1 must still fail.
    c = AESGCMCodec({"k2": K2, "k1": K1}, active="k2")
    sealed = c.encode(SECRET, CTX)
    err = refused(c, sealed[:2] + b"k1" + sealed[4:])
    assert err.key_id == "k1"


def test_rotation() -> None:
    old = AESGCMCodec({"k1": K1})
    written = old.encode(SECRET, CTX)
    rotated = AESGCMCodec({"k2": K2, "k1": K1}, active="k2")
    assert rotated.decode(written, CTX) == SECRET
    fresh = rotated.encode(rotated.decode(written, CTX), CTX)  # what re-encryption does
    assert fresh[:4] == b"\x01\x02k2"
    assert old.decode(written, CTX) == SECRET  # the old key still reads what it wrote
    dropped = AESGCMCodec({"k2": K2})
    assert dropped.decode(fresh, CTX) == SECRET
    err = refused(dropped, written)
    assert err.key_id == "k1" and "'k1'" in str(err)


def test_cipher_objects_are_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    c = codec()

    def no_rebuild(key: bytes) -> None:
        raise AssertionError("AESGCM rebuilt per call")

    monkeypatch.setattr(aesgcm_module, "AESGCM", no_rebuild)
    assert c.decode(c.encode(SECRET, CTX), CTX) == SECRET


def test_active_defaults_to_first_key() -> None:
    assert AESGCMCodec({"b": K2, "a": K1}).active == "b"
    assert AESGCMCodec({"b": K2, "a": K1}, active="a").encode(b"x")[:3] == b"\x01\x01a"


@pytest.mark.parametrize("size", [0, 16, 24, 31, 33, 64])
def test_key_size_is_checked_naming_the_key(size: int) -> None:
    with pytest.raises(ValueError, match="'short'.*32"):
        AESGCMCodec({"short": b"\x00" * size})


def test_text_key_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="'k1'.*from_text"):
        AESGCMCodec({"k1": "a" * 32})  # type: ignore[dict-item]


@pytest.mark.parametrize("key_id", ["", "has space", "é", "x" * 33, "tab\t", 7])
def test_bad_key_ids(key_id: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        AESGCMCodec({key_id: K1})  # type: ignore[dict-item]


def test_bad_active_and_empty_keys() -> None:
    with pytest.raises(ValueError, match="'k3'.*'k2', 'k1'"):
        AESGCMCodec({"k2": K2, "k1": K1}, active="k3")
    with pytest.raises(ValueError, match="at least one key"):
        AESGCMCodec({})


def test_generate_key() -> None:
    keys = {AESGCMCodec.generate_key() for _ in range(10)}
    assert len(keys) == 10 and all(len(k) == 32 for k in keys)


def test_keys_from_text() -> None:
    assert key_from_text(K1.hex()) == K1
    assert key_from_text(K1.hex().upper()) == K1
    assert key_from_text(base64.b64encode(K1).decode()) == K1
    assert key_from_text(key_to_text(K2)) == K2
    assert key_from_text(f"  {key_to_text(K2)}\n") == K2
    c = AESGCMCodec.from_text(f"k2={key_to_text(K2)}, k1={K1.hex()}")
    assert c.active == "k2" and c.key_ids == ("k2", "k1")
    assert c.decode(codec().encode(SECRET, CTX), CTX) == SECRET
    c = AESGCMCodec.from_text({"k2": K2.hex(), "k1": K1.hex()}, active="k1")
    assert c.active == "k1"


@pytest.mark.parametrize("text", ["", "zz" * 32, "abc", base64.b64encode(b"x" * 31).decode(), "k2"])
def test_bad_key_text_never_echoes_it(text: str) -> None:
    with pytest.raises(ValueError) as info:
        key_from_text(text, "k9")
    assert "'k9'" in str(info.value)
    if text:
        assert text not in str(info.value)


def test_from_text_refuses_pairs_without_ids() -> None:
    with pytest.raises(ValueError, match="key id=key"):
        AESGCMCodec.from_text(K1.hex())


def test_repr_shows_key_ids_only() -> None:
    text = repr(codec())
    assert text == "AESGCMCodec(keys=['k2', 'k1'], active='k2')"
    assert K1.hex() not in text and key_to_text(K1) not in text


def test_decodes_any_bytes_like_payload() -> None:
    c = codec()
    sealed = c.encode(SECRET, CTX)
    assert c.decode(bytearray(sealed), CTX) == SECRET
    assert c.decode(memoryview(sealed), CTX) == SECRET
