"""The slice figure, tested on its data and structure (no browser)."""

from __future__ import annotations

import base64
import json
import logging

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from scales_viz.figures.slices import (
    CELL_LAYER,
    PointsOverlay,
    _get_slice_info,
    plot_slice,
)
from scales_viz.slices import SliceGrid, SliceSpec, axis_plane

R = 9


def _grid(valid_fraction: float = 0.5, values: np.ndarray | None = None) -> SliceGrid:
    spec = SliceSpec(axis_plane(np.zeros(3), 0, 2), extent=2.0, resolution=R)
    rng = np.random.default_rng(0)
    scores = {
        "scales": values if values is not None else rng.normal(size=(R, R)),
        "likelihood": rng.normal(size=(R, R)),
    }
    valid = rng.random((R, R)) < valid_fraction
    return SliceGrid(
        spec=spec,
        scores=scores,
        valid=valid,
        decoded=["x"] * R * R,
        objectives={"fit": rng.normal(size=(R, R))},
    )


def _trace(fig: go.Figure, name: str) -> go.BaseTraceType:
    (trace,) = [t for t in fig.data if t.name == name]
    return trace


def test_info_holds_float32_values_and_the_mask() -> None:
    grid = _grid()
    info = _get_slice_info(grid, score="likelihood", objective="fit", threshold=0.1)
    assert info.values.dtype == np.float32 and info.values.shape == (R, R)
    np.testing.assert_allclose(info.values, grid.scores["likelihood"].astype(np.float32))
    assert info.invalid is not None and (info.invalid == ~grid.valid).all()
    assert info.contours is not None and info.contours[0] == "fit"
    assert info.axis.shape == (R,) and info.axis[0] == -2.0 and info.axis[-1] == 2.0


def test_unknown_score_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="no score 'qed'"):
        plot_slice(_grid(), score="qed")


def test_figure_has_heatmap_mask_contours_overlays_and_the_cell_layer_last() -> None:
    overlay = PointsOverlay("data", np.zeros((4, 2)), np.arange(4.0), ["a", "b", "c", "d"])
    path = PointsOverlay("run", np.ones((3, 2)), np.zeros(3), path=True)
    fig = plot_slice(_grid(), objective="fit", threshold=0.0, overlays=[overlay, path])
    types = [t.type for t in fig.data]
    assert types == [
        "heatmap",
        "heatmap",
        "contour",
        "contour",
        "scattergl",
        "scattergl",
        "scattergl",
        "scattergl",
    ]
    assert [t.name for t in fig.data[4:]] == ["data", "run", "run start", CELL_LAYER]
    assert _trace(fig, "run").mode == "lines+markers"
    assert _trace(fig, "data").mode == "markers"
    assert fig.layout.xaxis.title.text == "a (along u)"
    assert fig.layout.yaxis.scaleanchor == "x"
    assert fig.data[0].colorbar.title.text == "ScaLES"


def test_trajectory_gets_start_and_best_markers_at_those_points() -> None:
    coords = np.array([[0.0, 0.0], [0.5, -0.5], [1.0, 1.0], [-1.0, 0.2]])
    run = PointsOverlay("gp run", coords, np.zeros(4), path=True, best=2)
    fig = plot_slice(_grid(), overlays=[run])
    start, best = _trace(fig, "gp run start"), _trace(fig, "gp run best")
    assert (list(start.x), list(start.y)) == ([0.0], [0.0])
    assert (list(best.x), list(best.y)) == ([1.0], [1.0])
    assert start.marker.symbol == "triangle-up" and best.marker.symbol == "star"
    assert fig.data[-1].name == CELL_LAYER  # markers never cover the click layer
    # out-of-range best and plain point overlays get no markers
    fig = plot_slice(_grid(), overlays=[PointsOverlay("pts", coords, np.zeros(4), best=9)])
    assert [t.name for t in fig.data if t.type == "scattergl"] == ["pts", CELL_LAYER]


def test_cell_layer_has_one_invisible_marker_per_cell_with_row_and_column() -> None:
    fig = plot_slice(_grid())
    cells = _trace(fig, CELL_LAYER)
    assert cells.marker.opacity == 0.0
    assert len(cells.x) == R * R
    custom = np.asarray(cells.customdata)
    axis = np.linspace(-2, 2, R)
    k = 5 * R + 7  # row 5, column 7
    assert custom[k].tolist() == [5, 7]
    assert cells.x[k] == pytest.approx(axis[7]) and cells.y[k] == pytest.approx(axis[5])
    assert cells.hoverinfo != "skip"


def test_mask_can_be_turned_off_and_is_absent_when_all_cells_are_valid() -> None:
    assert (
        len([t for t in plot_slice(_grid(), show_invalid=False).data if t.type == "heatmap"]) == 1
    )
    assert len([t for t in plot_slice(_grid(valid_fraction=2.0)).data if t.type == "heatmap"]) == 1


def test_figure_json_carries_float32_typed_arrays_and_round_trips() -> None:
    fig = plot_slice(_grid(), objective="fit", threshold=0.0)
    text = fig.to_json()
    heat = json.loads(text)["data"][0]["z"]
    assert heat["dtype"] == "f4"  # plotly's typed-array form: compact, no float64 text
    shape = tuple(int(side) for side in str(heat["shape"]).split(","))
    values = np.frombuffer(base64.b64decode(heat["bdata"]), dtype="<f4").reshape(shape)
    np.testing.assert_array_equal(values, fig.data[0].z)
    assert pio.from_json(text).data[-1].name == CELL_LAYER
    assert len(text) < 60_000


def test_all_non_finite_grid_draws_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        fig = plot_slice(_grid(values=np.full((R, R), -np.inf)))
    assert "no finite" in caplog.text
    assert fig.data[0].type == "heatmap"
