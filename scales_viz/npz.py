"""Checking an ``.npz`` archive from its member headers before any array is read.

``np.load(..., allow_pickle=False)`` never unpickles, but it trusts each member's header: a
forged header that claims 10^12 rows makes numpy allocate terabytes, and a small zip can
unpack to gigabytes. :func:`npz_headers` reads only the headers and refuses such archives.
Used by the run-file reader (:mod:`scales_viz.lso.io`) and the projection map reader.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scales_viz.errors import InputValueError

__all__ = ["npz_headers"]


def npz_headers(
    archive: Any, where: str, max_bytes: int
) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shapes and dtypes of an open ``NpzFile``'s members, read from their headers only.

    Raises:
        InputValueError: the members unpack to over `max_bytes`, a member holds Python
            objects (pickled data), or a header claims more data than its member holds.
    """
    headers: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    total = 0
    for info in archive.zip.infolist():
        total += info.file_size
        if total > max_bytes:
            raise InputValueError(
                f"{where} unpacks to over {max_bytes / 2**20:g} MiB (archive members); not read."
            )
        name = info.filename.removesuffix(".npy")
        with archive.zip.open(info) as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
        if dtype.hasobject:
            raise InputValueError(
                f"{where}: array {name!r} holds Python objects (pickled data), which are "
                f"never loaded; save plain numeric or string arrays."
            )
        claimed = math.prod(shape) * dtype.itemsize
        if claimed > info.file_size:
            raise InputValueError(
                f"{where}: array {name!r} claims shape {tuple(shape)} ({claimed} bytes) but "
                f"its member holds {info.file_size} bytes; the archive is damaged or forged."
            )
        headers[name] = (tuple(shape), dtype)
    return headers
