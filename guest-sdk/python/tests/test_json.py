import dataclasses
import datetime
import enum
from typing import Dict, List, Optional, Tuple

import pytest

from weir import _json


@dataclasses.dataclass
class Point:
    x: int
    y: float = 0.0


@dataclasses.dataclass
class Shape:
    points: List[Point]
    label: Optional[str] = None


class Level(enum.Enum):
    LOW = 1


def test_values_become_json():
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    value = {"p": Point(1), "s": {3, 1}, "t": (1, 2), "when": when, "level": Level.LOW, 1: "one"}
    assert _json.to_jsonable(value) == {
        "p": {"x": 1, "y": 0.0},
        "s": [1, 3],
        "t": [1, 2],
        "when": "2024-01-02T03:04:05+00:00",
        "level": 1,
        "1": "one",
    }
    with pytest.raises(TypeError, match="cannot cross to the host"):
        _json.to_jsonable(object())
    with pytest.raises(TypeError):
        _json.to_jsonable(float("nan"))


def test_json_becomes_the_hinted_types():
    shape = _json.from_jsonable({"points": [{"x": 1, "y": 2}], "label": None}, Shape)
    assert shape == Shape([Point(1, 2.0)])
    assert _json.from_jsonable("2024-01-02T03:04:05Z", datetime.datetime).tzinfo is not None
    assert _json.from_jsonable([1, "a"], Tuple[int, str]) == (1, "a")
    assert _json.from_jsonable({"a": {"x": 3}}, Dict[str, Point]) == {"a": Point(3)}
    assert _json.from_jsonable(None, Optional[Point]) is None
    assert _json.from_jsonable({"x": 2}, Optional[Point]) == Point(2)
    assert _json.from_jsonable(2.0, int) == 2
    assert _json.from_jsonable(1, Level) is Level.LOW
    # What cannot be converted is left as it is.
    assert _json.from_jsonable("x", int) == "x"
