"""FernetCodec: rotation, context binding (Fernet has none of its own), damage refused."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from hypothesis import given, settings
from hypothesis import strategies as st

from durable import CodecError
from durable.codecs import FernetCodec
from durable.codecs.pipeline import context_of

F1 = Fernet.generate_key()
F2 = Fernet.generate_key()
CTX = context_of("order-17", 0, 3, "call")
SECRET = b"4111 1111 1111 1111, exp 12/29"


def refused(c: FernetCodec, data: bytes, context: bytes = CTX) -> CodecError:
    with pytest.raises(CodecError) as info:
        c.decode(data, context)
    return info.value


def test_round_trip_raw_token_not_base64() -> None:
    c = FernetCodec({"f2": F2, "f1": F1})
    sealed = c.encode(SECRET, CTX)
    assert c.decode(sealed, CTX) == SECRET
    assert sealed[:4] == b"\x01\x02f2"
    assert sealed[4] == 0x80  # the Fernet version byte, stored raw
    assert SECRET not in sealed


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=1000), context=st.binary(max_size=64))
def test_round_trip_any_bytes(data: bytes, context: bytes) -> None:
    c = FernetCodec([F1])
    assert c.decode(c.encode(data, context), context) == data


def test_list_keys_get_stable_ids_and_the_first_encrypts() -> None:
    a = FernetCodec([F2, F1])
    b = FernetCodec([F1, F2])
    assert a.key_ids == tuple(reversed(b.key_ids))
    assert a.active == a.key_ids[0]
    assert all(len(k) == 8 for k in a.key_ids)
    # The id comes from the key, not its place in the list: rotation keeps old ids valid.
    assert b.decode(a.encode(SECRET, CTX), CTX) == SECRET


def test_rotation() -> None:
    old = FernetCodec({"f1": F1})
    written = old.encode(SECRET, CTX)
    rotated = FernetCodec({"f2": F2, "f1": F1})
    assert rotated.decode(written, CTX) == SECRET
    fresh = rotated.encode(rotated.decode(written, CTX), CTX)
    dropped = FernetCodec({"f2": F2})
    assert dropped.decode(fresh, CTX) == SECRET
    err = refused(dropped, written)
    assert err.key_id == "f1" and "'f1'" in str(err) and "'f2'" in str(err)


def test_every_flipped_byte_and_truncation_is_refused() -> None:
    c = FernetCodec({"f1": F1})
    sealed = c.encode(SECRET, CTX)
    for at in range(len(sealed)):
        damaged = bytearray(sealed)
        damaged[at] ^= 0x01
        err = refused(c, bytes(damaged))
        if at >= 4:
            assert err.key_id == "f1" and "'f1'" in str(err), at
    for size in range(len(sealed)):
        err = refused(c, sealed[:size])
        assert err.key_id == ("f1" if size >= 4 else None), size
    assert refused(c, sealed + b"\x00").key_id == "f1"


@pytest.mark.parametrize(
    "other",
    [context_of("order-18", 0, 3, "call"), context_of("order-17", 0, 4, "call"),
     context_of("order-17", 0, 3, "sleep"), context_of("order-17", 2, 3, "call"), b""],
)
def test_payload_moved_elsewhere_is_refused(other: bytes) -> None:
    c = FernetCodec({"f1": F1})
    err = refused(c, c.encode(SECRET, CTX), other)
    assert err.key_id == "f1" and "another workflow" in str(err)


def test_wrong_key_under_the_same_id() -> None:
    err = refused(FernetCodec({"f1": F2}), FernetCodec({"f1": F1}).encode(SECRET, CTX))
    assert err.key_id == "f1" and "wrong key" in str(err)


def test_bad_keys_name_the_key() -> None:
    with pytest.raises(ValueError, match="'f9'"):
        FernetCodec({"f9": b"not a fernet key"})
    with pytest.raises(ValueError, match="#2"):
        FernetCodec([F1, "short"])
    with pytest.raises(ValueError, match="non-empty"):
        FernetCodec([])
    with pytest.raises(ValueError, match="mapping"):
        FernetCodec([F1], active="x")
    with pytest.raises(ValueError, match="'x'"):
        FernetCodec({"f1": F1}, active="x")
    with pytest.raises(ValueError, match="key id"):
        FernetCodec({"has space": F1})


def test_repr_hides_keys() -> None:
    text = repr(FernetCodec({"f1": F1}))
    assert text == "FernetCodec(keys=['f1'], active='f1')"
    assert F1.decode() not in text


def test_generate_key_is_a_fernet_key() -> None:
    key = FernetCodec.generate_key()
    assert Fernet(key).decrypt(Fernet(key).encrypt(b"x")) == b"x"


def test_decodes_any_bytes_like_payload() -> None:
    c = FernetCodec([F1])
    sealed = c.encode(SECRET, CTX)
    assert c.decode(bytearray(sealed), CTX) == SECRET
    assert c.decode(memoryview(sealed), CTX) == SECRET
