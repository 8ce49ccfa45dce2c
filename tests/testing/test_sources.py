"""The tracer that spots direct reads of the clock and of random sources in workflow code."""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import secrets
import time
import uuid

from durable.testing.sources import Tracer


def _watch(fn) -> list[str]:
    tracer = Tracer()
    with tracer.watching():
        fn()
    return [finding.what for finding in tracer.findings]


def test_clock_and_random_reads_from_user_code_are_found() -> None:
    def workflow_code() -> None:
        time.time()
        time.monotonic()
        dt.datetime.now(dt.timezone.utc)
        dt.date.today()
        random.random()
        random.choice([1, 2])
        uuid.uuid4()
        os.urandom(4)
        secrets.token_hex(2)

    assert _watch(workflow_code) == [
        "time.time()", "time.monotonic()", "datetime.now()", "date.today()", "random.random()",
        "random.choice()", "uuid.uuid4()", "os.urandom()", "secrets.token_hex()",
    ]


def test_time_functions_that_read_the_clock_without_a_time_argument_are_found() -> None:
    def workflow_code() -> None:
        time.localtime()
        time.gmtime(None)
        time.strftime("%H")
        time.ctime()
        time.asctime()
        random.Random().random()
        random.SystemRandom().random()
        time.process_time()

    assert _watch(workflow_code) == [
        "time.localtime() without a time", "time.gmtime() without a time", "time.strftime() without a time",
        "time.ctime() without a time", "time.asctime() without a time", "random.Random() without a seed",
        "random.SystemRandom()", "random.SystemRandom.random()", "time.process_time()",
    ]
    assert time.localtime is _ORIGINAL_LOCALTIME  # unwrapped again


_ORIGINAL_LOCALTIME = time.localtime


def test_time_functions_given_a_time_are_deterministic() -> None:
    def workflow_code() -> None:
        stamp = 1_700_000_000
        time.localtime(stamp)
        time.gmtime(stamp)
        time.strftime("%H", time.gmtime(stamp))
        time.ctime(stamp)
        time.asctime(time.gmtime(stamp))
        random.Random(7).seed(8)

    assert _watch(workflow_code) == []


def test_deterministic_code_and_library_internals_are_left_alone() -> None:
    def workflow_code() -> None:
        random.Random(42).random()  # seeded: deterministic
        uuid.UUID(int=3)
        dt.datetime(2024, 1, 1).isoformat()
        logging.getLogger("tt.quiet").debug("logging reads the clock itself, which is fine")
        sorted([3, 1, 2])

    assert _watch(workflow_code) == []


def test_each_site_is_reported_once_with_its_line_and_advice() -> None:
    tracer = Tracer()
    with tracer.watching():
        for _ in range(3):
            time.time()
    [finding] = tracer.findings
    assert finding.where.startswith("tests/testing/test_sources.py:")
    assert "yield durable.now()" in finding.describe()


def test_the_previous_profiler_is_restored() -> None:
    import sys

    seen = []
    sys.setprofile(lambda *a: seen.append(1))
    try:
        with Tracer().watching():
            pass
        assert sys.getprofile() is not None
    finally:
        sys.setprofile(None)
