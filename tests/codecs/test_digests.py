"""Argument digests: equal calls give equal digests in every process, however they are spelled."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types

import cloudpickle
import pytest

from durable.codecs import (
    AESGCMCodec,
    Codec,
    JsonSerializer,
    PickleSerializer,
    Pipeline,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Prints one digest per line for arguments holding sets of strings, whose
# iteration order follows the hash seed.
SCRIPT = textwrap.dedent("""
    import types
    from durable.codecs import JsonSerializer, PickleSerializer, Pipeline
    tags = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"}
    cases = [
        (tags,),                                     # JSON takes it
        (tags, 1j),                                  # JSON refuses the complex: pickled
        (types.SimpleNamespace(tags=tags, nested=frozenset({frozenset(tags), "x"})),),
    ]
    for pipeline in (Pipeline(JsonSerializer()), Pipeline(PickleSerializer())):
        for args in cases[:1] if pipeline.serializer.id == "j" else cases:
            print(pipeline.digest(args, {"by": tags}).hex())
    print(JsonSerializer().encode([tags, frozenset(tags)]).hex())
""")


def digests_with_hash_seed(seed: str) -> list[str]:
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": ROOT}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_digests_of_sets_do_not_depend_on_the_hash_seed() -> None:
    first = digests_with_hash_seed("1")
    assert len(first) == 5
    for seed in ("2", "3", "4"):
        assert digests_with_hash_seed(seed) == first


@pytest.mark.parametrize("serializer", [JsonSerializer(), PickleSerializer()], ids=["json", "pickle"])
@pytest.mark.parametrize("codecs", [[], [AESGCMCodec(keys={"k": bytes(32)}, active="k")]], ids=["plain", "keyed"])
def test_keyword_arguments_count_by_name_not_order(serializer, codecs) -> None:
    pipeline = Pipeline(serializer, codecs)
    pipeline.set_digest_key(b"k" * 32)
    for a in ("order-17", 1j):  # JSON path and pickle path
        if a == 1j and serializer.id == "j":
            continue
        xy = pipeline.digest((a,), {"x": 1, "y": [2]}, workflow_id="w")
        yx = pipeline.digest((a,), {"y": [2], "x": 1}, workflow_id="w")
        assert xy == yx
        assert pipeline.digest((a,), {"x": [2], "y": 1}, workflow_id="w") != xy


def test_canonical_pickles_are_cloudpickles_when_no_set_is_involved() -> None:
    # Digests recorded for pickled arguments without sets keep their bytes.
    ser = PickleSerializer()
    value = ((1j, types.SimpleNamespace(a=[1, {"k": (2, b"x")}]), frozenset({"only"})), {"k": None})
    assert ser.canonical(value) == cloudpickle.dumps(value, protocol=ser.protocol)


def test_the_codec_protocol_says_an_encrypting_codec_must_set_secret() -> None:
    doc = " ".join(Codec.__doc__.split())
    assert "An encrypting codec MUST set the class attribute `secret = True`" in doc
    assert "16 bytes or less" in doc and "keyed" in doc
