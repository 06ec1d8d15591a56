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


def test_figure_draws_run_and_data_points_above_the_cell_layer() -> None:
    overlay = PointsOverlay("data", np.zeros((4, 2)), np.arange(4.0), ["a", "b", "c", "d"])
    path = PointsOverlay("run", np.ones((3, 2)), np.zeros(3), path=True)
    fig = plot_slice(_grid(), objective="fit", threshold=0.0, overlays=[overlay, path])
    names = [t.name for t in fig.data]
    # heatmap, invalid dimming, validity boundary, objective, threshold; then the cells; then
    # the points, so that hovering or clicking a run point reaches the point, not the cell.
    assert [t.type for t in fig.data[:5]] == ["heatmap", "heatmap", "contour", "contour", "contour"]
    assert names[5:] == [
        CELL_LAYER,
        "data",
        "run",
        "run start",
        "start of each run",
        "best of each run",
    ]
    assert names.index(CELL_LAYER) < names.index("data") < names.index("run start")
    assert _trace(fig, "run").mode == "lines+markers"
    assert _trace(fig, "data").mode == "markers"
    assert fig.layout.xaxis.title.text == "a (along u)"
    assert fig.layout.yaxis.scaleanchor == "x"
    assert fig.data[0].colorbar.title.text == "ScaLES"


def test_each_run_has_one_legend_entry_and_its_points_say_which_they_are() -> None:
    coords = np.array([[0.0, 0.0], [0.5, -0.5], [1.0, 1.0], [-1.0, 0.2]])
    runs = [
        PointsOverlay("gp run", coords, np.zeros(4), ["s0", "s1", "s2", "s3"], path=True, best=2),
        PointsOverlay("other", coords[:3], np.zeros(3), path=True),
    ]
    fig = plot_slice(_grid(), overlays=runs)
    start, best = _trace(fig, "gp run start"), _trace(fig, "gp run best")
    assert (list(start.x), list(start.y)) == ([0.0], [0.0])
    assert (list(best.x), list(best.y)) == ([1.0], [1.0])
    assert start.marker.symbol == "triangle-up" and best.marker.symbol == "star"
    shown = [t.name for t in fig.data if t.showlegend is not False and t.name != CELL_LAYER]
    assert shown.count("gp run") == 1 and "gp run start" not in shown
    assert shown.count("start of each run") == 1  # the markers are explained once
    assert start.legendgroup == best.legendgroup == "gp run"
    # Clicks on a run point identify the overlay and the point, never a cell.
    points = np.asarray(_trace(fig, "gp run").customdata)
    assert points.tolist() == [[-1, 0], [-1, 1], [-1, 2], [-1, 3]]
    assert np.asarray(best.customdata).tolist() == [[-1, 2]]
    assert np.asarray(_trace(fig, "other").customdata)[:, 0].tolist() == [-2, -2, -2]
    assert "s2<br>distance off the plane 0.000" in _trace(fig, "gp run").text[2]
    # out-of-range best and plain point overlays get no markers
    fig = plot_slice(_grid(), overlays=[PointsOverlay("pts", coords, np.zeros(4), best=9)])
    assert [t.name for t in fig.data if t.type == "scattergl"] == [CELL_LAYER, "pts"]


def test_the_legend_sits_below_the_axis_title_with_room_for_it() -> None:
    fig = plot_slice(_grid())
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.yanchor == "top"
    assert fig.layout.legend.y < -0.1 and fig.layout.margin.b >= 120


def test_titles_read_as_english() -> None:
    from scales_viz.slices import plane_through, random_plane

    grid = _grid()
    three = SliceGrid(
        spec=SliceSpec(plane_through(np.eye(3)), 2.0, R), scores=grid.scores, valid=grid.valid
    )
    assert plot_slice(three).layout.title.text == "ScaLES on the plane through three points"
    rand = SliceGrid(
        spec=SliceSpec(random_plane(np.zeros(3), seed=4), 2.0, R),
        scores=grid.scores,
        valid=grid.valid,
    )
    assert plot_slice(rand).layout.title.text == "ScaLES on a random plane (seed 4)"
    assert plot_slice(grid).layout.title.text == "ScaLES on the plane of latent axes z0, z2"


def test_validity_is_a_boundary_line_over_lightly_dimmed_invalid_cells() -> None:
    fig = plot_slice(_grid())
    boundary = [t for t in fig.data if t.type == "contour" and "boundary" in t.name]
    assert len(boundary) == 1 and boundary[0].contours.start == 0.5
    dimmed = next(t for t in fig.data if t.name == "invalid decoding")
    assert "0.35" in dimmed.colorscale[0][1]  # light enough to read the colour under it


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
    assert CELL_LAYER in [t.name for t in pio.from_json(text).data]
    assert len(text) < 60_000


def test_all_non_finite_grid_draws_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        fig = plot_slice(_grid(values=np.full((R, R), -np.inf)))
    assert "no finite" in caplog.text
    assert fig.data[0].type == "heatmap"
