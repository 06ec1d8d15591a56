"""The projection scatter: a 2-D map of latents coloured by a score, with runs and selection.

A scatter of the map's points (WebGL ``Scattergl`` above ``GL_THRESHOLD`` drawn points, SVG
below), one trace for numbers (continuous colour
bar) or one per category (validity, source). Points outside the current selection are drawn
grey, never hidden. Runs are paths in step order with start and best markers. Every map point
carries its index in ``customdata`` so a lasso or box selection maps back to stored latents
(decoding is always from stored latents, never from a position in the map).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from scales_viz.figures.markers import path_markers

__all__ = ["MAP_TRACE_PREFIX", "RunPath", "plot_projection", "sample_indices"]

#: Map point traces are named with this prefix (selections are read from them only).
#: Map-point traces carry this ``meta`` (their names are plain words: "valid", "data", ...).
MAP_TRACE_PREFIX = "map"
GREY = "rgba(170, 170, 170, 0.35)"
CATEGORY_COLOURS = {
    "valid": "#2ca02c",
    "invalid": "#d62728",
    "data": "#1f77b4",
    "prior": "#ff7f0e",
    "far": "#9467bd",
}
#: Above this many drawn points the map uses WebGL (``Scattergl``); below, SVG draws faster
#: (no WebGL context to set up, which is slow in browsers without a GPU).
GL_THRESHOLD = 3000
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


@dataclass(frozen=True)
class RunPath:
    """A run drawn on the map: coordinates in step order and its best point's index."""

    name: str
    coords: np.ndarray
    best: int | None = None
    #: Draw as a path with a start marker (a run); False: markers only (a selection).
    path: bool = True


def sample_indices(n: int, limit: int, *, seed: int = 0, keep: Sequence[int] = ()) -> np.ndarray:
    """At most `limit` of `n` indices (sorted), always including `keep` (e.g. the selection)."""
    if n <= limit:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    kept = np.unique(np.asarray([k for k in keep if 0 <= k < n], dtype=np.int64))
    rest = np.setdiff1d(np.arange(n), kept)
    room = max(0, limit - kept.size)
    chosen = rng.choice(rest, size=min(room, rest.size), replace=False)
    return np.sort(np.concatenate([kept, chosen]).astype(np.int64))


def _hover(labels: Sequence[str], index: np.ndarray) -> list[str]:
    return [labels[i] if i < len(labels) else f"point {i}" for i in index.tolist()]


def plot_projection(
    coords: np.ndarray,
    values: np.ndarray,
    *,
    colour_title: str,
    categorical: bool = False,
    labels: Sequence[str] = (),
    selected: Sequence[int] | None = None,
    runs: Sequence[RunPath] = (),
    limit: int = 20_000,
    title: str | None = None,
) -> go.Figure:
    """The map scatter.

    Args:
        coords: `n x 2` map coordinates.
        values: `n` numbers (continuous colour) or labels (``categorical=True``).
        colour_title: colour bar or legend title.
        categorical: colour by category (one trace per category) instead of a colour bar.
        labels: hover text per point.
        selected: indices of the selected points; the others are drawn grey. None: no
            selection (all in colour).
        runs: trajectories to draw as paths.
        limit: draw at most this many map points (a seeded sample that keeps the selection);
            the title then says "showing N of M".
        title: figure title.
    """
    coords = np.asarray(coords, dtype=np.float32).reshape(-1, 2)
    n = coords.shape[0]
    values = np.asarray(values)
    if values.shape[0] != n:
        raise ValueError(f"values must have one entry per point ({n}); got {values.shape[0]}.")
    chosen = set(int(i) for i in selected) if selected is not None else None
    shown = sample_indices(n, limit, keep=sorted(chosen or ()))
    fig = go.Figure()
    scatter = go.Scattergl if shown.size > GL_THRESHOLD else go.Scatter
    in_selection = (
        np.ones(shown.size, bool)
        if chosen is None
        else np.array([int(i) in chosen for i in shown], bool)
    )

    def points(index: np.ndarray, name: str, marker: dict[str, object], extra: str = "") -> None:
        """One trace of map points; `customdata` holds their indices into the map."""
        fig.add_trace(
            scatter(
                x=coords[index, 0],
                y=coords[index, 1],
                mode="markers",
                marker=marker,
                name=name,
                meta=MAP_TRACE_PREFIX,
                customdata=index,
                text=_hover(labels, index),
                hovertemplate="%{text}" + extra,
            )
        )

    grey = shown[~in_selection]
    if grey.size:
        points(grey, "not selected", {"size": 5, "color": GREY}, "<extra></extra>")
    lit = shown[in_selection]
    if categorical:
        cats = [str(v) for v in values[lit]]
        for k, cat in enumerate(sorted(set(cats))):
            colour = CATEGORY_COLOURS.get(cat, PALETTE[k % len(PALETTE)])
            index = lit[[c == cat for c in cats]]
            points(index, cat, {"size": 6, "color": colour}, "<extra>" + cat + "</extra>")
    elif lit.size:
        numbers = values[lit].astype(np.float64)
        finite = np.isfinite(numbers)
        numbers = np.where(finite, numbers, np.nan)
        marker = {
            "size": 6,
            "color": numbers.astype(np.float32),
            "colorscale": "Viridis",
            "showscale": True,
            "colorbar": {"title": {"text": colour_title}},
            "cmin": float(np.nanmin(numbers)) if finite.any() else 0.0,
            "cmax": float(np.nanmax(numbers)) if finite.any() else 1.0,
        }
        points(
            lit, colour_title, marker, f"<br>{colour_title} %{{marker.color:.3f}}<extra></extra>"
        )
    for k, run in enumerate(runs):
        path = np.asarray(run.coords, dtype=np.float32).reshape(-1, 2)
        run_colour = PALETTE[k % len(PALETTE)]
        fig.add_trace(
            go.Scatter(
                x=path[:, 0],
                y=path[:, 1],
                mode="lines+markers" if run.path else "markers",
                line={"color": run_colour, "width": 2},
                marker=(
                    {"size": 5, "color": run_colour}
                    if run.path
                    else {"size": 11, "color": run_colour, "symbol": "circle-open"}
                ),
                name=run.name,
                text=[f"step {i}" for i in range(len(path))],
                hovertemplate="%{text}<extra>" + run.name + "</extra>",
            )
        )
        for trace in path_markers(run.name, path, start=run.path, best=run.best):
            fig.add_trace(trace)
    heading = title or "UMAP of latents"
    if shown.size < n:
        heading += f" (showing {shown.size} of {n} points)"
    fig.update_layout(
        title={"text": heading},
        xaxis={"title": {"text": "UMAP 1"}, "showticklabels": False},
        yaxis={"title": {"text": "UMAP 2"}, "showticklabels": False},
        dragmode="lasso",
        legend={"orientation": "h", "y": -0.12},
        height=620,
        margin={"l": 40, "r": 20, "t": 50, "b": 40},
    )
    return fig
