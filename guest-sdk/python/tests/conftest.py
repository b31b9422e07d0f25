"""Tests of the SDK's pure-Python parts: no host, flows and tasks run as plain functions."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from weir import _registry  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_registry():
    """Each test declares its own flows and tasks."""
    saved = (dict(_registry._flows), dict(_registry._tasks))
    _registry._flows.clear()
    _registry._tasks.clear()
    yield
    _registry._flows.clear()
    _registry._tasks.clear()
    _registry._flows.update(saved[0])
    _registry._tasks.update(saved[1])
