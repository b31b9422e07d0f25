"""Run states (Prefect's ``prefect.states``): ``Completed(message=..., name="Skipped")``,
``Failed(...)``, with ``is_completed()``, ``is_failed()``, ``result()``."""

from __future__ import annotations

import enum
from typing import Any, Optional

from . import exceptions

_UNSET: Any = object()


class StateType(enum.Enum):
    """The type of a state."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    CRASHED = "CRASHED"


_FINAL = {StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED}


class State:
    """A state: its type, a name (a sub-state such as "Cached", or yours, such as
    "Skipped"), an optional message and, for a finished run, its value (``data``)."""

    def __init__(
        self,
        type: StateType,
        name: Optional[str] = None,
        message: Optional[str] = None,
        data: Any = None,
        *,
        failure: Optional[dict[str, Any]] = None,
        run_id: str = "",
    ) -> None:
        self.type = type
        self.name = name or type.value.capitalize()
        self.message = message
        self.data = data
        #: The failure the host reported (kind, message, retryable, details).
        self.failure = failure
        #: The task or flow run this is the state of ("" for a state made by the flow).
        self.run_id = run_id

    def is_scheduled(self) -> bool:
        return self.type == StateType.SCHEDULED

    def is_pending(self) -> bool:
        return self.type == StateType.PENDING

    def is_running(self) -> bool:
        return self.type == StateType.RUNNING

    def is_paused(self) -> bool:
        return self.type == StateType.PAUSED

    def is_completed(self) -> bool:
        return self.type == StateType.COMPLETED

    def is_failed(self) -> bool:
        return self.type == StateType.FAILED

    def is_crashed(self) -> bool:
        return self.type == StateType.CRASHED

    def is_cancelled(self) -> bool:
        return self.type == StateType.CANCELLED

    def is_cancelling(self) -> bool:
        return self.type == StateType.CANCELLING

    def is_final(self) -> bool:
        return self.type in _FINAL

    def result(self, raise_on_failure: bool = True) -> Any:
        """The run's value when it completed; otherwise raises its exception (or returns
        it with ``raise_on_failure=False``)."""
        if self.is_completed():
            if isinstance(self.data, BaseException):
                if raise_on_failure:
                    raise self.data
                return self.data
            return self.data
        error = self.exception()
        if raise_on_failure:
            raise error
        return error

    def exception(self) -> BaseException:
        """The exception a state that did not complete stands for."""
        if isinstance(self.data, BaseException):
            return self.data
        failure = self.failure or {}
        kind = failure.get("kind") or {
            StateType.CANCELLED: "cancelled",
            StateType.CANCELLING: "cancelled",
            StateType.CRASHED: "crashed",
        }.get(self.type, "error")
        message = failure.get("message") or self.message or (
            f"run {self.run_id} finished in state {self.name}"
        )
        return exceptions.rebuild(kind, message, failure.get("details"))

    def __repr__(self) -> str:
        parts = [f"message={self.message!r}", f"type={self.type.value}"]
        if self.is_completed():
            parts.append(f"result={self.data!r}")
        return f"{self.name}({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, State)
            and (self.type, self.name, self.message) == (other.type, other.name, other.message)
        )

    __hash__ = None  # type: ignore[assignment]


def _make(type: StateType, default_name: str):
    def factory(
        message: Optional[str] = None, name: Optional[str] = None, data: Any = None, **_: Any
    ) -> State:
        return State(type, name or default_name, message, data)

    factory.__name__ = default_name
    factory.__doc__ = f"A {type.value.capitalize()} state (``name`` gives it a sub-state name)."
    return factory


Completed = _make(StateType.COMPLETED, "Completed")
Failed = _make(StateType.FAILED, "Failed")
Cancelled = _make(StateType.CANCELLED, "Cancelled")
Crashed = _make(StateType.CRASHED, "Crashed")
Pending = _make(StateType.PENDING, "Pending")
Running = _make(StateType.RUNNING, "Running")
Scheduled = _make(StateType.SCHEDULED, "Scheduled")
Paused = _make(StateType.PAUSED, "Paused")


def is_state(value: Any) -> bool:
    return isinstance(value, State)
