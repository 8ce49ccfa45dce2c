"""What this checkout of durable offers yet: stores and codecs land one by one.

Each probe returns `(thing, None)` or `(None, reason)`; cases print the
reason in place of a number, so a row starts working the day its part lands.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["aes_codec", "postgres_store", "sqlite_store"]


def sqlite_store() -> tuple[Any, str | None]:
    try:
        from durable.store.sqlite import SQLiteStore
    except Exception as exc:  # ImportError while it is being written, or a half-written module
        return None, f"skipped: durable.store.sqlite not available yet ({type(exc).__name__}: {exc})"
    return SQLiteStore, None


def postgres_store() -> tuple[Any, str | None]:
    try:
        from durable.store.postgres import PostgresStore
    except Exception as exc:
        return None, f"not yet available: durable.store.postgres ({type(exc).__name__})"
    return PostgresStore, None


def aes_codec(key: bytes | None = None) -> tuple[Any, str | None]:
    """An AESGCMCodec with one fresh 256-bit key, or why there is none."""
    try:
        from durable.codecs import AESGCMCodec
    except Exception as exc:
        return None, f"skipped: durable.codecs.AESGCMCodec not available yet ({type(exc).__name__})"
    return AESGCMCodec(keys={"k1": key or os.urandom(32)}, active="k1"), None
