"""Errors and what goes wrong — DESIGN.md 'Errors', 'What goes wrong, and what happens then'."""

from __future__ import annotations

import pickle
import re

import pytest

import durable
from durable import Retry, activity, call, receive

from .conftest import journal_keys, memory_engine, wait_status

reg = durable.Registry()
LOG: list = []

ERRORS = [
    "NondeterminismError",
    "ActivityError",
    "ChildWorkflowError",
    "WorkflowFailedError",
    "WorkflowNotFoundError",
    "WorkflowExistsError",
    "WorkflowClosedError",
    "Timeout",
    "SerializationError",
    "CodecError",
]


class Declined(Exception):
    pass


class Unpicklable:
    def __repr__(self) -> str:
        return "<Unpicklable>"


@pytest.fixture(autouse=True)
def _reset():
    LOG.clear()
    yield


@activity(name="er.declined", retry=Retry(attempts=2, initial=0.01))
def declined(card):
    LOG.append(card)
    raise Declined(f"card {card} declined")


@activity(name="er.unserializable", retry=Retry(attempts=5, initial=0.01))
def unserializable():
    LOG.append("called")
    return Unpicklable()


@activity(name="er.big", retry=Retry(attempts=3, initial=0.01))
def big(n):
    LOG.append("big")
    return "x" * n


@reg.workflow(name="er.charge")
def wf_charge(card):
    return (yield call(declined, card))


@reg.workflow(name="er.catch-charge")
def wf_catch_charge(card):
    try:
        yield call(declined, card)
    except durable.ActivityError as e:
        return [e.type, e.message, e.attempts, type(e.cause).__name__, list(e.cause.args)]
    return "no error"


@reg.workflow(name="er.unserializable-result")
def wf_unserializable_result():
    try:
        yield call(unserializable)
    except durable.ActivityError as e:
        return ["ActivityError", e.attempts, type(e.cause).__name__]
    return "no error"


@reg.workflow(name="er.unserializable-return")
def wf_unserializable_return():
    yield durable.uuid()
    return Unpicklable()


@reg.workflow(name="er.raise")
def wf_raise():
    yield durable.uuid()
    raise Declined("workflow-level failure")


@reg.workflow(name="er.wait")
def wf_wait():
    return (yield receive("go"))


@reg.workflow(name="er.return-big")
def wf_return_big(n):
    yield durable.uuid()
    return "y" * n


@reg.workflow(name="er.activity-big")
def wf_activity_big(n):
    try:
        return (yield call(big, n))
    except durable.ActivityError as e:
        return ["ActivityError", e.attempts, type(e.cause).__name__]


# ---------------------------------------------------------------- hierarchy


@pytest.mark.parametrize("name", ERRORS)
def test_every_error_subclasses_durableerror(name) -> None:
    assert issubclass(getattr(durable, name), durable.DurableError)


def test_durableerror_is_an_exception() -> None:
    assert issubclass(durable.DurableError, Exception)


def test_cancelled_derives_from_baseexception_not_exception() -> None:
    assert issubclass(durable.Cancelled, BaseException)
    assert not issubclass(durable.Cancelled, Exception)


@pytest.mark.parametrize("name", [n for n in ERRORS if n != "Timeout"])
def test_error_class_names_end_in_error(name) -> None:
    assert name.endswith("Error")


# ---------------------------------------------------------------- fields, from a real run


async def test_activityerror_fields_type_message_attempts_cause() -> None:
    async with memory_engine(reg) as engine:
        got = await (await engine.start(wf_catch_charge, "4242", id="er-fields")).result(timeout=2)
    type_name, message, attempts, cause_type, cause_args = got
    assert type_name in {f"{__name__}.Declined", f"{__name__}:Declined"}
    assert message == "card 4242 declined"
    assert attempts == 2
    assert cause_type == "Declined"
    assert cause_args == ["card 4242 declined"]
    assert LOG == ["4242", "4242"]


async def test_workflowfailederror_has_the_cause_and_errors_survive_pickling() -> None:
    async with memory_engine(reg) as engine:
        with pytest.raises(durable.WorkflowFailedError) as failed:
            await (await engine.start(wf_charge, "1", id="er-pickle-1")).result(timeout=2)
        with pytest.raises(durable.WorkflowFailedError) as raised:
            await (await engine.start(wf_raise, id="er-pickle-2")).result(timeout=2)
        with pytest.raises(durable.WorkflowNotFoundError) as not_found:
            await engine.status("er-missing")
        await engine.start(wf_wait, id="er-pickle-3")
        with pytest.raises(durable.WorkflowExistsError) as exists:
            await engine.start(wf_raise, id="er-pickle-3")
        await engine.signal("er-pickle-3", "go", 1)
        await engine.result("er-pickle-3", timeout=2)
        with pytest.raises(durable.WorkflowClosedError) as closed:
            await engine.signal("er-pickle-3", "go", 2)
        await engine.start(wf_wait, id="er-pickle-4")
        await wait_status(engine, "er-pickle-4", "waiting")
        await engine.cancel("er-pickle-4")
        with pytest.raises(durable.Cancelled) as cancelled:
            await engine.result("er-pickle-4", timeout=2)

    assert type(raised.value.cause) is Declined
    assert raised.value.cause.args == ("workflow-level failure",)
    activity_error = failed.value.cause
    assert isinstance(activity_error, durable.ActivityError)

    for err in [failed.value, raised.value, activity_error, not_found.value, exists.value, closed.value, cancelled.value]:
        again = pickle.loads(pickle.dumps(err))
        assert type(again) is type(err)
        assert str(again) == str(err)
    again = pickle.loads(pickle.dumps(activity_error))
    assert (again.type, again.message, again.attempts) == (
        activity_error.type,
        activity_error.message,
        activity_error.attempts,
    )
    assert type(again.cause) is Declined
    assert type(pickle.loads(pickle.dumps(raised.value)).cause) is Declined


def test_errors_built_by_hand_survive_pickling() -> None:
    samples = [
        durable.Timeout(),
        durable.Cancelled(),
        durable.SerializationError("too big"),
        durable.CodecError("bad tag", key_id="k1"),
        durable.WorkflowNotFoundError("wf-1"),
    ]
    for err in samples:
        again = pickle.loads(pickle.dumps(err))
        assert type(again) is type(err)
        assert str(again) == str(err)
    assert pickle.loads(pickle.dumps(samples[3])).key_id == "k1"


# ---------------------------------------------------------------- serialization failures


async def test_unserializable_activity_result_is_activityerror_with_serializationerror_cause_no_retry() -> None:
    async with memory_engine(reg) as engine:
        got = await (await engine.start(wf_unserializable_result, id="er-unser-act")).result(timeout=2)
    assert got == ["ActivityError", 1, "SerializationError"]
    assert LOG == ["called"]


async def test_unserializable_workflow_return_fails_with_serializationerror_cause() -> None:
    async with memory_engine(reg) as engine:
        with pytest.raises(durable.WorkflowFailedError) as info:
            await (await engine.start(wf_unserializable_return, id="er-unser-ret")).result(timeout=2)
        assert await engine.status("er-unser-ret") == "failed"
    assert isinstance(info.value.cause, durable.SerializationError)


async def test_unserializable_start_argument_is_refused_at_start() -> None:
    async with memory_engine(reg) as engine:
        with pytest.raises(durable.SerializationError):
            await engine.start(wf_return_big, Unpicklable(), id="er-unser-arg")
        with pytest.raises(durable.WorkflowNotFoundError):
            await engine.status("er-unser-arg")


async def test_unserializable_signal_payload_is_refused_at_signal() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_wait, id="er-unser-sig")
        with pytest.raises(durable.SerializationError):
            await engine.signal("er-unser-sig", "go", Unpicklable())
        await engine.signal("er-unser-sig", "go", "fine")
        assert await engine.result("er-unser-sig", timeout=2) == "fine"


@pytest.mark.parametrize("payload", ["\ud800", ["ok", "\udfff"]], ids=["lone surrogate", "nested surrogate"])
async def test_unencodable_string_payload_is_refused_with_serializationerror(payload) -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_wait, id="er-surrogate")
        with pytest.raises(durable.SerializationError):
            await engine.signal("er-surrogate", "go", payload)
        with pytest.raises(durable.SerializationError):
            await engine.start(wf_return_big, payload, id="er-surrogate-start")


@activity(name="er.surrogate", retry=Retry(attempts=3, initial=0.01))
def surrogate_result():
    LOG.append("surrogate")
    return "\ud800"


@reg.workflow(name="er.surrogate-activity")
def wf_surrogate_activity():
    try:
        yield call(surrogate_result)
    except durable.ActivityError as e:
        return ["ActivityError", e.attempts, type(e.cause).__name__]
    return "no error"


@reg.workflow(name="er.surrogate-return")
def wf_surrogate_return():
    yield durable.uuid()
    return "\udfff"


async def test_activity_result_with_lone_surrogate_is_activityerror_with_serializationerror_no_retry() -> None:
    async with memory_engine(reg) as engine:
        got = await (await engine.start(wf_surrogate_activity, id="er-sur-act")).result(timeout=1)
    assert got == ["ActivityError", 1, "SerializationError"]
    assert LOG == ["surrogate"]


async def test_workflow_returning_a_lone_surrogate_fails_with_serializationerror() -> None:
    async with memory_engine(reg) as engine:
        with pytest.raises(durable.WorkflowFailedError) as info:
            await (await engine.start(wf_surrogate_return, id="er-sur-ret")).result(timeout=1)
        assert await engine.status("er-sur-ret") == "failed"
    assert isinstance(info.value.cause, durable.SerializationError)


# ---------------------------------------------------------------- payload limit


def _names_size_and_limit(err: BaseException, limit: int) -> bool:
    text = str(err).replace(",", "").replace("_", "")
    numbers = [int(n) for n in re.findall(r"\d+", text)]
    return limit in numbers and any(n > limit for n in numbers)


async def test_signal_over_the_payload_limit_names_size_and_limit_and_writes_nothing() -> None:
    async with memory_engine(reg, max_payload=1000) as engine:
        await engine.start(wf_wait, id="er-limit-sig")
        await wait_status(engine, "er-limit-sig", "waiting")
        before = journal_keys(await engine.journal("er-limit-sig"))
        with pytest.raises(durable.SerializationError) as info:
            await engine.signal("er-limit-sig", "go", "z" * 5000)
        assert _names_size_and_limit(info.value, 1000), str(info.value)
        assert journal_keys(await engine.journal("er-limit-sig")) == before
        await engine.signal("er-limit-sig", "go", "small")
        assert await engine.result("er-limit-sig", timeout=2) == "small"


async def test_start_over_the_payload_limit_creates_nothing() -> None:
    async with memory_engine(reg, max_payload=1000) as engine:
        with pytest.raises(durable.SerializationError) as info:
            await engine.start(wf_return_big, "z" * 5000, id="er-limit-start")
        assert _names_size_and_limit(info.value, 1000), str(info.value)
        with pytest.raises(durable.WorkflowNotFoundError):
            await engine.status("er-limit-start")


async def test_workflow_return_over_the_payload_limit_fails_it() -> None:
    async with memory_engine(reg, max_payload=1000) as engine:
        with pytest.raises(durable.WorkflowFailedError) as info:
            await (await engine.start(wf_return_big, 5000, id="er-limit-ret")).result(timeout=2)
    assert isinstance(info.value.cause, durable.SerializationError)
    assert _names_size_and_limit(info.value.cause, 1000), str(info.value.cause)


async def test_activity_result_over_the_payload_limit_is_activityerror_without_retry() -> None:
    async with memory_engine(reg, max_payload=1000) as engine:
        got = await (await engine.start(wf_activity_big, 5000, id="er-limit-act")).result(timeout=2)
    assert got == ["ActivityError", 1, "SerializationError"]
    assert LOG == ["big"]


async def test_default_payload_limit_is_a_few_mib() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_wait, id="er-limit-default")
        await engine.signal("er-limit-default", "go", "a" * (512 * 1024))  # well under a few MiB
        with pytest.raises(durable.SerializationError):
            await engine.signal("er-limit-default", "go", "b" * (64 * 1024 * 1024))
        assert await engine.result("er-limit-default", timeout=2) == "a" * (512 * 1024)


# ---------------------------------------------------------------- hostile ids and names

HOSTILE = {
    "quotes": "o'rder\"; DROP TABLE workflows; --",
    "nul": "a\x00b",
    "rtl": "\u202eשלום\u202c-مرحبا",
    "emoji-newline": "🦆\n\t\r\\%_*",
}


@pytest.mark.parametrize("kind", list(HOSTILE))
async def test_hostile_ids_and_signal_names_are_stored_and_read_back_exactly(kind) -> None:
    text = HOSTILE[kind]

    local = durable.Registry()

    @local.workflow(name=f"er.hostile.{text}")
    def hostile_wf(signal_name):
        return (yield receive(signal_name))

    async with memory_engine(local) as engine:
        await engine.start(hostile_wf, text, id=text)
        await wait_status(engine, text, "waiting")
        await engine.signal(text, text, text)
        assert await engine.result(text, timeout=2) == text
        [entry] = await engine.journal(text)
        assert (entry.kind, entry.name, entry.value) == ("receive", text, text)
        with pytest.raises(durable.WorkflowNotFoundError):
            await engine.status(text + "x")


@activity(name="er.hostile-activity \"'\x00\u202e")
def hostile_activity():
    return "ok"


@reg.workflow(name="er.hostile-activity")
def wf_hostile_activity():
    return (yield call(hostile_activity))


async def test_hostile_activity_name_is_recorded_exactly() -> None:
    async with memory_engine(reg) as engine:
        assert await (await engine.start(wf_hostile_activity, id="er-hostile-act")).result(timeout=2) == "ok"
        [entry] = await engine.journal("er-hostile-act")
    assert entry.name == "er.hostile-activity \"'\x00\u202e"


TEN_KB = 10_240


def _refused_by_a_stated_limit(exc: BaseException) -> None:
    text = str(exc).lower()
    assert "limit" in text and re.search(r"\d", text), str(exc)


async def test_ten_kilobyte_id_is_stored_exactly_or_refused_by_a_stated_limit() -> None:
    long_id = "i" * (TEN_KB - 1) + "\u05d0"
    async with memory_engine(reg) as engine:
        try:
            await engine.start(wf_wait, id=long_id)
        except (ValueError, durable.DurableError) as e:
            _refused_by_a_stated_limit(e)
            with pytest.raises(durable.WorkflowNotFoundError):
                await engine.status(long_id)
            return
        await wait_status(engine, long_id, "waiting")
        await engine.signal(long_id, "go", "long")
        assert await engine.result(long_id, timeout=2) == "long"
        with pytest.raises(durable.WorkflowNotFoundError):
            await engine.status(long_id[:-1])


async def test_ten_kilobyte_signal_name_is_stored_exactly_or_refused_by_a_stated_limit() -> None:
    long_name = "n" * TEN_KB
    local = durable.Registry()

    @local.workflow(name="er.long-signal")
    def long_signal():
        return (yield receive(long_name))

    async with memory_engine(local) as engine:
        await engine.start(long_signal, id="er-long-signal")
        try:
            await engine.signal("er-long-signal", long_name, 1)
        except (ValueError, durable.DurableError) as e:
            _refused_by_a_stated_limit(e)
            return
        assert await engine.result("er-long-signal", timeout=2) == 1
        [entry] = await engine.journal("er-long-signal")
        assert entry.name == long_name


async def test_ten_kilobyte_activity_name_is_stored_exactly_or_refused_by_a_stated_limit() -> None:
    long_name = "a" * TEN_KB
    try:

        @activity(name=long_name)
        def long_named():
            return "ran"

    except (ValueError, durable.DurableError) as e:
        _refused_by_a_stated_limit(e)
        return
    local = durable.Registry()

    @local.workflow(name="er.long-activity")
    def wf():
        try:
            return (yield call(long_named))
        except (ValueError, durable.DurableError) as e:
            return ["refused", str(e)]

    async with memory_engine(local) as engine:
        got = await (await engine.start(wf, id="er-long-activity")).result(timeout=2)
        if got != "ran":
            _refused_by_a_stated_limit(Exception(got[1]))
            return
        [entry] = await engine.journal("er-long-activity")
    assert entry.name == long_name


async def test_ten_kilobyte_workflow_name_is_stored_exactly_or_refused_by_a_stated_limit() -> None:
    long_name = "w" * TEN_KB
    local = durable.Registry()
    try:

        @local.workflow(name=long_name)
        def wf():
            yield durable.uuid()
            return "ran"

    except (ValueError, durable.DurableError) as e:
        _refused_by_a_stated_limit(e)
        return
    async with memory_engine(local) as engine:
        try:
            handle = await engine.start(wf, id="er-long-wf-name")
        except (ValueError, durable.DurableError) as e:
            _refused_by_a_stated_limit(e)
            with pytest.raises(durable.WorkflowNotFoundError):
                await engine.status("er-long-wf-name")
            return
        assert await handle.result(timeout=2) == "ran"


# ---------------------------------------------------------------- awkward exceptions


class TwoArgError(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a}-{b}")


@activity(name="er.awkward", retry=Retry(attempts=1))
def awkward(kind):
    if kind == "opaque-arg":
        raise ValueError(Opaque())
    if kind == "two-arg":
        raise TwoArgError("x", "y")
    raise RuntimeError(kind)


class Opaque:
    def __str__(self) -> str:
        return "opaque thing"


@reg.workflow(name="er.awkward-activity")
def wf_awkward_activity(kind):
    try:
        yield call(awkward, kind)
    except durable.ActivityError as e:
        return [e.type.rsplit(".", 1)[-1].rsplit(":", 1)[-1], e.message, e.attempts]
    return "no error"


@reg.workflow(name="er.awkward-raise")
def wf_awkward_raise(kind):
    yield durable.uuid()
    if kind == "opaque-arg":
        raise ValueError(Opaque())
    raise TwoArgError("p", "q")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("opaque-arg", ["ValueError", "opaque thing", 1]), ("two-arg", ["TwoArgError", "x-y", 1])],
)
async def test_activity_exceptions_that_are_awkward_to_rebuild_still_reach_the_workflow(kind, expected) -> None:
    async with memory_engine(reg) as engine:
        got = await (await engine.start(wf_awkward_activity, kind, id=f"er-awk-{kind}")).result(timeout=2)
    assert got == expected


@pytest.mark.parametrize("kind", ["opaque-arg", "two-arg"])
async def test_workflow_exceptions_that_are_awkward_to_rebuild_still_fail_the_workflow(kind) -> None:
    async with memory_engine(reg) as engine:
        with pytest.raises(durable.WorkflowFailedError) as info:
            await (await engine.start(wf_awkward_raise, kind, id=f"er-awk-raise-{kind}")).result(timeout=2)
        assert await engine.status(f"er-awk-raise-{kind}") == "failed"
    cause = info.value.cause
    assert cause is None or type(cause).__name__ in {"ValueError", "TwoArgError"}


# ---------------------------------------------------------------- public names, unreadable messages


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken")


@activity(name="er.unprintable", retry=Retry(attempts=2, initial=0.01))
def unprintable():
    LOG.append("unprintable")
    raise Unprintable()


@reg.workflow(name="er.unprintable-activity")
def wf_unprintable_activity():
    try:
        yield call(unprintable)
    except durable.ActivityError as e:
        return [e.type.rsplit(".", 1)[-1], e.message, e.attempts]
    return "no error"


@reg.workflow(name="er.unprintable-raise")
def wf_unprintable_raise():
    yield durable.uuid()
    raise Unprintable()


@reg.workflow(name="er.big-result")
def wf_big_result(n):
    try:
        yield call(big, n)
    except durable.ActivityError as e:
        return e.type


async def test_an_exception_whose_str_raises_is_recorded_as_a_failure_with_a_placeholder() -> None:
    async with memory_engine(reg) as engine:
        got = await (await engine.start(wf_unprintable_activity, id="er-unprintable")).result(timeout=3)
        assert await engine.status("er-unprintable") == "completed"
        with pytest.raises(durable.WorkflowFailedError) as info:
            await (await engine.start(wf_unprintable_raise, id="er-unprintable-raise")).result(timeout=3)
        assert await engine.status("er-unprintable-raise") == "failed"
    name, message, attempts = got
    assert (name, attempts) == ("Unprintable", 2)  # retried like any failure, then given up
    assert "could not be read" in message and "RuntimeError" in message
    assert LOG == ["unprintable", "unprintable"]
    assert info.value.type.endswith("Unprintable") and "could not be read" in info.value.message


def test_durables_own_exceptions_are_described_by_their_public_name() -> None:
    from durable.errors import describe_type

    assert describe_type(durable.Timeout("t")) == "durable.Timeout"
    assert describe_type(durable.SerializationError) == "durable.SerializationError"
    assert describe_type(durable.Cancelled) == "durable.Cancelled"
    assert describe_type(ValueError) == "ValueError"
    assert describe_type(Declined) == f"{__name__}.Declined"


async def test_activity_error_type_of_a_durable_failure_is_the_public_name_and_rebuilds() -> None:
    async with memory_engine(reg, max_payload=1000) as engine:
        got = await (await engine.start(wf_big_result, 5000, id="er-public-type")).result(timeout=3)
        journal = await engine.journal("er-public-type")
    assert got == "durable.SerializationError"
    assert isinstance(journal[0].value.cause, durable.SerializationError)  # rebuilt from the public name
