"""The current flow run (Prefect's ``prefect.runtime.flow_run``): ``id``, ``name``,
``flow_name``, ``parameters``, ``tags``, ``scheduled_start_time``, ``parent_flow_run_id``,
``run_count``. Outside a run each is ``None`` (``parameters``: ``{}``, ``tags``: ``[]``)."""

from __future__ import annotations

import datetime
from typing import Any

from . import _current

__all__ = ["id", "name", "flow_name", "parameters", "tags", "scheduled_start_time",
           "parent_flow_run_id", "run_count"]


def __getattr__(attribute: str) -> Any:
    context = _current.current()
    if attribute == "parameters":
        return _current.parameters(context.parameters) if context else {}
    if attribute == "tags":
        return list(context.tags) if context else []
    if attribute == "run_count":
        return context.attempt if context else 0
    if context is None:
        if attribute in __all__:
            return None
        raise AttributeError(attribute)
    if attribute == "id":
        return context.flow_run_id
    if attribute == "name":
        return context.flow_run_name
    if attribute == "flow_name":
        return context.flow_name
    if attribute == "parent_flow_run_id":
        return context.parent_flow_run_id
    if attribute == "scheduled_start_time":
        text = context.scheduled_start
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    raise AttributeError(attribute)
