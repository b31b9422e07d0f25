"""Running coroutines inside a component.

asyncio's default event loop wakes itself through a socket pair, and a component has no
sockets (Weir denies them), so ``asyncio.run`` would fail. This loop needs none: a flow or
task runs alone in its instance, and the only wake-ups it needs are its own timers and
callbacks, which it handles between selects over no files (a plain sleep until the next
timer). Inside a component it is what ``asyncio.run`` and ``asyncio.new_event_loop`` make.
"""

from __future__ import annotations

import asyncio
import selectors
import sys
import time
from typing import Any, Coroutine


class _SleepSelector(selectors.BaseSelector):
    """A selector over no files: ``select`` sleeps for the timeout."""

    def __init__(self) -> None:
        self._map: dict[Any, selectors.SelectorKey] = {}

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        raise PermissionError("a Weir flow or task has no sockets or pipes to wait on")

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        raise KeyError(fileobj)

    def select(self, timeout: Any = None) -> list:
        if timeout is None:
            raise RuntimeError(
                "the event loop has nothing left to wait for (a coroutine awaits something "
                "that never completes)"
            )
        if timeout > 0:
            time.sleep(timeout)
        return []

    def get_map(self) -> Any:
        return self._map

    def close(self) -> None:
        pass


class WeirEventLoop(asyncio.SelectorEventLoop):
    """An event loop without a self-pipe (see the module's documentation)."""

    def __init__(self) -> None:
        super().__init__(_SleepSelector())

    def _make_self_pipe(self) -> None:
        self._ssock = None
        self._csock = None
        self._internal_fds = 0

    def _close_self_pipe(self) -> None:
        pass

    def _write_to_self(self) -> None:
        pass

    def _process_self_data(self, data: bytes) -> None:
        pass


def new_event_loop() -> asyncio.AbstractEventLoop:
    return WeirEventLoop()


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Runs a coroutine to its end: in a component on :class:`WeirEventLoop`, elsewhere
    with ``asyncio.run``."""
    if sys.platform != "wasi":
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=WeirEventLoop) as runner:
        return runner.run(coro)


def install() -> None:
    """Makes ``asyncio.run`` and ``asyncio.new_event_loop`` use :class:`WeirEventLoop`
    (called when the component is built)."""
    if sys.platform != "wasi":
        return
    asyncio.new_event_loop = new_event_loop  # type: ignore[assignment]
    asyncio.events.new_event_loop = new_event_loop  # type: ignore[assignment]
