"""An opt-in serializer for values JSON cannot hold, on cloudpickle."""

from __future__ import annotations

import pickle
from typing import Any

import cloudpickle

from ..errors import SerializationError

__all__ = ["PickleSerializer"]


class PickleSerializer:
    """cloudpickle: any picklable value, including lambdas and local classes.

    Opt-in, not the default: a pickle payload runs code when decoded, so use
    it only with a store nobody else can write to, or under an encrypting
    codec (which authenticates every payload before it is unpickled).
    """

    id = "p"

    def __init__(self, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        self.protocol = protocol

    def encode(self, value: Any) -> bytes:
        try:
            return cloudpickle.dumps(value, protocol=self.protocol)
        except Exception as exc:
            kind = type(value).__qualname__
            raise SerializationError(
                f"PickleSerializer cannot record a value of type {kind}: {exc}", type_name=kind
            ) from None

    def decode(self, data: bytes) -> Any:
        try:
            return pickle.loads(data)
        except Exception as exc:
            raise SerializationError(f"PickleSerializer cannot decode this payload: {exc}") from None

    def __repr__(self) -> str:
        return f"PickleSerializer(protocol={self.protocol})"
