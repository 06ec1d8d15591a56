"""The slice heatmap: a score over a plane with overlays, clickable cell by cell.

Plotly heatmaps send no click or selection events to Streamlit, so an invisible WebGL marker
layer (one marker per cell, named ``cells``) lies over the heatmap; a click or box selection
returns its points with ``customdata = [row, col]``. Arrays go out as float32 to keep the
figure JSON small.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go

from scales_viz.figures.markers import BEST_MARK, START_MARK, path_markers
from scales_viz.scoring import SCORE_TITLES
from scales_viz.slices import SliceGrid

#: The two colours of the validity map.
VALID_CELL_COLOUR = "#2ca02c"
INVALID_CELL_COLOUR = "#d62728"

__all__ = [
    "CELL_LAYER",
    "SCORE_TITLES",
    "PointsOverlay",
    "SliceFigureInfo",
    "plot_slice",
    "plot_validity_map",
]

LOG = logging.getLogger(__name__)

CELL_LAYER = "cells"
#: Invalid cells are dimmed lightly; the boundary between valid and invalid is a line.
INVALID_COLOUR = "rgba(40, 40, 40, 0.35)"
BOUNDARY_COLOUR = "#111111"
THRESHOLD_COLOUR = "#ff4b4b"
CONTOUR_COLOUR = "rgba(255, 255, 255, 0.9)"
#: Figure side in pixels; the click markers are sized to tile it.
FIGURE_SIDE = 620


@dataclass(frozen=True)
class PointsOverlay:
    """Points drawn on the plane (data latents near it, or a trajectory in step order).

    Attributes:
        name: legend entry.
        coords: `n x 2` plane coordinates.
        distance: `n` distances off the plane.
        text: hover text per point.
        path: draw as a path (a trajectory) rather than markers only; a path gets a start
            marker on its first point.
        best: index of the point to mark as the best (a run's best valid point), or None.

    Each point carries ``customdata = [-(k + 1), i]`` (overlay `k` of the figure, point `i`),
    so a click on it can be told from a click on a cell (``[row, col]``, both >= 0).
    """

    name: str
    coords: np.ndarray
    distance: np.ndarray
    text: Sequence[str] = ()
    path: bool = False
    best: int | None = None


@dataclass(frozen=True)
class SliceFigureInfo:
    """Everything the slice figure draws, as plain arrays.

    Attributes:
        axis: `r` cell centres along each side.
        values: `r x r` float32 score shown as the heatmap (row = y).
        score_title: colour-bar title.
        invalid: `r x r` bool mask of invalid cells, or None for no mask.
        contours: `(name, r x r values)` of an objective to draw as contour lines, or None.
        threshold: the ScaLES threshold contour level, or None.
        overlays: points and paths to draw.
        title: figure title.
    """

    axis: np.ndarray
    values: np.ndarray
    score_title: str
    invalid: np.ndarray | None = None
    contours: tuple[str, np.ndarray] | None = None
    threshold: float | None = None
    overlays: Sequence[PointsOverlay] = field(default_factory=tuple)
    title: str = ""


def _get_slice_info(
    grid: SliceGrid,
    *,
    score: str = "scales",
    show_invalid: bool = True,
    objective: str | None = None,
    threshold: float | None = None,
    overlays: Sequence[PointsOverlay] = (),
    title: str = "",
) -> SliceFigureInfo:
    if score not in grid.scores:
        raise KeyError(f"the grid has no score {score!r}; it has {sorted(grid.scores)}.")
    contours = None
    if objective is not None and objective in grid.objectives:
        contours = (objective, grid.objectives[objective].astype(np.float32))
    values = grid.scores[score].astype(np.float32)
    finite = np.isfinite(values)
    if not finite.any():
        LOG.warning("slice figure: no finite %s values to draw", score)
    return SliceFigureInfo(
        axis=grid.spec.axis().astype(np.float32),
        values=values,
        score_title=SCORE_TITLES.get(score, score),
        invalid=~grid.valid if show_invalid else None,
        contours=contours,
        threshold=threshold,
        overlays=tuple(overlays),
        title=title or f"{SCORE_TITLES.get(score, score)} on {plane_phrase(grid.spec.plane.label)}",
    )


def plane_phrase(label: str) -> str:
    """A plane's label as words after "on": "the plane through three points"."""
    if not label:
        return "a plane"
    if label.startswith("axes"):
        return f"the plane of latent {label}"
    if label.startswith("random"):
        return f"a random plane{label.removeprefix('random')}"
    if label.startswith("PCA"):
        return "the plane of the data latents' top two principal directions"
    if label.startswith("through"):
        return f"the plane {label}"
    return f"the plane {label}"


def _cell_layer(axis: np.ndarray, values: np.ndarray, title: str) -> go.Scattergl:
    """One invisible marker per cell; it carries the hover text and takes the clicks.

    Every other trace that could win Plotly's "closest point" test at a cell either skips
    hover or comes before this layer; a heatmap or contour that won it would swallow the
    click (it has no point to select). The layout leaves `dragmode` alone: Streamlit turns
    select-on-click off while a box or lasso tool is active.
    """
    r = axis.shape[0]
    rows, cols = np.divmod(np.arange(r * r), r)
    size = max(2.0, FIGURE_SIDE / r)
    return go.Scattergl(
        x=axis[cols],
        y=axis[rows],
        customdata=np.stack([rows, cols], axis=1).astype(np.int32),
        text=[f"{v:.4g}" for v in values.ravel().tolist()],
        mode="markers",
        marker={"size": size, "symbol": "square", "opacity": 0.0},
        name=CELL_LAYER,
        showlegend=False,
        hovertemplate="a=%{x:.3f}, b=%{y:.3f}<br>" + title + " %{text}<extra></extra>",
    )


def _build_slice_figure(info: SliceFigureInfo) -> go.Figure:
    axis = info.axis
    fig = go.Figure()
    fig.add_trace(
        go.Heatmap(
            x=axis,
            y=axis,
            z=info.values,
            colorscale="Viridis",
            colorbar={"title": {"text": info.score_title}},
            name=info.score_title,
            hoverinfo="skip",
        )
    )
    if info.invalid is not None and info.invalid.any():
        mask = np.where(info.invalid, 1.0, np.nan).astype(np.float32)
        fig.add_trace(
            go.Heatmap(
                x=axis,
                y=axis,
                z=mask,
                colorscale=[[0, INVALID_COLOUR], [1, INVALID_COLOUR]],
                showscale=False,
                hoverinfo="skip",
                name="invalid decoding",
            )
        )
        if not info.invalid.all():
            fig.add_trace(
                go.Contour(
                    x=axis,
                    y=axis,
                    z=info.invalid.astype(np.float32),
                    contours={"coloring": "lines", "start": 0.5, "end": 0.5, "size": 1.0},
                    line={"color": BOUNDARY_COLOUR, "width": 2},
                    colorscale=[[0, BOUNDARY_COLOUR], [1, BOUNDARY_COLOUR]],
                    showscale=False,
                    hoverinfo="skip",
                    name="validity boundary (dimmed side: invalid)",
                    showlegend=True,
                )
            )
    if info.contours is not None:
        name, values = info.contours
        fig.add_trace(
            go.Contour(
                x=axis,
                y=axis,
                z=values,
                contours={"coloring": "lines", "showlabels": True},
                line={"color": CONTOUR_COLOUR, "width": 1},
                colorscale=[[0, CONTOUR_COLOUR], [1, CONTOUR_COLOUR]],
                showscale=False,
                hoverinfo="skip",
                name=name,
            )
        )
    if info.threshold is not None and np.isfinite(info.threshold):
        fig.add_trace(
            go.Contour(
                x=axis,
                y=axis,
                z=info.values,
                contours={
                    "coloring": "lines",
                    "start": info.threshold,
                    "end": info.threshold,
                    "size": 1.0,
                },
                line={"color": THRESHOLD_COLOUR, "width": 2, "dash": "dash"},
                colorscale=[[0, THRESHOLD_COLOUR], [1, THRESHOLD_COLOUR]],
                showscale=False,
                hoverinfo="skip",
                name=f"ScaLES threshold ({info.threshold:.2f})",
            )
        )
    # The cell layer goes under the overlays, so run and data points win hover and clicks.
    fig.add_trace(_cell_layer(axis, info.values, info.score_title))
    for k, overlay in enumerate(info.overlays):
        for trace in _overlay_traces(overlay, k):
            fig.add_trace(trace)
    if any(o.path for o in info.overlays):
        for label, symbol, colour in (START_MARK, BEST_MARK):
            fig.add_trace(
                go.Scatter(
                    x=[None],
                    y=[None],
                    mode="markers",
                    marker={"symbol": symbol, "color": colour, "size": 12, "line": {"width": 1}},
                    name=f"{label} of each run",
                    hoverinfo="skip",
                )
            )
    _plane_layout(fig, axis, info.title, width=FIGURE_SIDE + 180)
    _legend_below(fig)
    return fig


def _legend_below(fig: go.Figure) -> None:
    """A horizontal legend under the x axis title, with room kept for it."""
    fig.update_layout(
        legend={"orientation": "h", "x": 0.0, "y": -0.14, "yanchor": "top"},
        height=FIGURE_SIDE + 90,
        margin={"l": 60, "r": 20, "t": 50, "b": 150},
    )


def _plane_layout(fig: go.Figure, axis: np.ndarray, title: str, *, width: int) -> None:
    """Square plane axes over the grid's extent (shared by the slice figures)."""
    extent = float(axis[-1]) if axis.size else 1.0
    fig.update_layout(
        title={"text": title},
        width=width,
        height=FIGURE_SIDE,
        xaxis={"title": {"text": "a (along u)"}, "range": [-extent, extent], "constrain": "domain"},
        yaxis={"title": {"text": "b (along v)"}, "range": [-extent, extent], "scaleanchor": "x"},
        margin={"l": 60, "r": 20, "t": 50, "b": 60},
    )


def _overlay_traces(overlay: PointsOverlay, index: int) -> list[go.Scatter | go.Scattergl]:
    """The overlay's points (a path in step order for trajectories), then its start and best
    markers (one legend entry per overlay: the markers share its legend group)."""
    markers = path_markers(
        overlay.name,
        overlay.coords,
        start=overlay.path,
        best=overlay.best,
        scatter=go.Scattergl,
        size=15,
    )
    # path_markers gives the start (point 0) first, then the best.
    points = ([0] if overlay.path and len(overlay.coords) else []) + (
        [overlay.best] if overlay.best is not None else []
    )
    for marker, point in zip(markers, points, strict=False):
        marker.update(
            legendgroup=overlay.name,
            showlegend=False,
            customdata=np.array([[-(index + 1), point]], dtype=np.int32),
        )
    return [_overlay_trace(overlay, index), *markers]


def _overlay_trace(overlay: PointsOverlay, index: int) -> go.Scattergl:
    coords = np.asarray(overlay.coords, dtype=np.float32).reshape(-1, 2)
    distance = np.asarray(overlay.distance, dtype=np.float32)
    text = [
        f"{label}<br>distance off the plane {dist:.3f}"
        for label, dist in zip(overlay.text or [""] * len(distance), distance.tolist(), strict=True)
    ]
    n = coords.shape[0]
    customdata = np.stack([np.full(n, -(index + 1)), np.arange(n)], axis=1).astype(np.int32)
    return go.Scattergl(
        x=coords[:, 0],
        y=coords[:, 1],
        mode="lines+markers" if overlay.path else "markers",
        marker={
            "size": 8 if overlay.path else 7,
            "color": distance,
            "colorscale": "Greys",
            "reversescale": True,
            "line": {"width": 1, "color": "white"},
        },
        name=overlay.name,
        legendgroup=overlay.name,
        text=text,
        customdata=customdata,
        hovertemplate="%{text}<extra>" + overlay.name + "</extra>",
    )


def plot_slice(
    grid: SliceGrid,
    *,
    score: str = "scales",
    show_invalid: bool = True,
    objective: str | None = None,
    threshold: float | None = None,
    overlays: Sequence[PointsOverlay] = (),
    title: str = "",
) -> go.Figure:
    """The slice heatmap with its overlays and the invisible click layer.

    Args:
        grid: the computed slice.
        score: which score to colour by.
        show_invalid: grey out cells whose decoding is invalid.
        objective: draw contour lines of this objective (must be in the grid).
        threshold: draw the ScaLES contour at this level.
        overlays: points and trajectories projected onto the plane.
        title: figure title (default: the score and the plane).
    """
    info = _get_slice_info(
        grid,
        score=score,
        show_invalid=show_invalid,
        objective=objective,
        threshold=threshold,
        overlays=overlays,
        title=title,
    )
    return _build_slice_figure(info)


def plot_validity_map(
    grid: SliceGrid, *, title: str = "Validity of each cell's decoding"
) -> go.Figure:
    """Valid and invalid cells of a slice, on the same axes as :func:`plot_slice`.

    Two colours with a two-entry legend (not a continuous colour bar); hovering a cell shows
    its decoding when the grid has them.
    """
    axis = grid.spec.axis().astype(np.float32)
    r = axis.shape[0]
    decoded = list(grid.decoded) if len(grid.decoded) == r * r else [""] * (r * r)
    text = np.array(
        [
            f"{'valid' if ok else 'invalid'}: {obj}"
            for ok, obj in zip(grid.valid.ravel(), decoded, strict=True)
        ],
        dtype=object,
    ).reshape(r, r)
    fig = go.Figure(
        go.Heatmap(
            x=axis,
            y=axis,
            z=grid.valid.astype(np.float32),
            zmin=0.0,
            zmax=1.0,
            colorscale=[[0.0, INVALID_CELL_COLOUR], [1.0, VALID_CELL_COLOUR]],
            showscale=False,
            text=text,
            hovertemplate="a=%{x:.2f}, b=%{y:.2f}<br>%{text}<extra></extra>",
            name="validity",
        )
    )
    for label, colour in (("valid", VALID_CELL_COLOUR), ("invalid", INVALID_CELL_COLOUR)):
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                marker={"symbol": "square", "size": 12, "color": colour},
                name=f"{label} decoding",
                showlegend=True,
            )
        )
    _plane_layout(fig, axis, title, width=FIGURE_SIDE + 80)
    _legend_below(fig)
    return fig
