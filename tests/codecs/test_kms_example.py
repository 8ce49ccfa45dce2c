"""examples/kms_codec.py runs, and its codec refuses what it cannot authenticate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kms_codec.py"


def test_the_kms_example_runs() -> None:
    done = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "charged 4200 cents to card ending 1111" in out
    assert "card in clear: False" in out and "card in clear: True" not in out
    assert "KMS unwrap calls: 1" in out
    assert "without the KMS: CodecError" in out
