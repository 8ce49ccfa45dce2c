"""@workflow and @activity, as DESIGN.md 'Decorators' describes them."""

from __future__ import annotations

import asyncio
import inspect

import pytest

import durable
from durable import activity, call, workflow

from .conftest import memory_engine


# --- module-level definitions (their default names are module:qualname) ---


@workflow
def dec_bare_default():
    yield durable.uuid()
    return "bare"


@workflow(name="api.decorators.named")
def dec_named():
    yield durable.uuid()
    return "named"


@workflow()
def dec_called_no_args():
    yield durable.uuid()
    return "called"


@activity
def dec_plain_add(a: int, b: int = 1) -> int:
    """Add two numbers."""
    return a + b


@activity(name="api.decorators.mul")
def dec_named_mul(a: int, b: int) -> int:
    return a * b


@activity(retry=durable.Retry(attempts=2, initial=0.01), timeout=5)
async def dec_async_sub(a: int, b: int) -> int:
    return a - b


@activity()
def dec_called_activity() -> str:
    return "ok"


def test_bare_workflow_registers_in_default_registry_under_module_qualname() -> None:
    assert f"{__name__}:dec_bare_default" in durable.default_registry.names()


def test_called_workflow_without_arguments_uses_default_name() -> None:
    assert f"{__name__}:dec_called_no_args" in durable.default_registry.names()


def test_workflow_name_argument_is_the_registered_name() -> None:
    names = durable.default_registry.names()
    assert "api.decorators.named" in names
    assert f"{__name__}:dec_named" not in names


def test_registry_workflow_default_name_is_module_qualname_of_nested_function() -> None:
    reg = durable.Registry()

    @reg.workflow
    def shipping():
        yield durable.uuid()

    assert reg.names() == frozenset(
        {f"{__name__}:test_registry_workflow_default_name_is_module_qualname_of_nested_function.<locals>.shipping"}
    )


async def test_default_registry_workflows_run_on_an_engine_without_registry_argument() -> None:
    async with durable.Engine("memory:") as engine:
        h1 = await engine.start(dec_bare_default, id="dec-default-1")
        h2 = await engine.start(dec_named, id="dec-default-2")
        h3 = await engine.start(dec_called_no_args, id="dec-default-3")
        assert await h1.result(timeout=2) == "bare"
        assert await h2.result(timeout=2) == "named"
        assert await h3.result(timeout=2) == "called"


def _plain(x):  # not a generator
    return x


async def _coroutine(x):  # a coroutine function is not a generator either
    return x


@pytest.mark.parametrize("fn", [_plain, _coroutine, lambda: 1], ids=["plain", "async", "lambda"])
def test_bare_workflow_on_non_generator_is_typeerror_at_decoration(fn) -> None:
    reg = durable.Registry()
    with pytest.raises(TypeError) as info:
        reg.workflow(fn)
    assert fn.__name__ in str(info.value)
    assert reg.names() == frozenset()


@pytest.mark.parametrize("fn", [_plain, _coroutine], ids=["plain", "async"])
def test_called_workflow_on_non_generator_is_typeerror_at_decoration(fn) -> None:
    with pytest.raises(TypeError) as info:
        workflow(name="api.decorators.never-registered")(fn)
    assert fn.__name__ in str(info.value)
    assert "api.decorators.never-registered" not in durable.default_registry.names()


def test_module_level_workflow_decorator_rejects_non_generator() -> None:
    with pytest.raises(TypeError):
        workflow(_plain)


def test_second_different_function_under_a_workflow_name_is_valueerror_naming_both() -> None:
    reg = durable.Registry()

    @reg.workflow(name="dup")
    def first_impl():
        yield durable.uuid()

    def second_impl():
        yield durable.now()

    with pytest.raises(ValueError) as info:
        reg.workflow(name="dup")(second_impl)
    message = str(info.value)
    assert "first_impl" in message
    assert "second_impl" in message
    assert reg.names() == frozenset({"dup"})


def test_second_different_function_under_a_name_in_default_registry_is_valueerror() -> None:
    @workflow(name="api.decorators.dup-default")
    def original_billing():
        yield durable.uuid()

    def impostor_billing():
        yield durable.uuid()

    with pytest.raises(ValueError) as info:
        workflow(name="api.decorators.dup-default")(impostor_billing)
    assert "original_billing" in str(info.value)
    assert "impostor_billing" in str(info.value)


def test_calling_a_sync_activity_directly_calls_the_plain_function() -> None:
    assert dec_plain_add(2, 3) == 5
    assert dec_plain_add(2) == 3
    assert dec_named_mul(4, b=5) == 20
    assert dec_called_activity() == "ok"


def test_calling_an_async_activity_directly_returns_the_plain_coroutine() -> None:
    result = dec_async_sub(10, 4)
    assert inspect.iscoroutine(result)
    assert asyncio.run(result) == 6


def test_activity_exceptions_propagate_when_called_directly() -> None:
    @activity
    def explode() -> None:
        raise KeyError("direct")

    with pytest.raises(KeyError):
        explode()


def test_activity_on_async_and_sync_functions_both_accepted() -> None:
    @activity
    def s() -> int:
        return 1

    @activity(name="x")
    async def a() -> int:
        return 2

    assert s() == 1
    assert asyncio.run(a()) == 2


reg = durable.Registry()


@reg.workflow(name="api.decorators.calls")
def calls_both():
    a = yield call(dec_plain_add, 1, 2)
    b = yield call(dec_named_mul, 3, 4)
    c = yield call(dec_async_sub, 9, b=1)
    return [a, b, c]


async def test_activity_names_are_what_the_journal_records() -> None:
    async with memory_engine(reg) as engine:
        handle = await engine.start(calls_both, id="dec-names")
        assert await handle.result(timeout=2) == [3, 12, 8]
        entries = await engine.journal("dec-names")
    assert [(e.kind, e.name, e.value) for e in entries] == [
        ("call", f"{__name__}:dec_plain_add", 3),
        ("call", "api.decorators.mul", 12),
        ("call", f"{__name__}:dec_async_sub", 8),
    ]


def test_decorators_preserve_signature_and_docstring() -> None:
    # STYLE.md: "decorators preserve signatures".
    params = list(inspect.signature(dec_plain_add).parameters)
    assert params == ["a", "b"]
    assert dec_plain_add.__doc__ == "Add two numbers."
    assert dec_plain_add.__name__ == "dec_plain_add"


def test_activity_timeout_takes_seconds_or_a_timedelta_like_sleep() -> None:
    from datetime import timedelta

    assert durable.activity(timeout=timedelta(minutes=2))(lambda: None).timeout == 120.0
    assert durable.activity(timeout=1.5)(lambda: None).timeout == 1.5
    for bad in (0, timedelta(0)):
        with pytest.raises(ValueError, match="timeout"):
            durable.activity(timeout=bad)(lambda: None)
    for wrong in (True, "5"):
        with pytest.raises(TypeError, match="timedelta"):
            durable.activity(timeout=wrong)(lambda: None)
