"""Model sources: where an engine's weights come from, checked so that no request escapes.

A source is either a path relative to the worker's models directory (`llama-3-8b`,
`org/llama@v2/checkpoint`) or a hub id (`name` or `org/name`, with an optional `@revision`).
Two steps, on two sides:

- `check_source` is syntactic and runs on the control plane when a deployment is created: it
  refuses absolute paths, `..` components, NUL and control characters, backslashes (a Windows path
  or an attempt to smuggle a separator) and over-long strings, and returns the normalised source.
- `resolve_source` runs on the worker, which has the files: an existing entry under the models
  directory wins, resolved through every symlink and refused if it lands outside the resolved
  models directory; otherwise a valid hub id is returned as is, for the engine to fetch.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

MAX_SOURCE_CHARS = 1024

# Hub ids as the Hugging Face hub allows them: one or two name segments, optionally pinned to a
# revision (a branch, tag or commit; branches may hold "/", as in "refs/pr/1").
_NAME = r"[A-Za-z0-9._-]+"
_HUB_ID = re.compile(rf"(?P<repo>{_NAME}(?:/{_NAME})?)(?:@(?P<revision>[A-Za-z0-9._/-]+))?")


def check_source(source: str) -> str:
    """The normalised source (a relative path or a hub id); ValueError saying what is wrong."""
    if not isinstance(source, str) or not source.strip():
        raise ValueError("the model source is empty: give a path under the models directory or a hub id")
    source = source.strip()
    if len(source) > MAX_SOURCE_CHARS:
        raise ValueError(
            f"the model source is too long ({len(source)} characters; at most {MAX_SOURCE_CHARS})"
        )
    if any(ord(char) < 32 or ord(char) == 127 for char in source):
        raise ValueError("the model source contains a control character (NUL, newline, ...)")
    if "\\" in source:
        raise ValueError("the model source contains a backslash; use '/' between path components")
    if source.startswith("/"):
        raise ValueError("the model source is an absolute path; give a path relative to the models directory")
    if source.startswith("~"):
        raise ValueError("the model source starts with '~'; give a path relative to the models directory")
    parts = [part for part in source.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ValueError(
            "the model source contains a '..' component; it must stay inside the models directory"
        )
    if not parts:
        raise ValueError("the model source names the models directory itself, not a model in it")
    return str(PurePosixPath(*parts))


def is_hub_id(source: str) -> bool:
    """Whether `source` is shaped like a hub id (`name`, `org/name`, optionally `@revision`)."""
    match = _HUB_ID.fullmatch(source)
    return match is not None and ".." not in source and not source.startswith(".")


def split_revision(hub_id: str) -> tuple[str, str | None]:
    """`org/name@rev` → (`org/name`, `rev`); ValueError for something that is not a hub id."""
    match = _HUB_ID.fullmatch(hub_id)
    if match is None or not is_hub_id(hub_id):
        raise ValueError(f"{hub_id!r} is not a hub id (org/name, optionally @revision)")
    return match["repo"], match["revision"]


def resolve_source(source: str, models_dir: Path) -> Path | str:
    """The absolute path of `source` under `models_dir`, or `source` as a hub id.

    ValueError when the source is malformed, when a path (through symlinks) leaves the models
    directory, or when it is neither an existing entry nor a hub id.
    """
    normalised = check_source(source)
    root = Path(os.path.realpath(models_dir))
    candidate = root / normalised
    # lexists: a dangling symlink is an entry too; treating it as a hub id would hide the problem.
    if os.path.lexists(candidate):
        resolved = Path(os.path.realpath(candidate))
        if not resolved.is_relative_to(root):
            raise ValueError(f"model source {normalised!r} leads outside the models directory; refused")
        if not resolved.exists():
            raise ValueError(f"model source {normalised!r} is a broken link under the models directory")
        return resolved
    if is_hub_id(normalised):
        return normalised
    raise ValueError(f"model source {normalised!r} was not found under the models directory")
