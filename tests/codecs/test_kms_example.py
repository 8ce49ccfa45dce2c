"""examples/kms_codec.py runs, and its codec refuses what it cannot authenticate."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from durable import CodecError
from durable.codecs import Pipeline

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kms_codec.py"


def test_the_kms_example_runs() -> None:
    done = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "charged 4200 cents to card ending 1111" in out
    assert "card in clear: False" in out and "card in clear: True" not in out
    assert "KMS unwrap calls: 1" in out
    assert "without the KMS: CodecError" in out


def test_a_tampered_payload_says_why() -> None:
    spec = importlib.util.spec_from_file_location("kms_codec_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    pipeline = Pipeline(codecs=[example.KMSCodec(example.LocalKMS())])
    payload = bytearray(pipeline.dump("4111-1111-1111-1111", b"here"))
    payload[-1] ^= 1
    with pytest.raises(CodecError) as tampered:
        pipeline.load(bytes(payload), b"here")
    message = str(tampered.value)
    assert "tampered" in message and not message.rstrip().endswith(":")
    assert "4111" not in message and tampered.value.key_id
