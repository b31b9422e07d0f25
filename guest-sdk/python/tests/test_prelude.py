import linecache
import sys

from weir import _prelude


def test_preimport_reports_what_is_missing():
    assert _prelude.preimport(("json", "no_such_module_anywhere")) == ["no_such_module_anywhere"]
    assert "uuid" in _prelude.STDLIB and "asyncio" in _prelude.STDLIB


def test_source_lines_are_kept_without_a_file_check():
    module = sys.modules[__name__]
    linecache.cache.pop(module.__file__, None)
    _prelude.keep_source_lines(__name__)
    size, mtime, lines, name = linecache.cache[module.__file__]
    assert mtime is None and name == module.__file__
    assert any("def test_source_lines_are_kept" in line for line in lines)


def test_a_module_without_flows_is_refused():
    import pytest

    with pytest.raises(SystemExit, match="defines no flow"):
        _prelude.finish(__name__)
