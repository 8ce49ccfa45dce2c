"""Serializers (values <-> bytes) and codecs (bytes <-> bytes) for stored payloads."""

from __future__ import annotations

from typing import Any

from .base import Codec, Serializer
from .json import JsonSerializer
from .pickle import PickleSerializer
from .pipeline import Pipeline

__all__ = ["AESGCMCodec", "Codec", "FernetCodec", "JsonSerializer", "PickleSerializer", "Pipeline",
           "Serializer", "ZlibCodec"]


def __getattr__(name: str) -> Any:
    # Codecs load on first use so `import durable` stays fast.
    if name == "AESGCMCodec":
        from .aesgcm import AESGCMCodec

        return AESGCMCodec
    if name == "FernetCodec":
        from .fernet import FernetCodec

        return FernetCodec
    if name == "ZlibCodec":
        from .zlib import ZlibCodec

        return ZlibCodec
    raise AttributeError(f"module 'durable.codecs' has no attribute {name!r}")
