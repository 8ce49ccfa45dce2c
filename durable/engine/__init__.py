"""The engine: claims workflows from a store and drives them."""

from .activity import ActivityInfo, activity_info
from .core import Engine
from .handle import Handle

__all__ = ["ActivityInfo", "Engine", "Handle", "activity_info"]
