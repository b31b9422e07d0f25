"""Artifacts attached to the current run (Prefect's ``prefect.artifacts``).

A ``key`` groups the versions of one artifact across runs (lowercase letters, digits and
dashes); without one, the artifact belongs to the run only. Each function returns the
artifact's id.
"""

from __future__ import annotations

import json
from typing import Any, Optional, Union

from . import _context, _host, _json


class ArtifactError(Exception):
    """The host refused an artifact (a bad key, too large, ...)."""


def _create(data: Any, key: Optional[str], description: Optional[str]) -> str:
    if not _context.on_host():
        return ""
    artifacts = _host.interface("artifacts")
    artifact = artifacts.Artifact(key=key, description=description, data=data)
    try:
        return artifacts.create(artifact)
    except Exception as error:  # noqa: BLE001 - a WIT result error
        value = _host.err_value(error)
        if value is not None:
            raise ArtifactError(str(value)) from None
        raise


def create_markdown_artifact(markdown: str, key: Optional[str] = None,
                             description: Optional[str] = None) -> str:
    """Creates a Markdown artifact (a report)."""
    artifacts = _host.interface("artifacts") if _context.on_host() else None
    data = artifacts.ArtifactData_Markdown(markdown) if artifacts else None
    return _create(data, key, description)


def create_table_artifact(table: Union[list, dict], key: Optional[str] = None,
                          description: Optional[str] = None) -> str:
    """Creates a table artifact from a list of rows (dicts or lists) or a dict of columns."""
    if isinstance(table, dict):
        columns = list(table)
        length = max((len(v) for v in table.values()), default=0)
        table = [{c: (table[c][i] if i < len(table[c]) else None) for c in columns} for i in range(length)]
    if not isinstance(table, (list, tuple)):
        raise TypeError("a table artifact needs a list of rows or a dict of columns")
    text = json.dumps(_json.to_jsonable(list(table)))
    artifacts = _host.interface("artifacts") if _context.on_host() else None
    data = artifacts.ArtifactData_Table(text) if artifacts else None
    return _create(data, key, description)


def create_link_artifact(link: str, link_text: Optional[str] = None, key: Optional[str] = None,
                         description: Optional[str] = None) -> str:
    """Creates a link artifact."""
    artifacts = _host.interface("artifacts") if _context.on_host() else None
    data = artifacts.ArtifactData_Link(artifacts.Link(url=link, text=link_text)) if artifacts else None
    return _create(data, key, description)


def create_image_artifact(image_url: str, key: Optional[str] = None,
                          description: Optional[str] = None) -> str:
    """Creates an image artifact (Markdown showing the image)."""
    return create_markdown_artifact(f"![{description or 'image'}]({image_url})", key, description)


def create_progress_artifact(progress: float, key: Optional[str] = None,
                             description: Optional[str] = None) -> str:
    """Creates a progress artifact (a percentage, 0 to 100)."""
    artifacts = _host.interface("artifacts") if _context.on_host() else None
    data = artifacts.ArtifactData_Progress(float(progress)) if artifacts else None
    return _create(data, key, description)


def update_progress_artifact(artifact_id: str, progress: float,
                             description: Optional[str] = None) -> None:
    """Updates a progress artifact this run created."""
    if not _context.on_host():
        return
    try:
        _host.interface("artifacts").update_progress(artifact_id, float(progress))
    except Exception as error:  # noqa: BLE001 - a WIT result error
        value = _host.err_value(error)
        if value is not None:
            raise ArtifactError(str(value)) from None
        raise
