"""Schemathesis hooks for scripts/api-fuzz: what a fuzzer cannot make up by itself.

- A list's `cursor` is opaque and signed by the server: a string it did not issue is
  refused (400) by design, so in positive cases a generated cursor is replaced by one the
  same list issued (fetched with the same path and filters), or left out when the list
  has a single page. Negative cases keep theirs.
- Component uploads are raw `.wasm` bytes.
- The fuzzer's own API key is not revoked: every later request would be a 401.

scripts/api-fuzz sets WEIR_FUZZ_URL, WEIR_FUZZ_KEY and WEIR_FUZZ_KEY_ID.
"""

import json
import os
import urllib.parse
import urllib.request

import schemathesis
from hypothesis import strategies as st

URL = os.environ["WEIR_FUZZ_URL"]
KEY = os.environ["WEIR_FUZZ_KEY"]
KEY_ID = os.environ["WEIR_FUZZ_KEY_ID"]

schemathesis.openapi.media_type("application/wasm", st.binary(max_size=2048))

_cursors: dict[str, str | None] = {}


def _issued_cursor(case) -> str | None:
    """The next_cursor of the first page (of one item) of the list `case` reads."""
    path = case.operation.path
    for name, value in (case.path_parameters or {}).items():
        path = path.replace("{" + name + "}", urllib.parse.quote(str(value), safe=""))
    skip = ("cursor", "limit", "follow")
    query = {k: v for k, v in (case.query or {}).items() if k not in skip}
    query["limit"] = 1
    url = f"{URL}{path}?{urllib.parse.urlencode(query, doseq=True)}"
    if url not in _cursors:
        headers = {"Authorization": f"Bearer {KEY}", "Accept": "application/json"}
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                _cursors[url] = json.load(response).get("next_cursor")
        except (OSError, ValueError, AttributeError):
            # Not a page (a 404 for a made-up run, a bad filter): no cursor to give.
            _cursors[url] = None
    return _cursors[url]


def _positive(case) -> bool:
    meta = case.meta
    return meta is not None and meta.generation.mode.is_positive


@schemathesis.hook
def before_call(context, case, kwargs):
    method = case.operation.method.upper()
    if method == "DELETE" and case.operation.path == "/api/keys/{id}":
        if (case.path_parameters or {}).get("id") == KEY_ID:
            case.path_parameters["id"] = "00000000-0000-0000-0000-000000000000"
    if case.query and "cursor" in case.query and _positive(case):
        cursor = _issued_cursor(case)
        if cursor is None:
            del case.query["cursor"]
        else:
            case.query["cursor"] = cursor
