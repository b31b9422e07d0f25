"""The deployment of the current run (Prefect's ``prefect.runtime.deployment``). Weir's
run context does not carry it: ``id``, ``name`` and ``version`` are ``None`` and
``parameters`` are the flow run's."""

from __future__ import annotations

from typing import Any

__all__ = ["id", "name", "version", "parameters"]


def __getattr__(attribute: str) -> Any:
    if attribute == "parameters":
        from . import flow_run

        return flow_run.parameters
    if attribute in __all__:
        return None
    raise AttributeError(attribute)
