"""What ``weir build`` runs before the user's module, when the component is made.

A component has no files at run time: componentize-py snapshots the interpreter after the
app module is imported, and only what was imported by then is in the component. So the
standard library modules that flows commonly import inside functions (``uuid``,
``hashlib``, ``asyncio``, ``datetime``'s ``strptime``, codecs...) are imported here; a
module imported at the top of the user's file is in the snapshot anyway.
"""

from __future__ import annotations

import importlib
import sys

#: Imported into every component (each one that exists in the bundled Python).
STDLIB = (
    "abc", "argparse", "array", "ast", "asyncio", "base64", "binascii", "bisect", "calendar",
    "cmath", "codecs", "collections", "collections.abc", "colorsys", "concurrent.futures",
    "contextlib", "contextvars", "copy", "copyreg", "csv", "dataclasses", "datetime", "decimal",
    "difflib", "dis", "email", "email.message", "email.utils", "enum", "fnmatch", "fractions",
    "functools", "getopt", "gettext", "glob", "graphlib", "gzip", "hashlib", "heapq", "hmac",
    "html", "html.parser", "http", "http.client", "inspect", "io", "ipaddress", "itertools", "json",
    "keyword", "linecache", "locale", "logging", "logging.handlers", "math", "mimetypes", "numbers",
    "operator", "os", "os.path", "pathlib", "pickle", "platform", "pprint", "queue", "random", "re",
    "reprlib", "sched", "secrets", "selectors", "shlex", "shutil", "signal", "socket", "statistics",
    "string", "stringprep", "struct", "tempfile", "textwrap", "threading", "time", "timeit",
    "tokenize", "tomllib", "traceback", "types", "typing", "unicodedata", "urllib",
    "urllib.parse", "urllib.request", "uuid", "warnings", "weakref", "xml.dom.minidom",
    "xml.etree.ElementTree", "zipfile", "zlib", "zoneinfo", "_strptime",
    "encodings.ascii", "encodings.latin_1", "encodings.utf_8", "encodings.utf_16",
    "encodings.utf_32", "encodings.cp1252", "encodings.idna", "encodings.raw_unicode_escape",
    "encodings.unicode_escape", "encodings.punycode",
)


#: The SDK's own modules, some of which are otherwise imported inside functions.
SDK_MODULES = (
    "weir", "weir._guest", "weir.artifacts", "weir.blocks.system", "weir.cache_policies",
    "weir.deployments", "weir.exceptions", "weir.flow_runs", "weir.flows", "weir.futures",
    "weir.input", "weir.logging", "weir.runtime", "weir.runtime.deployment",
    "weir.runtime.flow_run", "weir.runtime.task_run", "weir.schema", "weir.states",
    "weir.tasks", "weir.variables", "componentize_py_types",
)


def preimport(names: tuple[str, ...] = STDLIB) -> list[str]:
    """Imports what it can of ``names``; returns those missing from this Python."""
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - absent or unusable on this platform
            missing.append(name)
    return missing


def prepare() -> None:
    """Everything a component needs before the user's module is imported."""
    from . import _asyncio, _context, _host

    _context.set_building(True)
    preimport()
    # Only what is imported now is in the component: the SDK whole, and the bindings.
    preimport(SDK_MODULES)
    if not _host.available():
        raise SystemExit("weir build: the weir:flow bindings are missing (componentize-py -w component)")
    _asyncio.install()
    # Lines reach the run's logs as they are printed, not when the run ends.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(line_buffering=True)
            except Exception:  # noqa: BLE001
                pass


def finish(module: str) -> None:
    """After the user's module: a component without a flow is refused."""
    from . import _context, _registry

    _context.set_building(False)
    keep_source_lines(module)
    warm_up()
    if not _registry.flows():
        raise SystemExit(
            f"weir build: {module} defines no flow: decorate a function with @flow "
            "(from weir import flow)"
        )


def keep_source_lines(module: str) -> None:
    """Keeps the source lines of the user's modules (the file and those beside it) in
    ``linecache``, so tracebacks of failed runs show the lines: a component has no files
    to read them from at run time. Entries without a modification time are never
    checked against the file system."""
    import linecache
    import os

    user = sys.modules.get(module)
    path = getattr(user, "__file__", None)
    if not path:
        return
    base = os.path.dirname(path)
    for loaded in list(sys.modules.values()):
        filename = getattr(loaded, "__file__", None)
        if not filename or not filename.endswith(".py") or not filename.startswith(base):
            continue
        lines = linecache.getlines(filename)
        if lines:
            linecache.cache[filename] = (sum(len(line) for line in lines), None, lines, filename)


def warm_up() -> None:
    """Computes what every call needs (signatures, resolved type hints) now that the
    module is whole, so the component starts with them instead of each instance
    computing them again."""
    from . import _registry, schema

    for item in list(_registry.flows().values()) + list(_registry.tasks().values()):
        schema.signature(item.fn)
        schema.type_hints(item.fn)
