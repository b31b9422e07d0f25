"""The current task run (Prefect's ``prefect.runtime.task_run``): ``id``, ``name``,
``task_name``, ``parameters``, ``run_count``, ``tags``. Outside a task run each is
``None`` (``parameters``: ``{}``, ``tags``: ``[]``, ``run_count``: 0)."""

from __future__ import annotations

from typing import Any

from .. import _context
from . import _current

__all__ = ["id", "name", "task_name", "parameters", "run_count", "tags"]


def __getattr__(attribute: str) -> Any:
    in_task = _context.kind() == _context.TASK
    context = _current.current() if in_task else None
    if attribute == "parameters":
        frame = _context.current()
        return dict(frame.arguments) if in_task and frame is not None else {}
    if attribute == "tags":
        return list(context.tags) if context else []
    if attribute == "run_count":
        return context.attempt if context else 0
    if context is None:
        if attribute in __all__:
            return None
        raise AttributeError(attribute)
    if attribute == "id":
        return context.task_run_id
    if attribute == "name":
        return context.task_run_name
    if attribute == "task_name":
        return context.task_name
    raise AttributeError(attribute)
