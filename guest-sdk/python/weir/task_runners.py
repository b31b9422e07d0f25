"""Prefect's task runners (``prefect.task_runners``): how many of the task runs a flow
submits run at once. Weir runs every task run in its own sandbox on the server; the runner
only bounds the flow's concurrency (the host keeps the bound, in submission order)."""

from __future__ import annotations

from typing import Optional

__all__ = ["ConcurrentTaskRunner", "SequentialTaskRunner", "TaskRunner", "ThreadPoolTaskRunner"]


class TaskRunner:
    """A bound on the task runs a flow's submits run at once (``None``: the server's)."""

    max_workers: Optional[int] = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_workers={self.max_workers})"


class ThreadPoolTaskRunner(TaskRunner):
    """At most ``max_workers`` submitted task runs at once (Prefect 3's default runner)."""

    def __init__(self, max_workers: Optional[int] = None) -> None:
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise ValueError(f"max_workers must be a positive integer, not {max_workers!r}")
        self.max_workers = max_workers


class ConcurrentTaskRunner(ThreadPoolTaskRunner):
    """Prefect 2's name for the concurrent runner."""


class SequentialTaskRunner(TaskRunner):
    """One submitted task run at a time, in submission order."""

    max_workers = 1
