"""Where the running code is: building, in a flow run, in a task run, or local."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

#: No run: plain Python (tests, a script); flows and tasks run as plain functions.
LOCAL = "local"
#: Inside a flow run on the host: task calls and subflows go through the host.
FLOW = "flow"
#: Inside a task attempt on the host: nested task calls go through the host too.
TASK = "task"


@dataclass
class Frame:
    kind: str
    name: str = ""
    #: The arguments of the running task (``task_run.parameters``).
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass
class _State:
    building: bool = False
    frames: list[Frame] = field(default_factory=list)


_state = _State()


def building() -> bool:
    """Whether the component is being built (the user's module is imported by `weir build`)."""
    return _state.building


def set_building(value: bool) -> None:
    _state.building = value


def current() -> Optional[Frame]:
    return _state.frames[-1] if _state.frames else None


def kind() -> str:
    frame = current()
    return frame.kind if frame else LOCAL


def on_host() -> bool:
    """Whether calls should go through the host (inside a flow or task run)."""
    return kind() in (FLOW, TASK)


@contextlib.contextmanager
def enter(frame: Frame) -> Iterator[Frame]:
    _state.frames.append(frame)
    try:
        yield frame
    finally:
        _state.frames.pop()
