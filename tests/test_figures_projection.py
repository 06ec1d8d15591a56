"""The projection scatter, tested on its traces (no browser)."""

from __future__ import annotations

import numpy as np
import pytest

from scales_viz.figures.projection import (
    GREY,
    MAP_TRACE_PREFIX,
    RunPath,
    plot_projection,
    sample_indices,
)

RNG = np.random.default_rng(0)
COORDS = RNG.normal(size=(50, 2))
VALUES = RNG.normal(size=50)


def _map_traces(fig):  # type: ignore[no-untyped-def]
    return [t for t in fig.data if t.meta == MAP_TRACE_PREFIX]


def test_continuous_colour_has_one_trace_with_a_colour_bar_and_indices() -> None:
    fig = plot_projection(COORDS, VALUES, colour_title="ScaLES")
    (trace,) = _map_traces(fig)
    assert trace.type == "scatter"  # SVG for small maps
    big = plot_projection(RNG.normal(size=(4000, 2)), np.zeros(4000), colour_title="s")
    assert _map_traces(big)[0].type == "scattergl"
    assert trace.marker.showscale and trace.marker.colorbar.title.text == "ScaLES"
    assert list(trace.customdata) == list(range(50))
    np.testing.assert_allclose(trace.x, COORDS[:, 0].astype(np.float32))
    assert "showing" not in fig.layout.title.text


def test_selection_greys_the_rest_without_hiding_it() -> None:
    fig = plot_projection(COORDS, VALUES, colour_title="ScaLES", selected=[3, 7, 9])
    grey, lit = _map_traces(fig)
    assert grey.marker.color == GREY and len(grey.x) == 47
    assert sorted(lit.customdata) == [3, 7, 9]


def test_categories_get_one_trace_each() -> None:
    labels = np.array(["valid", "invalid"] * 25)
    fig = plot_projection(COORDS, labels, colour_title="validity", categorical=True)
    names = {t.name: len(t.x) for t in _map_traces(fig)}
    assert names == {"invalid": 25, "valid": 25}  # plain words in the legend


def test_sampling_keeps_the_selection_and_says_so() -> None:
    index = sample_indices(1000, 100, keep=[5, 999])
    assert len(index) == 100 and {5, 999} <= set(index.tolist())
    assert list(index) == sorted(index)
    coords = RNG.normal(size=(1000, 2))
    fig = plot_projection(coords, np.zeros(1000), colour_title="x", limit=100, selected=[5, 999])
    assert "showing 100 of 1000 points" in fig.layout.title.text
    lit = [t for t in _map_traces(fig) if not isinstance(t.marker.color, str)]
    assert sorted(lit[0].customdata) == [5, 999]


def test_runs_are_paths_with_start_and_best_markers() -> None:
    path = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5]])
    fig = plot_projection(COORDS, VALUES, colour_title="s", runs=[RunPath("gp", path, best=1)])
    by_name = {t.name: t for t in fig.data}
    assert by_name["gp"].mode == "lines+markers" and len(by_name["gp"].x) == 3
    assert list(by_name["gp start"].x) == [0.0]
    assert list(by_name["gp best"].x) == [1.0]


def test_wrong_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="one entry per point"):
        plot_projection(COORDS, VALUES[:3], colour_title="s")


def test_a_selection_from_another_view_is_drawn_as_open_markers_without_a_path() -> None:
    points = np.array([[0.0, 0.0], [1.0, 1.0]])
    fig = plot_projection(
        COORDS, VALUES, colour_title="s", runs=[RunPath("selection (slices)", points, path=False)]
    )
    by_name = {t.name: t for t in fig.data}
    trace = by_name["selection (slices)"]
    assert trace.mode == "markers" and trace.marker.symbol == "circle-open"
    assert "selection (slices) start" not in by_name
