"""The names DESIGN.md promises are importable, from the modules it names."""

from __future__ import annotations

import importlib

import pytest

import durable

TOP_LEVEL = [
    # decorators
    "workflow",
    "activity",
    # effects
    "call",
    "sleep",
    "receive",
    "uuid",
    "now",
    "random",
    "gather",
    "race",
    "version",
    "continue_as_new",
    # engine and friends
    "Engine",
    "Retry",
    "activity_info",
    "Entry",
    # errors
    "DurableError",
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
    "Cancelled",
]


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_top_level_name_is_exported(name: str) -> None:
    assert hasattr(durable, name), f"durable.{name} is missing"
    assert name in durable.__all__, f"durable.{name} is not in __all__"


def test_all_is_explicit_and_every_entry_resolves() -> None:
    assert isinstance(durable.__all__, (list, tuple))
    assert len(set(durable.__all__)) == len(durable.__all__)
    missing = [n for n in durable.__all__ if not hasattr(durable, n)]
    assert missing == []


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("durable.codecs", "JsonSerializer"),
        ("durable.codecs", "PickleSerializer"),
        ("durable.codecs", "AESGCMCodec"),
        ("durable.codecs", "FernetCodec"),
        ("durable.codecs", "ZlibCodec"),
        ("durable.store", "MemoryStore"),
        ("durable.store", "SQLiteStore"),
        ("durable.store", "PostgresStore"),
        ("durable.testing", "replay"),
        ("durable.testing", "check"),
    ],
)
def test_submodule_name_is_exported(module: str, name: str) -> None:
    mod = importlib.import_module(module)
    assert getattr(mod, name, None) is not None, f"{module}.{name} is missing"


def test_codecs_and_store_are_subpackages_of_durable() -> None:
    assert importlib.import_module("durable.codecs").__name__ == "durable.codecs"
    assert importlib.import_module("durable.store").__name__ == "durable.store"


def test_cli_module_is_runnable() -> None:
    # `python -m durable` needs a __main__ module.
    assert importlib.util.find_spec("durable.__main__") is not None
