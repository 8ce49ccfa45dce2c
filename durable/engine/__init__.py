"""The engine: claims workflows from a store and drives them."""

from .activity import ActivityInfo, activity_info
from .core import Engine
from .handle import Handle
from .reencode import ReencodeReport, reencode

__all__ = ["ActivityInfo", "Engine", "Handle", "ReencodeReport", "activity_info", "reencode"]
