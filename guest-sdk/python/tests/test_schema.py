import dataclasses
import datetime
import enum
import uuid
from typing import Any, Dict, List, Literal, Optional, Tuple, TypedDict, Union

from weir.schema import input_schema, parameters_schema


@dataclasses.dataclass
class Tag:
    name: str


@dataclasses.dataclass
class Row:
    """A row."""

    id: int
    tags: List[Tag]
    note: Optional[str] = None


class Movie(TypedDict):
    title: str
    year: int


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


def test_scalars_defaults_and_required():
    def f(x: int, name: str = "world", ratio: float = 0.5, flag: bool = False, anything=None):
        pass

    schema = parameters_schema(f)
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["x"]
    props = schema["properties"]
    assert props["x"]["type"] == "integer"
    assert props["name"] == {"type": "string", "title": "name", "position": 1, "default": "world"}
    assert props["ratio"]["type"] == "number"
    assert props["flag"]["type"] == "boolean"
    assert "type" not in props["anything"]
    assert "$defs" not in schema


def test_containers_unions_literals_and_dates():
    def f(
        xs: List[int],
        m: Dict[str, float],
        pair: Tuple[int, str],
        maybe: Optional[int],
        either: Union[int, str],
        mode: Literal["a", "b"],
        when: datetime.datetime,
        day: datetime.date,
        ident: uuid.UUID,
        color: Color,
        new: "list[str] | None" = None,
    ):
        pass

    props = parameters_schema(f)["properties"]
    assert props["xs"]["items"] == {"type": "integer"}
    assert props["m"]["additionalProperties"] == {"type": "number"}
    assert [p["type"] for p in props["pair"]["prefixItems"]] == ["integer", "string"]
    assert {"type": "null"} in props["maybe"]["anyOf"]
    assert len(props["either"]["anyOf"]) == 2
    assert props["mode"]["enum"] == ["a", "b"]
    assert props["when"]["format"] == "date-time"
    assert props["day"]["format"] == "date"
    assert props["ident"]["format"] == "uuid"
    assert props["color"]["$ref"] == "#/$defs/Color"
    assert props["new"]["anyOf"][0] == {"type": "array", "items": {"type": "string"}}


def test_dataclasses_and_typed_dicts_are_definitions():
    def f(row: Row, rows: List[Row], movie: Movie):
        pass

    schema = parameters_schema(f)
    assert schema["properties"]["row"]["$ref"] == "#/$defs/Row"
    assert schema["properties"]["rows"]["items"]["$ref"] == "#/$defs/Row"
    defs = schema["$defs"]
    assert defs["Row"]["required"] == ["id", "tags"]
    assert defs["Row"]["description"] == "A row."
    assert defs["Row"]["properties"]["tags"]["items"]["$ref"] == "#/$defs/Tag"
    assert defs["Row"]["properties"]["note"]["default"] is None
    assert defs["Movie"]["required"] == ["title", "year"]
    assert all("x-weir-type" not in d for d in defs.values())


def test_kwargs_open_the_schema_and_validation_can_be_off():
    def f(a: int, **rest: Any):
        pass

    assert parameters_schema(f)["additionalProperties"] is True
    schema = parameters_schema(f, validate=False)
    assert "type" not in schema["properties"]["a"]


def test_input_schema_has_the_type_at_its_root():
    schema = input_schema(Row)
    assert schema["type"] == "object"
    assert schema["properties"]["tags"]["items"]["$ref"] == "#/$defs/Tag"
    assert "2020-12" in schema["$schema"]
    assert input_schema(int)["type"] == "integer"
