"""Start and best markers of a trajectory drawn on a map or a plane (shared by the figures)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

__all__ = ["BEST_MARK", "START_MARK", "path_markers"]

#: (label, symbol, fill colour) of the two markers.
START_MARK = ("start", "triangle-up", "#2ca02c")
BEST_MARK = ("best", "star", "#ffbf00")


def path_markers(
    name: str,
    coords: np.ndarray,
    *,
    start: bool = True,
    best: int | None = None,
    scatter: type[go.Scatter] | type[go.Scattergl] = go.Scatter,
    size: int = 14,
) -> list[go.Scatter | go.Scattergl]:
    """Traces named ``NAME start`` (first point) and ``NAME best`` (point `best`), if any.

    Args:
        name: the trajectory's name.
        coords: its `n x 2` coordinates in step order.
        start: mark the first point.
        best: index of the point to mark as best (ignored when out of range).
        scatter: the trace class (``go.Scattergl`` on WebGL figures).
        size: marker size in pixels.
    """
    coords = np.asarray(coords, dtype=np.float32).reshape(-1, 2)
    marks: list[tuple[str, int, str, str]] = []
    if start and len(coords):
        marks.append((START_MARK[0], 0, START_MARK[1], START_MARK[2]))
    if best is not None and 0 <= best < len(coords):
        marks.append((BEST_MARK[0], best, BEST_MARK[1], BEST_MARK[2]))
    return [
        scatter(
            x=coords[index : index + 1, 0],
            y=coords[index : index + 1, 1],
            mode="markers",
            marker={
                "size": size,
                "symbol": symbol,
                "color": colour,
                "line": {"width": 1, "color": "black"},
            },
            name=f"{name} {label}",
            hovertemplate=f"{label} (point {index})<extra>{name}</extra>",
        )
        for label, index, symbol, colour in marks
    ]
