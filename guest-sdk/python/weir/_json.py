"""Values across the boundary: Python values to JSON and back, guided by type hints."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import functools
import json
import typing
import uuid
from typing import Any, Union

_NONE_TYPE = type(None)


def to_jsonable(value: Any) -> Any:
    """A JSON-compatible form of ``value`` (dataclasses, datetimes, sets, enums, pydantic
    models and the like are converted); raises ``TypeError`` for what has none."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise TypeError(f"{value} is not a JSON number")
        return value
    if isinstance(value, dict):
        return {_key(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [to_jsonable(v) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value) if isinstance(value, uuid.UUID) else float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return to_jsonable(model_dump(mode="json"))
    as_dict = getattr(value, "dict", None)
    if callable(as_dict) and hasattr(type(value), "__fields__"):
        return to_jsonable(as_dict())
    raise TypeError(
        f"a value of type {type(value).__name__} cannot cross to the host: return and pass "
        "JSON-compatible values (numbers, strings, lists, dicts, dataclasses, datetimes, ...)"
    )


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, enum.Enum):
        return str(key.value)
    if isinstance(key, (int, float, bool)) or key is None:
        return json.dumps(key)
    return str(key)


def dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), separators=(",", ":"), ensure_ascii=False)


def from_jsonable(value: Any, hint: Any) -> Any:
    """``value`` (decoded JSON) as the type ``hint`` asks for, where it can be made one;
    anything else is returned as it is (the host has checked it against the schema)."""
    if hint is None or hint is Any or hint is typing.Any or value is None:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return from_jsonable(value, args[0])
    if origin is Union or _is_union_type(origin):
        for arg in args:
            if arg is _NONE_TYPE:
                continue
            try:
                converted = _strict(value, arg)
            except (TypeError, ValueError, KeyError):
                continue
            return converted
        return value
    if origin is typing.Literal:
        return value
    if origin in (list, typing.List, set, frozenset, tuple):
        if not isinstance(value, list):
            return value
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(from_jsonable(v, args[0]) for v in value)
            if args:
                return tuple(from_jsonable(v, a) for v, a in zip(value, args))
            return tuple(value)
        items = [from_jsonable(v, args[0]) if args else v for v in value]
        if origin in (set, frozenset):
            return origin(items)
        return items
    if origin is dict:
        if not isinstance(value, dict) or len(args) != 2:
            return value
        return {k: from_jsonable(v, args[1]) for k, v in value.items()}
    if isinstance(hint, type):
        try:
            return _strict(value, hint)
        except (TypeError, ValueError, KeyError):
            return value
    return value


def _is_union_type(origin: Any) -> bool:
    union_type = getattr(__import__("types"), "UnionType", None)
    return union_type is not None and origin is union_type


def _strict(value: Any, hint: Any) -> Any:
    """``value`` as ``hint``, or an exception when it is not one."""
    origin = typing.get_origin(hint)
    if origin is not None:
        converted = from_jsonable(value, hint)
        base = origin if isinstance(origin, type) else None
        if base is not None and base not in (typing.Literal,) and not isinstance(converted, base):
            raise TypeError("not a match")
        return converted
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise TypeError("not a bool")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError("not an int")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError("not a float")
    if hint is str:
        if isinstance(value, str):
            return value
        raise TypeError("not a str")
    if hint is datetime.datetime:
        if isinstance(value, str):
            return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        raise TypeError("not a datetime")
    if hint is datetime.date:
        if isinstance(value, str):
            return datetime.date.fromisoformat(value[:10])
        raise TypeError("not a date")
    if hint is datetime.time:
        return datetime.time.fromisoformat(value)
    if hint is datetime.timedelta:
        return datetime.timedelta(seconds=float(value))
    if hint is uuid.UUID:
        return uuid.UUID(str(value))
    if hint is decimal.Decimal:
        return decimal.Decimal(str(value))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise TypeError("not an object")
        hints = _hints(hint)
        kwargs = {}
        for f in dataclasses.fields(hint):
            if f.name in value:
                kwargs[f.name] = from_jsonable(value[f.name], hints.get(f.name))
        return hint(**kwargs)
    if _is_typed_dict(hint):
        if not isinstance(value, dict):
            raise TypeError("not an object")
        hints = _hints(hint)
        return {k: from_jsonable(v, hints.get(k)) for k, v in value.items()}
    if _is_pydantic(hint):
        return validate_model(hint, value)
    if hint in (list, dict, tuple, set):
        if hint is dict and not isinstance(value, dict):
            raise TypeError("not an object")
        if hint is not dict and not isinstance(value, list):
            raise TypeError("not a list")
        return hint(value)
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    raise TypeError("no conversion")


@functools.lru_cache(maxsize=None)
def _hints(cls: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - unresolvable forward references
        return dict(getattr(cls, "__annotations__", {}))


def _is_typed_dict(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, dict) and hasattr(hint, "__total__")


def validate_model(model: Any, value: Any) -> Any:
    """``value`` as the pydantic ``model`` (v2's ``model_validate`` or v1's ``parse_obj``),
    its validators run; raises what they raise."""
    validate = getattr(model, "model_validate", None) or getattr(model, "parse_obj")
    return validate(value)


def _is_pydantic(hint: Any) -> bool:
    return isinstance(hint, type) and (
        hasattr(hint, "model_validate") or (hasattr(hint, "parse_obj") and hasattr(hint, "__fields__"))
    )
