"""Futures of submitted task runs (Prefect's ``prefect.futures``)."""

from __future__ import annotations

from typing import Any, Iterable, Iterator, List, NamedTuple, Optional

from .states import State


class PrefectFuture:
    """A submitted task run, from ``my_task.submit(...)`` or ``my_task.map(...)``.

    Waiting is cached: the host is asked once. ``state`` waits for the run to be final
    (the host reports final states only).
    """

    def __init__(self, task_name: str, handle: Any = None, *, state: Optional[State] = None,
                 decode: Any = None) -> None:
        self.task_name = task_name
        self._handle = handle
        self._state = state
        self._id: Optional[str] = state.run_id if state is not None else None
        self._decode = decode

    @property
    def task_run_id(self) -> str:
        """The task run's id ("" when the call failed before the host made a run)."""
        if self._id is None:
            self._id = self._handle.task_run_id() if self._handle is not None else ""
        return self._id

    def wait(self, timeout: Optional[float] = None) -> None:
        """Waits until the task run is final."""
        if self._state is None:
            from . import tasks

            outcome = self._handle.wait()
            self._state = tasks._state_of(outcome, self._decode)
            self._release()

    @property
    def state(self) -> State:
        """The task run's final state (waits for it)."""
        self.wait()
        assert self._state is not None
        return self._state

    def result(self, timeout: Optional[float] = None, raise_on_failure: bool = True) -> Any:
        """The task's return value; raises its exception if it did not complete (or returns
        it with ``raise_on_failure=False``)."""
        return self.state.result(raise_on_failure=raise_on_failure)

    def _release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None and self._id is None:
            self._id = handle.task_run_id()
        if handle is not None and hasattr(handle, "__exit__"):
            try:
                handle.__exit__(None, None, None)
            except Exception:  # noqa: BLE001 - a handle the host already dropped
                pass

    def __repr__(self) -> str:
        done = self._state is not None
        return f"PrefectFuture(task={self.task_name!r}, task_run_id={self._id!r}, done={done})"


#: Weir's name for it.
TaskFuture = PrefectFuture


class PrefectFutureList(list):
    """The futures of a map: ``wait()`` for all, ``result()`` for all their values."""

    def wait(self, timeout: Optional[float] = None) -> None:
        for future in self:
            future.wait()

    def result(self, timeout: Optional[float] = None, raise_on_failure: bool = True) -> list[Any]:
        return [f.result(raise_on_failure=raise_on_failure) for f in self]


class DoneAndNotDoneFutures(NamedTuple):
    done: set
    not_done: set


def wait(futures: Iterable[PrefectFuture], timeout: Optional[float] = None) -> DoneAndNotDoneFutures:
    """Waits for every future (Prefect's ``prefect.futures.wait``)."""
    done = set()
    for future in futures:
        future.wait()
        done.add(future)
    return DoneAndNotDoneFutures(done, set())


def as_completed(futures: Iterable[PrefectFuture], timeout: Optional[float] = None) -> Iterator[PrefectFuture]:
    """Yields the futures as they complete (here: in order, each once it is final)."""
    for future in futures:
        future.wait()
        yield future


def resolve_futures_to_states(value: Any) -> Any:
    """``value`` with every future replaced by its final state."""
    if isinstance(value, PrefectFuture):
        return value.state
    if isinstance(value, (list, tuple, set)):
        return type(value)(resolve_futures_to_states(v) for v in value)
    if isinstance(value, dict):
        return {k: resolve_futures_to_states(v) for k, v in value.items()}
    return value
