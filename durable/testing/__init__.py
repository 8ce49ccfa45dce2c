"""Tools for testing workflows: offline replay, property checks, a virtual clock, pytest fixtures."""

from ..clock import VirtualClock

__all__ = ["VirtualClock"]
