"""File names that come from data (model names, run names) never leave their folder.

scales-viz writes files in two places only: the run store (``$SCALES_VIZ_STORE`` or
``~/.local/share/scales-viz/``) and the map cache (``$SCALES_VIZ_CACHE`` or
``~/.cache/scales-viz/maps``). Both folders come from the command line or the environment,
never from the web page. Names that end up in a file name (a model's name in a cache file)
go through :func:`child_path`, so ``../../etc/passwd`` or ``/abs/path`` stays a plain file name
inside the folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from scales_viz.errors import InputValueError

__all__ = ["child_path", "safe_file_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
MAX_NAME = 120


def safe_file_name(name: str) -> str:
    """`name` as one harmless file name: letters, digits, ``_``, ``-`` and inner dots.

    Every other run of characters (slashes, colons, NUL, spaces, ...) becomes ``_``; leading
    dots are dropped, so the result is never ``.``, ``..`` or hidden, and it is at most
    :data:`MAX_NAME` characters. An empty result becomes ``_``.
    """
    cleaned = _UNSAFE.sub("_", str(name)).lstrip(".")[:MAX_NAME]
    return cleaned or "_"


def child_path(root: Path, name: str) -> Path:
    """``root / safe_file_name(name)``, checked to lie directly inside `root`.

    Raises:
        InputValueError: the result would escape `root` (cannot happen for a cleaned name;
            kept as a guard against future changes).
    """
    root = Path(root)
    path = root / safe_file_name(name)
    if path.resolve().parent != root.resolve():
        raise InputValueError(f"file name {name!r} would leave the folder {root}.")
    return path
