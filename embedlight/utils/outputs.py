"""What every command does with its outputs: one guard before writing, one summary after.

* :func:`guard_output`: a file or folder that already holds output is never replaced silently. The
  command stops, naming the path and the override (``overwrite=true``), unless told to overwrite.
* :func:`write_summary`: the command's summary as JSON (atomically, :func:`~embedlight.utils.io.write_json`)
  and the lines it prints.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from embedlight.utils.io import write_json

log = logging.getLogger(__name__)


class OutputExistsError(FileExistsError):
    """An output already exists and ``overwrite`` was not given."""


def existing_output(path: str | os.PathLike) -> list[str]:
    """What at ``path`` counts as existing output: the file itself, or a non-empty folder's entries."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return [
            f"{name}{os.sep if os.path.isdir(os.path.join(path, name)) else ''}"
            for name in sorted(os.listdir(path))
        ]
    return [os.path.basename(path)] if os.path.lexists(path) else []


def guard_output(
    path: str | os.PathLike,
    overwrite: bool = False,
    *,
    key: str = "output",
    found: Sequence[str] | None = None,
    remove: Sequence[str] = (),
    what: str = "output",
    alternatives: str = "",
) -> bool:
    """Refuse to write ``path`` when it already holds output, unless ``overwrite``.

    Args:
        path: The output file or folder.
        overwrite: ``overwrite=true``: go on (and remove ``remove`` first).
        key: The config key that names ``path`` (for the message: "choose another <key>").
        found: What in ``path`` shows earlier output (names relative to a folder); default
            :func:`existing_output` (the file, or a non-empty folder's entries).
        remove: On overwrite, these entries of the folder ``path`` (files or folders) are deleted first,
            so that nothing of the old output can be mistaken for the new one. Files written atomically
            need no removal: the new file replaces the old one only when it is complete.
        what: What the output is, for the message ("a run", "a dataset").
        alternatives: Other ways out, for the message (e.g. "continue it with resume=auto").

    Returns:
        True if earlier output was found (and ``overwrite`` let the command go on).

    Raises:
        OutputExistsError: ``path`` holds output and ``overwrite`` is false. The message names the path,
            what was found and ``overwrite=true``.
    """
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    a_file = found is None and not os.path.isdir(path)
    found = existing_output(path) if found is None else list(found)
    if not found:
        return False
    if overwrite:
        for name in remove:
            target = os.path.join(path, name)
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            elif os.path.lexists(target):
                os.remove(target)
        log.warning(
            "overwrite=true: replacing %s %s%s",
            what,
            path,
            f" (removed {', '.join(remove)})" if remove else "",
        )
        return True
    shown = ", ".join(found[:5]) + (f", ... ({len(found)} entries)" if len(found) > 5 else "")
    deletes = f" (deletes {', '.join(remove)})" if remove else ""
    ways = [alternatives] if alternatives else []
    ways += [f"replace it with overwrite=true{deletes}", f"choose another {key}"]
    advice = ", ".join(ways[:-1]) + f" or {ways[-1]}"
    head = f"{path} exists" if a_file else f"{path} already holds {what} ({shown})"
    raise OutputExistsError(f"{head}. {advice[0].upper()}{advice[1:]}.")


def plain(node: Any) -> Any:
    """A config node as plain Python, resolved (for summaries and library calls); anything else as is."""
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, (DictConfig, ListConfig)) else node


def write_summary(
    path: str | os.PathLike | None, summary: Mapping[str, Any], lines: str | Sequence[str] = ()
) -> dict[str, Any]:
    """Write a command's summary as indented JSON (atomically; skipped when ``path`` is None) and print
    ``lines``; returns the summary as a dict."""
    summary = dict(summary)
    if path:
        write_json(path, summary)
    for line in [lines] if isinstance(lines, str) else lines:
        print(line)
    return summary
