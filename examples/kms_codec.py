"""A KMS-backed codec: envelope encryption in a few lines.

A codec is a small class with an `id`, `encode(data, context)` and
`decode(data, context)`. This one asks a KMS for a data key once per
process, encrypts every payload locally with it (AES-256-GCM, the context as
associated data) and stores the *wrapped* data key in each payload, so any
process that may call the KMS can read it back. The KMS is simulated by a
local class; swap in boto3's `kms.generate_data_key` / `kms.decrypt` (or
your cloud's equivalent) for real use.

    python examples/kms_codec.py
"""

from __future__ import annotations

import asyncio
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import durable
from durable import CodecError, activity, call, workflow
from durable.store import MemoryStore


class LocalKMS:
    """Stands in for a cloud KMS: its master key never leaves this object."""

    def __init__(self) -> None:
        self._master = AESGCM(AESGCM.generate_key(bit_length=256))
        self.unwraps = 0

    def generate_data_key(self) -> tuple[bytes, bytes]:
        """A fresh data key, in plain and wrapped under the master key."""
        key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        return key, nonce + self._master.encrypt(nonce, key, b"data key")

    def decrypt(self, wrapped: bytes) -> bytes:
        self.unwraps += 1
        try:
            return self._master.decrypt(wrapped[:12], wrapped[12:], b"data key")
        except InvalidTag:
            raise PermissionError("this KMS cannot unwrap that data key") from None


class KMSCodec:
    """Payload = wrapped data key length (1 byte) | wrapped data key | nonce | ciphertext."""

    id = "kms"
    uses_context = True  # the engine passes workflow id, run, position and kind ...
    secret = True  # ... and keys argument digests, since payloads are hidden

    def __init__(self, kms: LocalKMS) -> None:
        self.kms = kms
        key, self.wrapped = kms.generate_data_key()
        self.cipher = AESGCM(key)
        self.ciphers = {self.wrapped: self.cipher}  # unwrapped data keys: one KMS call each

    def encode(self, data: bytes, context: bytes = b"") -> bytes:
        nonce = os.urandom(12)
        return bytes([len(self.wrapped)]) + self.wrapped + nonce + self.cipher.encrypt(nonce, data, context)

    def decode(self, data: bytes, context: bytes = b"") -> bytes:
        wrapped = data[1 : 1 + data[0]] if data else b""
        key_id = hashlib.sha256(wrapped).hexdigest()[:8]  # names the data key in errors
        try:
            cipher = self.ciphers.get(wrapped)
            if cipher is None:
                cipher = self.ciphers[wrapped] = AESGCM(self.kms.decrypt(wrapped))
            body = data[1 + len(wrapped):]
            return cipher.decrypt(body[:12], body[12:], context)
        except InvalidTag:  # its message is empty: say what it means
            why = "wrong data key, or a payload tampered with, truncated, or moved from another place"
        except (ValueError, PermissionError) as exc:  # a refused unwrap, a damaged header
            why = f"{type(exc).__name__}: {exc}"
        # Raised outside the except blocks, so no InvalidTag rides along as __context__.
        raise CodecError(f"KMSCodec cannot decrypt a payload under data key {key_id!r}: {why}", key_id=key_id)


@activity(name="example.charge")
def charge(card: str, cents: int) -> str:
    return f"charged {cents} cents to card ending {card[-4:]}"


@workflow(name="example.order")
def order(card: str, cents: int):  # type: ignore[no-untyped-def]
    receipt = yield call(charge, card, cents)
    return receipt


async def main() -> None:
    kms, store = LocalKMS(), MemoryStore()
    card = "4111-1111-1111-1111"

    # First process: its own data key.
    async with durable.Engine(store, codecs=[KMSCodec(kms)]) as engine:
        handle = await engine.start(order, card, 4200, id="order-1")
        print(await handle.result(timeout=5))

    # What the store holds: names in clear, payloads sealed.
    async for chunk in store.load("order-1"):
        for entry in chunk:
            print(f"  stored: position {entry.position} {entry.kind}({entry.name}) "
                  f"{len(entry.payload)} bytes, card in clear: {card.encode() in entry.payload}")

    # A later process gets a new data key, and reads the old one's payloads through the KMS.
    async with durable.Engine(store, codecs=[KMSCodec(kms)]) as engine:
        journal = await engine.journal("order-1")
        print("read back by the next process:", [e.value for e in journal])
    print("KMS unwrap calls:", kms.unwraps)

    # Another KMS (another account, a revoked permission) reads nothing: the engine
    # opens, and reading a payload fails with a CodecError naming where.
    async with durable.Engine(store, codecs=[KMSCodec(LocalKMS())]) as engine:
        try:
            await engine.journal("order-1")
        except CodecError as exc:
            print(f"without the KMS: CodecError: {exc}")


if __name__ == "__main__":
    asyncio.run(main())
