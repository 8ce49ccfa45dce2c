"""durable: durable execution for plain Python generator functions.

Workflows are generators that yield effects (`call`, `sleep`, `receive`,
`uuid`, `now`, ...); the engine records each outcome in a journal and, after
a crash, replays the generator from it without running anything twice.
"""

from .clock import VirtualClock
from .effects import call, continue_as_new, gather, now, race, random, receive, sleep, uuid, version
from .engine import ActivityInfo, Engine, Handle, activity_info
from .errors import (
    ActivityError,
    Cancelled,
    ChildWorkflowError,
    CodecError,
    DurableError,
    NondeterminismError,
    SerializationError,
    Timeout,
    WorkflowClosedError,
    WorkflowExistsError,
    WorkflowFailedError,
    WorkflowNotFoundError,
)
from .journal import Entry, Journal
from .registry import Activity, Registry, Workflow, activity, default_registry, workflow
from .retry import Retry

__version__ = "0.1.0"

__all__ = [
    "Activity",
    "ActivityError",
    "ActivityInfo",
    "Cancelled",
    "ChildWorkflowError",
    "CodecError",
    "DurableError",
    "Engine",
    "Entry",
    "Handle",
    "Journal",
    "NondeterminismError",
    "Registry",
    "Retry",
    "SerializationError",
    "Timeout",
    "VirtualClock",
    "Workflow",
    "WorkflowClosedError",
    "WorkflowExistsError",
    "WorkflowFailedError",
    "WorkflowNotFoundError",
    "activity",
    "activity_info",
    "call",
    "continue_as_new",
    "default_registry",
    "gather",
    "now",
    "race",
    "random",
    "receive",
    "sleep",
    "uuid",
    "version",
    "workflow",
]
