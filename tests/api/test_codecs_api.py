"""Byte codecs — DESIGN.md 'Codecs (durable.codecs)' and blocked-on-undecodable entries."""

from __future__ import annotations

import os

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

import durable
from durable import call, receive
from durable.codecs import AESGCMCodec, FernetCodec, ZlibCodec

from .conftest import shared_store, wait_status, wait_until

K1 = bytes(range(32))
K2 = bytes(range(32, 64))
OTHER = os.urandom(32)


def _aes(active="k2", **keys):
    return AESGCMCodec(keys=keys or {"k2": K2, "k1": K1}, active=active)


def _fernet(keys=None, active=None):
    return FernetCodec(keys=keys or {"f1": FERNET_KEY}, active=active)


FERNET_KEY = Fernet.generate_key()


@given(st.binary(max_size=2048), st.binary(max_size=64))
def test_aesgcm_round_trips_with_context(data, context) -> None:
    codec = _aes()
    out = codec.encode(data, context)
    assert isinstance(out, bytes)
    assert codec.decode(out, context) == data


@given(st.binary(max_size=4096))
def test_zlib_round_trips(data) -> None:
    codec = ZlibCodec()
    assert codec.decode(codec.encode(data)) == data


@given(st.binary(max_size=1024))
def test_fernet_round_trips(data) -> None:
    codec = _fernet()
    assert codec.decode(codec.encode(data, b"ctx"), b"ctx") == data


def test_context_defaults_to_empty_bytes() -> None:
    codec = _aes()
    assert codec.decode(codec.encode(b"x")) == b"x"
    assert codec.decode(codec.encode(b"x", b""), b"") == b"x"


def test_aesgcm_ciphertext_hides_the_plaintext() -> None:
    secret = b"4111-1111-1111-1111"
    assert secret not in _aes().encode(secret * 3, b"ctx")


def test_aesgcm_other_context_is_codecerror_naming_the_key_id() -> None:
    codec = _aes()
    data = codec.encode(b"payload", b"wf-1/0")
    with pytest.raises(durable.CodecError) as info:
        codec.decode(data, b"wf-1/1")
    assert "k2" in str(info.value)


def test_aesgcm_flipped_byte_anywhere_is_codecerror() -> None:
    codec = _aes()
    data = codec.encode(b"payload", b"ctx")
    for i in range(len(data)):
        tampered = bytearray(data)
        tampered[i] ^= 0x01
        with pytest.raises(durable.CodecError):
            codec.decode(bytes(tampered), b"ctx")


def test_aesgcm_truncated_or_extended_is_codecerror() -> None:
    codec = _aes()
    data = codec.encode(b"payload", b"ctx")
    for cut in range(len(data)):
        with pytest.raises(durable.CodecError):
            codec.decode(data[:cut], b"ctx")
    with pytest.raises(durable.CodecError):
        codec.decode(data + b"\x00", b"ctx")


def test_aesgcm_wrong_key_is_codecerror_naming_the_key_id() -> None:
    data = _aes().encode(b"payload", b"ctx")
    wrong = AESGCMCodec(keys={"k2": OTHER}, active="k2")
    with pytest.raises(durable.CodecError) as info:
        wrong.decode(data, b"ctx")
    assert "k2" in str(info.value)


def test_aesgcm_unknown_key_id_is_codecerror_naming_it() -> None:
    data = _aes().encode(b"payload", b"ctx")
    only_k1 = AESGCMCodec(keys={"k1": K1}, active="k1")
    with pytest.raises(durable.CodecError) as info:
        only_k1.decode(data, b"ctx")
    assert "k2" in str(info.value)


def test_aesgcm_rotation_keeps_old_entries_readable() -> None:
    old = AESGCMCodec(keys={"k1": K1}, active="k1").encode(b"old entry", b"ctx")
    rotated = _aes(active="k2")
    assert rotated.decode(old, b"ctx") == b"old entry"
    new = rotated.encode(b"new entry", b"ctx")
    assert rotated.decode(new, b"ctx") == b"new entry"
    with pytest.raises(durable.CodecError):
        AESGCMCodec(keys={"k1": K1}, active="k1").decode(new, b"ctx")


def test_codec_errors_are_durable_errors_with_the_key_id() -> None:
    data = _aes().encode(b"payload", b"ctx")
    with pytest.raises(durable.DurableError) as info:
        AESGCMCodec(keys={"k2": OTHER}, active="k2").decode(data, b"ctx")
    assert isinstance(info.value, durable.CodecError)
    assert getattr(info.value, "key_id", "k2") == "k2"


def test_fernet_tampered_or_wrong_key_is_codecerror() -> None:
    data = _fernet().encode(b"payload", b"ctx")
    tampered = bytearray(data)
    tampered[len(tampered) // 2] ^= 0x01
    with pytest.raises(durable.CodecError):
        _fernet().decode(bytes(tampered), b"ctx")
    with pytest.raises(durable.CodecError):
        _fernet({"f1": Fernet.generate_key()}).decode(data, b"ctx")
    with pytest.raises(durable.CodecError):
        _fernet().decode(data[:-3], b"ctx")


def test_zlib_truncated_or_garbage_is_codecerror() -> None:
    codec = ZlibCodec()
    data = codec.encode(b"a" * 10_000)
    with pytest.raises(durable.CodecError):
        codec.decode(data[: len(data) // 2])
    with pytest.raises(durable.CodecError):
        codec.decode(b"\xff" * 40)


# ---------------------------------------------------------------- in the engine

SECRET = "card-4111111111111111"


def _registry():
    reg = durable.Registry()

    @reg.workflow(name="cd.wait")
    def wf(card):
        got = yield receive("go")
        return [card, got]

    return reg, wf


def _strings_in(obj, seen=None, depth=0):
    """Every bytes/str reachable from obj (a generic walk: no store internals assumed)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 12:
        return
    seen.add(id(obj))
    if isinstance(obj, (bytes, bytearray, memoryview)):
        yield bytes(obj)
    elif isinstance(obj, str):
        yield obj.encode("utf-8", "surrogatepass")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings_in(k, seen, depth + 1)
            yield from _strings_in(v, seen, depth + 1)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            yield from _strings_in(v, seen, depth + 1)
    elif hasattr(obj, "__dict__") or hasattr(obj, "__slots__"):
        for name in list(getattr(obj, "__dict__", {})) + list(getattr(obj, "__slots__", ())):
            try:
                yield from _strings_in(getattr(obj, name), seen, depth + 1)
            except AttributeError:
                pass


async def test_store_only_ever_sees_ciphertext_for_payloads() -> None:
    reg, wf = _registry()
    store = durable.store.MemoryStore()
    async with durable.Engine(store, registry=reg, codecs=[_aes()]) as engine:
        await engine.start(wf, SECRET, id="cd-secret")
        await engine.signal("cd-secret", "go", SECRET + "-signal")
        assert await engine.result("cd-secret", timeout=2) == [SECRET, SECRET + "-signal"]
        entries = await engine.journal("cd-secret")
        assert entries[0].value == SECRET + "-signal"
    leaked = [s for s in _strings_in(store) if SECRET.encode() in s]
    assert leaked == []


async def test_undecodable_entry_blocks_only_that_workflow_until_the_key_is_supplied() -> None:
    reg, wf = _registry()
    store = durable.store.MemoryStore()
    only_k1 = [AESGCMCodec(keys={"k1": K1}, active="k1")]
    rotated = [AESGCMCodec(keys={"k2": K2, "k1": K1}, active="k2")]
    k2_lost = [AESGCMCodec(keys={"k2": OTHER, "k1": K1}, active="k1")]
    async with durable.Engine(store, registry=reg, codecs=only_k1) as engine:
        await engine.start(wf, "under k1", id="cd-k1")
        await wait_status(engine, "cd-k1", "waiting")
    async with durable.Engine(store, registry=reg, codecs=rotated) as engine:
        await engine.start(wf, "under k2", id="cd-k2")
        await wait_status(engine, "cd-k2", "waiting")
        await engine.signal("cd-k2", "go", "recorded under k2")
        await wait_status(engine, "cd-k2", "completed")
        await engine.start(wf, "under k2 too", id="cd-k2-wait")
        await wait_status(engine, "cd-k2-wait", "waiting")
    async with durable.Engine(store, registry=reg, codecs=k2_lost) as engine:
        # the workflow whose payloads are under the lost key is blocked, not failed...
        await engine.signal("cd-k2-wait", "go", "while blocked")
        await wait_status(engine, "cd-k2-wait", "blocked")
        # ...and the others are unaffected
        await engine.signal("cd-k1", "go", "fine")
        assert await engine.result("cd-k1", timeout=2) == ["under k1", "fine"]
        assert await engine.status("cd-k2-wait") == "blocked"
    async with durable.Engine(store, registry=reg, codecs=rotated) as engine:
        assert await engine.result("cd-k2-wait", timeout=2) == ["under k2 too", "while blocked"]


async def test_an_engine_without_the_stores_key_opens_blocks_what_it_cannot_read_and_the_key_resumes_it() -> None:
    reg = durable.Registry()

    @durable.activity(name="cd.charge")
    def charge(card):
        return f"charged {card[-4:]}"

    @reg.workflow(name="cd.pay")
    def pay(card):
        go = yield receive("go")
        receipt = yield call(charge, card)  # a keyed argument digest: needs the store's digest key
        return [go, receipt]

    store = shared_store()
    k1 = [AESGCMCodec(keys={"k1": K1}, active="k1")]
    async with durable.Engine(store, registry=reg, codecs=k1) as engine:
        await engine.start(pay, SECRET, id="cd-pay")
        await wait_status(engine, "cd-pay", "waiting")
    # Another key only (a lost or mistyped key): the engine opens, the run it cannot read is blocked.
    async with durable.Engine(store, registry=reg, codecs=[AESGCMCodec(keys={"k9": OTHER}, active="k9")]) as engine:
        async def reason() -> str | None:
            # Blocked at warm-up first, then recorded by the claim that follows (a moment's "running").
            record = await engine.describe("cd-pay")
            return record.blocked_reason if record.status == "blocked" else None

        text = await wait_until(reason, what="cd-pay blocked with its reason")
        assert "k1" in text and SECRET not in text
    async with durable.Engine(store, registry=reg, codecs=k1) as engine:  # the key is back
        await engine.signal("cd-pay", "go", "after the fix")
        assert await engine.result("cd-pay", timeout=5) == ["after the fix", "charged 1111"]
