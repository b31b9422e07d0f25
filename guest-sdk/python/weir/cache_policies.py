"""Cache policies (Prefect's ``prefect.cache_policies``).

``INPUTS`` is keyed by the host on the component, the task and its inputs. The others,
and any sum of policies (``INPUTS + TASK_SOURCE``), give a key computed in the flow
before the task runs, as a ``cache_key_fn`` does.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Optional, Sequence


class CachePolicy:
    """A way to compute a task's cache key; sum policies to key on all their parts."""

    parts: tuple[str, ...] = ()

    def __init__(self, *parts: str) -> None:
        self.parts = parts

    def __add__(self, other: "CachePolicy") -> "CachePolicy":
        if not isinstance(other, CachePolicy):
            return NotImplemented
        if isinstance(other, _NoCache) or isinstance(self, _NoCache):
            return other if isinstance(self, _NoCache) else self
        merged = list(self.parts)
        merged += [p for p in other.parts if p not in merged]
        return CompoundCachePolicy(*merged)

    def __sub__(self, name: str) -> "CachePolicy":
        if name != "inputs" and not isinstance(name, str):
            return NotImplemented
        return self

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.parts == getattr(other, "parts", None)

    def __hash__(self) -> int:
        return hash((type(self), self.parts))

    def __repr__(self) -> str:
        return " + ".join(p.upper() for p in self.parts) or "NONE"

    @property
    def host_policy(self) -> str:
        """The manifest's cache policy: "inputs" keyed by the host, "custom" keyed here."""
        if self.parts == ("inputs",):
            return "inputs"
        return "custom" if self.parts else "none"

    def compute_key(
        self,
        task_name: str,
        source_hash: str,
        inputs: dict[str, Any],
        flow_run_id: Optional[str],
        flow_parameters: Any,
    ) -> Optional[str]:
        if not self.parts:
            return None
        pieces: list[Any] = [task_name]
        for part in self.parts:
            if part == "inputs":
                pieces.append(inputs)
            elif part == "task_source":
                pieces.append(source_hash)
            elif part == "run_id":
                pieces.append(flow_run_id)
            elif part == "flow_parameters":
                pieces.append(flow_parameters)
        return hash_objects(*pieces)


class CompoundCachePolicy(CachePolicy):
    """A sum of policies."""


class _NoCache(CachePolicy):
    pass


class Inputs(CachePolicy):
    def __init__(self, exclude: Sequence[str] = ()) -> None:
        super().__init__("inputs")
        self.exclude = tuple(exclude)


def hash_objects(*objects: Any) -> str:
    """A stable hash of JSON-compatible values."""
    from . import _json

    text = json.dumps([_json.to_jsonable(o) for o in objects], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


#: No caching.
NONE = _NoCache()
NO_CACHE = NONE
#: Keyed by the task's inputs (the host's "inputs" policy).
INPUTS = Inputs()
#: Keyed by the task's source code.
TASK_SOURCE = CachePolicy("task_source")
#: Keyed by the flow run: a task cached within one run only.
RUN_ID = CachePolicy("run_id")
#: Keyed by the flow run's parameters.
FLOW_PARAMETERS = CachePolicy("flow_parameters")
#: Prefect's default: inputs, source and run (caching within a flow run).
DEFAULT = CompoundCachePolicy("inputs", "task_source", "run_id")
