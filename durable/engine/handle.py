"""A handle to one workflow: the id plus the calls that take it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..journal import Journal

if TYPE_CHECKING:
    from .core import Engine

__all__ = ["Handle"]

R = TypeVar("R")


class Handle(Generic[R]):
    """Returned by `Engine.start`; every method is the engine's, for this id."""

    __slots__ = ("engine", "id", "name")

    def __init__(self, engine: Engine, workflow_id: str, name: str | None) -> None:
        self.engine = engine
        self.id = workflow_id
        self.name = name

    async def result(self, timeout: float | None = None) -> R:
        """The return value; see `Engine.result`."""
        return await self.engine.result(self.id, timeout=timeout)

    async def status(self) -> str:
        return await self.engine.status(self.id)

    async def signal(self, name: str, payload: Any = None) -> None:
        await self.engine.signal(self.id, name, payload)

    async def cancel(self) -> None:
        await self.engine.cancel(self.id)

    async def journal(self) -> Journal:
        return await self.engine.journal(self.id)

    def __repr__(self) -> str:
        return f"<Handle {self.id!r}{f' ({self.name})' if self.name else ''}>"
