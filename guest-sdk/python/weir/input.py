"""Typed input for paused runs (Prefect's ``prefect.input.RunInput``).

Subclasses are dataclasses: their annotated fields are the input's JSON Schema, which
the server checks a resume against.
"""

from __future__ import annotations

import dataclasses
from typing import Any


class RunInput:
    """Base of typed pause inputs: ``class Approval(RunInput): approved: bool``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__dataclass_fields__" not in cls.__dict__:
            dataclasses.dataclass(cls)

    @classmethod
    def with_initial_data(cls, description: Any = None, **defaults: Any) -> type:
        """A subclass whose fields default to ``defaults``."""
        namespace: dict[str, Any] = {"__annotations__": {}}
        hints = getattr(cls, "__annotations__", {})
        for name, value in defaults.items():
            namespace["__annotations__"][name] = hints.get(name, Any)
            namespace[name] = value
        if description is not None:
            namespace["__doc__"] = str(description)
        return type(cls.__name__, (cls,), namespace)
