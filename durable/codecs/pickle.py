"""An opt-in serializer for values JSON cannot hold, on cloudpickle."""

from __future__ import annotations

import io
import pickle
from typing import Any

import cloudpickle

from ..errors import SerializationError

__all__ = ["PickleSerializer"]


class _CanonicalPickler(cloudpickle.Pickler):
    """cloudpickle with every set and frozenset written in one order, whatever the hash seed.

    The bytes are for digests only and are never unpickled: a set is written
    as a persistent id naming its type and its items sorted by their own
    canonical pickles. Anything else is pickled exactly as cloudpickle does.
    """

    def persistent_id(self, obj: Any) -> Any:
        t = type(obj)
        if (t is set or t is frozenset) and len(obj) > 1:
            items = list(obj)
            keys = [_canonical(item, self.proto) for item in items]
            return (t.__name__, [items[i] for i in sorted(range(len(items)), key=keys.__getitem__)])
        return None


def _canonical(value: Any, protocol: int) -> bytes:
    with io.BytesIO() as file:
        _CanonicalPickler(file, protocol=protocol).dump(value)
        return file.getvalue()


class PickleSerializer:
    """cloudpickle: any picklable value, including lambdas and local classes.

    Opt-in, not the default: a pickle payload runs code when decoded, so use
    it only with a store nobody else can write to, or under an encrypting
    codec (which authenticates every payload before it is unpickled).

    Argument digests hash JSON's canonical bytes when JSON takes the
    arguments, else these pickles with sets sorted (`canonical`): such digests
    are only as stable as the pickles, so an object whose pickled state
    depends on the process gives digests that do too, and a replay in
    another process may then report nondeterminism.
    """

    id = "p"

    def __init__(self, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        self.protocol = protocol

    def encode(self, value: Any) -> bytes:
        try:
            return cloudpickle.dumps(value, protocol=self.protocol)
        except Exception as exc:
            raise _refused(value, exc) from exc

    def canonical(self, value: Any) -> bytes:
        """Bytes for argument digests: `encode`'s, but with sets in an order that does not depend on the hash seed.

        Not decodable. Objects whose pickled state depends on the process in
        other ways still give process-dependent bytes.
        """
        try:
            return _canonical(value, self.protocol)
        except Exception as exc:
            raise _refused(value, exc) from exc

    def decode(self, data: bytes) -> Any:
        try:
            return pickle.loads(data)
        except Exception as exc:
            # The exception's text can quote recorded values: only its class is named.
            raise SerializationError(
                f"PickleSerializer cannot rebuild the recorded value: unpickling raised "
                f"{type(exc).__qualname__} (a class or function it names may have been changed, "
                "moved or removed since it was recorded)"
            ) from exc

    def __repr__(self) -> str:
        return f"PickleSerializer(protocol={self.protocol})"


def _refused(value: Any, exc: Exception) -> SerializationError:
    kind = type(value).__qualname__
    # The exception's text can quote the value (a repr): only its class is named.
    return SerializationError(
        f"PickleSerializer cannot record a value of type {kind}: pickling it raised "
        f"{type(exc).__qualname__} (something it holds cannot be pickled: a lock, a file, "
        "a generator, a connection?)",
        type_name=kind,
    )
