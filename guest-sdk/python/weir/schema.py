"""JSON Schemas of parameters, derived from type hints (Prefect's parameter schemas).

Supported: ``int``, ``float``, ``str``, ``bool``, ``None``, ``list``/``List[X]``,
``tuple``, ``set``, ``dict``/``Dict[str, X]``, ``Optional``/``Union``/``X | Y``,
``Literal``, ``Annotated``, ``datetime``, ``date``, ``time``, ``timedelta``, ``UUID``,
``Decimal``, enums, dataclasses, ``TypedDict``s and pydantic models; anything else (or
no hint) accepts any JSON value.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import functools
import inspect
import typing
import uuid
from typing import Any, Callable, Optional, Union

from . import _json

_NONE_TYPE = type(None)


class SchemaBuilder:
    """Schemas of several types sharing one ``$defs`` (dataclasses and other named types)."""

    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}

    def schema(self, hint: Any) -> dict[str, Any]:
        if hint is None or hint is _NONE_TYPE:
            return {"type": "null"}
        if hint is Any or hint is inspect.Parameter.empty or hint is object:
            return {}
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if origin is typing.Annotated:
            return self.schema(args[0])
        if origin is Union or _json._is_union_type(origin):
            options = [self.schema(arg) for arg in args]
            return {"anyOf": options}
        if origin is typing.Literal:
            return {"enum": [_json.to_jsonable(a) for a in args]}
        if origin in (list, set, frozenset) or hint in (list, set, frozenset):
            schema: dict[str, Any] = {"type": "array"}
            if args:
                schema["items"] = self.schema(args[0])
            if origin in (set, frozenset) or hint in (set, frozenset):
                schema["uniqueItems"] = True
            return schema
        if origin is tuple or hint is tuple:
            if not args:
                return {"type": "array"}
            if len(args) == 2 and args[1] is Ellipsis:
                return {"type": "array", "items": self.schema(args[0])}
            return {
                "type": "array",
                "prefixItems": [self.schema(a) for a in args],
                "minItems": len(args),
                "maxItems": len(args),
            }
        if origin is dict or hint is dict:
            schema = {"type": "object"}
            if len(args) == 2:
                schema["additionalProperties"] = self.schema(args[1])
            return schema
        if hint is bool:
            return {"type": "boolean"}
        if hint is int:
            return {"type": "integer"}
        if hint is float:
            return {"type": "number"}
        if hint is str:
            return {"type": "string"}
        if hint is bytes:
            return {"type": "string"}
        if hint is datetime.datetime:
            return {"type": "string", "format": "date-time"}
        if hint is datetime.date:
            return {"type": "string", "format": "date"}
        if hint is datetime.time:
            return {"type": "string", "format": "time"}
        if hint is datetime.timedelta:
            return {"type": "number", "description": "seconds"}
        if hint is uuid.UUID:
            return {"type": "string", "format": "uuid"}
        if hint is decimal.Decimal:
            return {"type": "number"}
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return self._named(hint, lambda: {
                "title": hint.__name__,
                "enum": [_json.to_jsonable(m.value) for m in hint],
            })
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            return self._named(hint, lambda: self._dataclass(hint))
        if _json._is_typed_dict(hint):
            return self._named(hint, lambda: self._typed_dict(hint))
        if _json._is_pydantic(hint):
            return self._named(hint, lambda: self._pydantic(hint))
        return {}

    def _named(self, hint: type, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        name = hint.__name__
        key = name
        n = 2
        while key in self.defs and self.defs[key].get("x-weir-type") != _type_id(hint):
            key = f"{name}{n}"
            n += 1
        if key not in self.defs:
            self.defs[key] = {"x-weir-type": _type_id(hint)}
            body = make()
            body["x-weir-type"] = _type_id(hint)
            self.defs[key] = body
        return {"$ref": f"#/$defs/{key}"}

    def _dataclass(self, cls: type) -> dict[str, Any]:
        hints = _json._hints(cls)
        properties = {}
        required = []
        for f in dataclasses.fields(cls):
            prop = self.schema(hints.get(f.name, Any))
            if f.default is not dataclasses.MISSING:
                prop = _with_default(prop, f.default)
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                prop = _with_default(prop, f.default_factory())  # type: ignore[misc]
            else:
                required.append(f.name)
            properties[f.name] = prop
        schema: dict[str, Any] = {"title": cls.__name__, "type": "object", "properties": properties}
        if required:
            schema["required"] = required
        doc = _own_doc(cls)
        if doc:
            schema["description"] = doc
        return schema

    def _typed_dict(self, cls: type) -> dict[str, Any]:
        hints = _json._hints(cls)
        required_keys = getattr(cls, "__required_keys__", set(hints))
        properties = {name: self.schema(hint) for name, hint in hints.items()}
        schema: dict[str, Any] = {"title": cls.__name__, "type": "object", "properties": properties}
        required = [name for name in hints if name in required_keys]
        if required:
            schema["required"] = required
        return schema

    def _pydantic(self, cls: Any) -> dict[str, Any]:
        make = getattr(cls, "model_json_schema", None)
        if make is not None:
            schema = make(ref_template="#/$defs/{model}")
        else:
            schema = cls.schema(ref_template="#/$defs/{model}")
        for key in ("$defs", "definitions"):
            for name, definition in schema.pop(key, {}).items():
                self.defs.setdefault(name, definition)
        return schema

    def finish(self, schema: dict[str, Any]) -> dict[str, Any]:
        """``schema`` with the shared ``$defs`` (markers removed)."""
        if self.defs:
            defs = {}
            for name, body in self.defs.items():
                body = dict(body)
                body.pop("x-weir-type", None)
                defs[name] = body
            schema["$defs"] = defs
        return schema


def _type_id(hint: type) -> str:
    return f"{hint.__module__}.{hint.__qualname__}"


def _own_doc(cls: type) -> Optional[str]:
    doc = cls.__dict__.get("__doc__")
    if not doc or (dataclasses.is_dataclass(cls) and doc.startswith(cls.__name__ + "(")):
        return None
    return inspect.cleandoc(doc)


def _with_default(schema: dict[str, Any], default: Any) -> dict[str, Any]:
    try:
        value = _json.to_jsonable(default)
    except TypeError:
        return schema
    return {**schema, "default": value}


@functools.lru_cache(maxsize=None)
def signature(fn: Callable[..., Any]) -> inspect.Signature:
    """A function's signature, computed once (flows and tasks are called many times)."""
    return inspect.signature(fn)


@functools.lru_cache(maxsize=None)
def type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """The resolved type hints of a function (unresolvable ones are left out), computed
    once; ``weir build`` computes them for every flow and task when the module is whole,
    so a component starts with them."""
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:  # noqa: BLE001 - forward references to names that do not exist
        hints = {}
        for name, annotation in getattr(fn, "__annotations__", {}).items():
            if not isinstance(annotation, str):
                hints[name] = annotation
        return hints


def parameters_schema(fn: Callable[..., Any], validate: bool = True) -> dict[str, Any]:
    """The JSON Schema of a function's parameters: an object keyed by parameter name,
    with the defaults, the required ones, and no other properties (unless it takes
    ``**kwargs``)."""
    hints = type_hints(fn) if validate else {}
    builder = SchemaBuilder()
    properties: dict[str, Any] = {}
    required: list[str] = []
    open_ended = False
    for position, (name, param) in enumerate(signature(fn).parameters.items()):
        if param.kind == inspect.Parameter.VAR_KEYWORD:
            open_ended = True
            continue
        if param.kind == inspect.Parameter.VAR_POSITIONAL:
            prop = {"type": "array"}
            hint = hints.get(name)
            if hint is not None:
                prop["items"] = builder.schema(hint)
            properties[name] = {**prop, "title": name, "position": position}
            continue
        prop = builder.schema(hints.get(name, Any)) if validate else {}
        prop = {**prop, "title": name, "position": position}
        if param.default is inspect.Parameter.empty:
            required.append(name)
        else:
            prop = _with_default(prop, param.default)
        properties[name] = prop
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": open_ended or not validate,
    }
    return builder.finish(schema)


def input_schema(hint: Any) -> dict[str, Any]:
    """The JSON Schema of one type, with its ``$defs`` at the root (for pause inputs)."""
    builder = SchemaBuilder()
    schema = builder.schema(hint)
    if "$ref" in schema and len(schema) == 1:
        name = schema["$ref"].rsplit("/", 1)[-1]
        root = dict(builder.defs.pop(name))
        root.pop("x-weir-type", None)
        schema = root
    return builder.finish({"$schema": "https://json-schema.org/draft/2020-12/schema", **schema})
