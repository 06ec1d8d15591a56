"""Slices view: ScaLES (or a baseline) over a plane, with overlays, click-to-decode and export."""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
import torch

from scales_viz.cluster import CLUSTER_MIN_CELLS, Cluster
from scales_viz.errors import ScalesVizError
from scales_viz.evaluation import card_record
from scales_viz.figures.slices import SCORE_TITLES, PointsOverlay, plot_slice
from scales_viz.models import VAEModel
from scales_viz.selection import MAX_SELECTION, Selection
from scales_viz.slices import (
    SLICE_CHUNK,
    Plane,
    SliceGrid,
    SliceSpec,
    axis_plane,
    compute_slice,
    parse_point,
    pca_plane,
    plane_through,
    random_plane,
)
from scales_viz_app.ui.cache import cached, is_cached
from scales_viz_app.ui.render import INVALID_MARK, VALID_MARK, plane_mosaic, render_object
from scales_viz_app.ui.state import (
    SLICE_SELECTION_KEY,
    TRAJECTORIES_KEY,
    current_model,
    device,
    get_cluster,
    get_selection,
    set_selection,
)

PLANES = ("random", "axes", "PCA of data", "through three points", "through a run")
RESOLUTIONS = (17, 33, 65, 129, 255)
#: Grids above this many cells are shown coarse first while the full grid computes.
PROGRESSIVE_CELLS = 33 * 33
#: Below this share of valid prior decodings (the card's), Slices opens through data points.
FEW_VALID_PRIOR = 0.25
COARSE_RESOLUTION = 17
MOSAIC_SIDE = 15
DATA_SCORE_SAMPLE = 200
CHART_KEY = "slice_chart"
PICKED_KEY = "slice_picked_points"
MAX_TABLE_ROWS = 2000
#: Grids estimated to take longer than this (seconds) wait for a click.
ASK_ABOVE_S = 10.0
#: Seconds of work per chunk of a grid (progress and Cancel act between chunks).
CHUNK_SECONDS = 0.5
MIN_CHUNK = 4
#: Sides of the two probe grids that measure the cost per latent.
PROBE_SIDES = (2, 6)
APPROVED_KEY = "slice_approved"
CANCELLED_KEY = "slice_cancelled"
LAST_FIGURE_KEY = "slice_last_figure"


def _run_plane(model: VAEModel, name: str | None) -> Plane:
    """The plane through a sent run's start, best and end points."""
    runs = {str(r["name"]): r for r in _model_runs(model)}
    if name not in runs:
        raise ScalesVizError(
            "No run to take the plane from: send runs from the Optimisers page first."
        )
    z = np.asarray(runs[name]["z"], dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != model.latent_dim or len(z) < 3:
        raise ScalesVizError(
            f"run {name!r} needs at least 3 points of size {model.latent_dim}; got shape {z.shape}."
        )
    best = runs[name].get("best")
    middle = int(best) if best is not None and 0 < int(best) < len(z) - 1 else len(z) // 2
    return plane_through([z[0], z[middle], z[-1]])


def _model_runs(model: VAEModel) -> list[dict[str, Any]]:
    """The runs sent from Optimisers that belong to `model` (never another model's)."""
    return [
        run
        for run in st.session_state.get(TRAJECTORIES_KEY, [])
        if run.get("model", model.name) == model.name
        and np.asarray(run.get("z", [])).ndim == 2
        and np.asarray(run["z"]).shape[1] == model.latent_dim
    ]


def _plane(model: VAEModel, form: dict[str, Any]) -> Plane:
    data = model.data_latents
    seed = int(form["seed"])
    if form["plane"] == "through a run":
        return _run_plane(model, form["run"])
    if form["plane"] == "through three points":
        points = [
            parse_point(text, data_latents=data, prior_scale=model.prior_scale, seed=seed)
            for text in form["points"]
        ]
        return plane_through(points)
    origin = parse_point(
        form["origin"], data_latents=data, prior_scale=model.prior_scale, seed=seed
    )
    if form["plane"] == "axes":
        return axis_plane(origin, int(form["axis_i"]), int(form["axis_j"]))
    if form["plane"] == "PCA of data":
        return pca_plane(data, origin=origin)
    return random_plane(origin, seed=seed)


@st.cache_resource(show_spinner=False)
def _cost_model(name: str, device_name: str) -> tuple[float, float]:
    """Measured `(fixed seconds, seconds per latent)` of a slice on this model and device,
    from two small grids (a warm-up first), so a grid's time is `fixed + cells * per_latent`."""
    from scales_viz_app.ui.state import get_model

    model = get_model(name)

    def timed(side: int) -> float:
        spec = SliceSpec(axis_plane(np.zeros(model.latent_dim), 0, 1), 1.0, side)
        start = time.perf_counter()
        compute_slice(model, spec, objectives=(), device=torch.device(device_name))
        return time.perf_counter() - start

    timed(PROBE_SIDES[0])  # warm-up
    small, large = (timed(side) for side in PROBE_SIDES)
    cells = [side * side for side in PROBE_SIDES]
    per_latent = max(0.0, (large - small) / (cells[1] - cells[0]))
    return max(0.0, small - per_latent * cells[0]), per_latent


def _ask_before_long_work(model: VAEModel, spec: SliceSpec, key: Any, chart: Any) -> Any:
    """Before a grid estimated to take over ASK_ABOVE_S seconds, say so and wait for a click;
    while one computes, offer Cancel (a click stops the computation at the next chunk). The
    previous figure stays on screen meanwhile. Returns Cancel's placeholder, for the caller to
    empty once the grid is ready."""
    cells = spec.resolution**2
    fixed, per_latent = _cost_model(model.name, str(device()))
    cluster = _cluster_for(model, spec)
    workers = len(cluster) if cluster is not None else 1
    estimate = fixed + cells * per_latent / workers
    where = cluster.describe() if cluster is not None else device().type
    previous = st.session_state.get(LAST_FIGURE_KEY)
    if previous is not None and previous[0] == model.name:
        chart.plotly_chart(previous[1], key="slice_previous")
    if st.session_state.get(CANCELLED_KEY) == key:
        st.info("Cancelled. Nothing was kept of the unfinished grid.")
        if st.button(f"Compute the {spec.resolution}x{spec.resolution} grid", key="slice_go"):
            st.session_state.pop(CANCELLED_KEY, None)
            st.session_state[APPROVED_KEY] = key
            st.rerun()
        st.stop()
    if estimate > ASK_ABOVE_S and st.session_state.get(APPROVED_KEY) != key:
        st.info(
            f"This {spec.resolution}x{spec.resolution} grid ({cells:,} latents) will take about "
            f"{estimate:.0f} s on {where} (measured {1000 * per_latent:.1f} ms per latent on "
            f"this model, {device().type} here). Pick a lower resolution, or compute it:"
        )
        if st.button("Compute it", key="slice_go", type="primary"):
            st.session_state[APPROVED_KEY] = key
            st.rerun()
        st.stop()
    holder = st.empty()  # emptied once the grid is ready: Cancel only while it computes
    if holder.button("Cancel", key="slice_cancel", help="stop computing this grid"):
        st.session_state[CANCELLED_KEY] = key
        st.session_state.pop(APPROVED_KEY, None)
        st.rerun()
    return holder


def _default_plane(model: VAEModel) -> int:
    """Index into PLANES: a random plane through the origin, or, on a model whose prior
    samples mostly decode invalid (its measured card), the plane through three data latents,
    where there is something valid to see."""
    record = card_record(model.directory) if model.directory else {}
    prior_valid = record.get("validity", {}).get("prior")
    if isinstance(prior_valid, int | float) and prior_valid < FEW_VALID_PRIOR:
        return PLANES.index("through three points")
    return 0


def _default_resolution(model: VAEModel) -> int:
    """Index into RESOLUTIONS: 33 when the decoder has a fast exact Jacobian, else 17.

    Sequence decoders without ``forward_with_jacobian`` go through generic forward-mode AD
    (about 0.1 s per point for the molecules GRU on this CPU), so start small there.
    """
    fast = model.likelihood == "bernoulli" or hasattr(model.decoder, "forward_with_jacobian")
    return 1 if fast else 0


def _controls(model: VAEModel) -> dict[str, Any]:
    with st.form("slice_form"):
        cols = st.columns(4)
        plane = cols[0].selectbox("Plane", PLANES, index=_default_plane(model), key="slice_plane")
        origin = cols[1].text_input(
            "Origin", "zero", key="slice_origin", help="zero, data N, prior N, or d numbers"
        )
        seed = cols[2].number_input("Seed", 0, 1_000_000, 0, key="slice_seed")
        extent = cols[3].slider("Extent (x prior scale)", 0.5, 10.0, 3.0, 0.5, key="slice_extent")
        cols = st.columns(4)
        axis_i = cols[0].number_input("Axis i", 0, model.latent_dim - 1, 0, key="slice_axis_i")
        axis_j = cols[1].number_input(
            "Axis j", 0, model.latent_dim - 1, min(1, model.latent_dim - 1), key="slice_axis_j"
        )
        resolution = cols[2].selectbox(
            "Resolution", RESOLUTIONS, index=_default_resolution(model), key="slice_resolution"
        )
        points = cols[3].text_input(
            "Three points",
            "data 0; data 1; data 2",
            key="slice_points",
            help="for 'through three points': separate with ';'",
        )
        sent = [str(r["name"]) for r in _model_runs(model)]
        run = st.selectbox(
            "Run (for 'through a run': its start, best and end)",
            sent,
            key="slice_run",
            placeholder="send runs from the Optimisers page",
        )
        st.form_submit_button("Compute slice")
    return {
        "run": run,
        "plane": plane,
        "origin": origin,
        "seed": seed,
        "extent": extent,
        "axis_i": axis_i,
        "axis_j": axis_j,
        "resolution": resolution,
        "points": [p.strip() for p in points.split(";")][:3] if ";" in points else [points],
    }


def _cluster_for(model: VAEModel, spec: SliceSpec) -> Cluster | None:
    """The Ray cluster for grids this large (``serve --ray``), else None."""
    if spec.resolution**2 < CLUSTER_MIN_CELLS:
        return None
    return get_cluster(model.name)


def _grid(model: VAEModel, spec: SliceSpec) -> SliceGrid:
    key = (model.name, spec.key(), str(device()))
    cluster = _cluster_for(model, spec)
    where = f" on the {cluster.describe()}" if cluster is not None else ""
    _, per_latent = _cost_model(model.name, str(device()))
    # Chunks of about CHUNK_SECONDS here, so that the bar moves and Cancel acts promptly.
    chunk = int(min(SLICE_CHUNK, max(MIN_CHUNK, CHUNK_SECONDS / max(per_latent, 1e-9))))
    return cached(
        "slices",
        key,
        lambda progress: compute_slice(
            model,
            spec,
            objectives=tuple(model.objectives),
            device=device(),
            progress=progress,
            cluster=cluster,
            chunk=chunk,
        ),
        label=f"Scoring {spec.resolution}x{spec.resolution} latents{where}",
    )


def _data_scales(model: VAEModel) -> np.ndarray:
    z = model.data_latents[:DATA_SCORE_SAMPLE].double()
    return cached(
        "data_scales",
        model.name,
        lambda progress: model.scales(z, progress=progress).numpy(),
        label="Scoring data latents for the threshold",
    )


def _run_texts(run: dict[str, Any]) -> list[str]:
    """Hover text of each point of a sent run: step, objective, validity, ScaLES."""
    n = len(run["z"])

    def pick(key: str, k: int) -> Any:
        values = run.get(key) or []
        return values[k] if k < len(values) else None

    def number(value: Any) -> str:
        return "n/a" if value is None else f"{float(value):.4g}"

    texts = []
    for k in range(n):
        step = pick("step", k)
        valid = pick("valid", k)
        texts.append(
            f"step {k if step is None else step}: objective {number(pick('objective', k))}, "
            f"{'valid' if valid else 'invalid' if valid is not None else 'validity n/a'}, "
            f"ScaLES {number(pick('scales', k))}"
        )
    return texts


def _overlays(
    model: VAEModel, plane: Plane, extent: float, max_distance: float
) -> tuple[list[PointsOverlay], list[np.ndarray]]:
    """The overlays to draw, and the stored latents of each one's points (for decoding a
    clicked point exactly, not the cell under it)."""
    overlays: list[PointsOverlay] = []
    latents: list[np.ndarray] = []
    if max_distance > 0:
        data = model.data_latents.double().numpy()
        coords, dist = plane.project(data)
        keep = (dist <= max_distance) & (np.abs(coords) <= extent).all(axis=1)
        texts = [
            str(model.data_objects[i])[:60] if model.render != "image" else f"data {i}"
            for i in np.flatnonzero(keep)
        ]
        overlays.append(PointsOverlay("data latents", coords[keep], dist[keep], texts))
        latents.append(data[keep])
    linked = get_selection(model.name)
    if linked is not None and linked[0].source != "slices":
        coords, dist = plane.project(linked[0].z)
        overlays.append(
            PointsOverlay(f"selection ({linked[0].source})", coords, dist, linked[0].labels)
        )
        latents.append(np.asarray(linked[0].z, dtype=np.float64))
    for run in _model_runs(model):
        z = np.asarray(run["z"], dtype=np.float64)
        coords, dist = plane.project(z)
        best = run.get("best")
        overlays.append(
            PointsOverlay(
                str(run["name"]),
                coords,
                dist,
                _run_texts(run),
                path=True,
                best=None if best is None else int(best),
            )
        )
        latents.append(z)
    return overlays, latents


def _on_select() -> None:
    """Keep the chart's picked points with their custom data (callback: Streamlit rebuilds
    the chart widget whenever the figure changes, so the return value of the rerun can be
    empty)."""
    event = st.session_state.get(CHART_KEY) or {}
    points = event.get("selection", {}).get("points", [])
    st.session_state[PICKED_KEY] = [
        (float(p["x"]), float(p["y"]), list(p.get("customdata") or []))
        for p in points
        if "x" in p and "y" in p
    ]


def _picked_overlay_points(
    picked: list[tuple[float, float, list[Any]]],
    overlays: list[PointsOverlay],
    latents: list[np.ndarray],
) -> tuple[np.ndarray, list[str]] | None:
    """The stored latents and labels of picked overlay points (run, data or selection
    points), or None when the pick holds none (then it is cells)."""
    rows, labels = [], []
    for _x, _y, custom in picked:
        if len(custom) == 2 and int(custom[0]) < 0:
            k, i = -int(custom[0]) - 1, int(custom[1])
            if 0 <= k < len(overlays) and 0 <= i < len(latents[k]):
                rows.append(latents[k][i])
                text = overlays[k].text[i] if i < len(overlays[k].text) else f"point {i}"
                labels.append(f"{overlays[k].name}: {text}")
    if not rows:
        return None
    return np.stack(rows), labels


def _cells_at(grid: SliceGrid, coords: list[tuple[float, float]]) -> list[tuple[int, int]]:
    """The cells under plane coordinates `(a, b)` (duplicates dropped, order kept)."""
    axis = grid.spec.axis()
    cells: list[tuple[int, int]] = []
    for a, b in coords:
        cell = (int(np.abs(axis - b).argmin()), int(np.abs(axis - a).argmin()))
        if cell not in cells:
            cells.append(cell)
    return cells


def _decode_panel(model: VAEModel, grid: SliceGrid, cells: list[tuple[int, int]]) -> None:
    r = grid.spec.resolution
    cells = [(row, col) for row, col in cells if 0 <= row < r and 0 <= col < r]
    if not cells:
        return
    st.subheader("Decoded cell" if len(cells) == 1 else f"{len(cells)} selected cells")
    row, col = cells[0]
    z = torch.as_tensor(grid.cell_latent(row, col))[None]
    obj = model.decode(z.float())[0]
    valid = model.is_valid(obj)
    left, right = st.columns([1, 2])
    with left:
        render_object(model, obj, VALID_MARK if valid else INVALID_MARK)
    with right:
        axis = grid.spec.axis()
        facts = {"cell (row, col)": f"({row}, {col})", "a, b": f"{axis[col]:.3f}, {axis[row]:.3f}"}
        facts["valid"] = "yes" if valid else "no"
        for name, values in grid.scores.items():
            facts[SCORE_TITLES.get(name, name)] = f"{values[row, col]:.4f}"
        for name, values in grid.objectives.items():
            facts[name] = f"{values[row, col]:.4f}"
        st.table(pd.DataFrame({"value": facts}))
    if len(cells) > 1:
        shown = _cells_table(grid, cells[:MAX_TABLE_ROWS])
        st.dataframe(shown, hide_index=True, key="slice_selection_table")


def _decode_points(model: VAEModel, z: np.ndarray, labels: list[str]) -> None:
    """Decode picked run, data or selection points at their stored latents."""
    st.subheader("Decoded point" if len(z) == 1 else f"{len(z)} picked points")
    latent = torch.as_tensor(np.asarray(z[:1]), dtype=torch.float64)
    obj = model.decode(latent.float())[0]
    valid = model.is_valid(obj)
    left, right = st.columns([1, 2])
    with left:
        render_object(model, obj, VALID_MARK if valid else INVALID_MARK)
    with right:
        facts = {"point": labels[0] if labels else "", "valid": "yes" if valid else "no"}
        facts["ScaLES (at the stored latent)"] = f"{float(model.scales(latent)[0]):.4f}"
        for name in model.objectives:
            facts[name] = f"{float(model.objective_values([obj], name)[0]):.4f}"
        st.table(pd.DataFrame({"value": facts}))


def _cells_table(grid: SliceGrid, cells: list[tuple[int, int]]) -> pd.DataFrame:
    axis = grid.spec.axis()
    r = grid.spec.resolution
    rows, cols = np.array([c[0] for c in cells]), np.array([c[1] for c in cells])
    table = pd.DataFrame({"row": rows, "col": cols, "a": axis[cols], "b": axis[rows]})
    table["valid"] = grid.valid[rows, cols]
    if grid.decoded and any(grid.decoded):
        table["decoded"] = [grid.decoded[i * r + j] for i, j in cells]
    for name, values in {**grid.scores, **grid.objectives}.items():
        table[name] = values[rows, cols]
    return table


def _all_cells_table(grid: SliceGrid) -> pd.DataFrame:
    r = grid.spec.resolution
    return _cells_table(grid, [(i, j) for i in range(r) for j in range(r)])


def _grid_npz(grid: SliceGrid) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        axis=grid.spec.axis(),
        valid=grid.valid,
        origin=grid.spec.plane.origin,
        u=grid.spec.plane.u,
        v=grid.spec.plane.v,
        **{f"score_{k}": v for k, v in grid.scores.items()},
        **{f"objective_{k}": v for k, v in grid.objectives.items()},
    )
    return buffer.getvalue()


def _exports(grid: SliceGrid, fig: Any) -> None:
    # Files are built when a button is clicked (deferred data), not on every rerun: the HTML
    # alone carries plotly.js (about 5 MB) and would otherwise sit in each session's memory.
    st.subheader("Export")
    cols = st.columns(5)
    cols[0].download_button(
        "Grid CSV", lambda: _all_cells_table(grid).to_csv(index=False), "slice.csv", "text/csv"
    )
    cols[1].download_button("Grid NPZ", lambda: _grid_npz(grid), "slice.npz")
    cols[2].download_button(
        "Figure HTML", lambda: fig.to_html(include_plotlyjs=True), "slice.html", "text/html"
    )
    if cols[3].button("Prepare PNG and SVG", key="slice_prepare_images"):
        try:
            st.session_state["slice_png"] = fig.to_image(format="png")
            st.session_state["slice_svg"] = fig.to_image(format="svg")
        except Exception as exc:  # kaleido missing or no browser: report, do not crash
            st.warning(
                "Static export failed. It needs the export extra "
                f"(pip install 'scales-viz[export]') and a chromium browser: {exc}"
            )
    if "slice_png" in st.session_state:
        cols[3].download_button("Figure PNG", st.session_state["slice_png"], "slice.png")
        cols[4].download_button("Figure SVG", st.session_state["slice_svg"], "slice.svg")


def main() -> None:
    """Render the view."""
    model = current_model()
    if model is None:
        st.stop()
    st.title(f"Slices: {model.name}")
    form = _controls(model)
    try:
        plane = _plane(model, form)
        extent = float(form["extent"]) * model.prior_scale
        spec = SliceSpec(plane, extent, int(form["resolution"]))
    except ScalesVizError as exc:
        st.error(str(exc))
        st.stop()
    cols = st.columns(5)
    score = cols[0].selectbox(
        "Colour by", list(SCORE_TITLES), format_func=SCORE_TITLES.get, key="slice_score"
    )
    show_invalid = cols[1].toggle("Validity mask", True, key="slice_mask")
    objective = cols[2].selectbox(
        "Objective contours", ["none", *model.objectives], key="slice_objective"
    )
    percentile = cols[3].number_input(
        "Threshold percentile",
        0.0,
        100.0,
        5.0,
        key="slice_threshold_pct",
        help="ScaLES threshold = this percentile of the data latents' scores (0: off)",
    )
    near = cols[4].number_input(
        "Data within (x prior scale)",
        0.0,
        100.0,
        0.5,
        key="slice_near",
        help="Show data latents this close to the plane (0: none)",
    )
    # The estimate, Cancel and the progress bar sit above the figure: a figure that is
    # replaced while they show (the previous one, then the coarse preview) never moves them.
    status = st.container()
    chart = st.empty()
    full_key = (model.name, spec.key(), str(device()))
    cancel = None
    if not is_cached("slices", full_key):
        with status:
            cancel = _ask_before_long_work(model, spec, full_key, chart)
            if spec.resolution**2 > PROGRESSIVE_CELLS:
                coarse = _grid(model, SliceSpec(plane, extent, COARSE_RESOLUTION))
                chart.plotly_chart(
                    plot_slice(
                        coarse, score=score, show_invalid=show_invalid, title="coarse preview"
                    ),
                    key="slice_preview",
                )
    with status:
        grid = _grid(model, spec)
    if cancel is not None:
        cancel.empty()
    st.session_state.pop(CANCELLED_KEY, None)
    threshold = None
    if percentile > 0:
        threshold = float(np.percentile(_data_scales(model), percentile))
    overlays, overlay_latents = _overlays(model, plane, extent, float(near) * model.prior_scale)
    fig = plot_slice(
        grid,
        score=score,
        show_invalid=show_invalid,
        objective=None if objective == "none" else objective,
        threshold=threshold,
        overlays=overlays,
    )
    with chart.container():
        left, right = st.columns([3, 2]) if model.render == "image" else (st.container(), None)
        with left:
            st.plotly_chart(
                fig, key=CHART_KEY, on_select=_on_select, selection_mode=("points", "box")
            )
            st.session_state[LAST_FIGURE_KEY] = (model.name, fig)
        if right is not None:
            with right:
                plane_mosaic(model, plane, extent, MOSAIC_SIDE)
    st.caption(
        f"{int(grid.valid.sum())} of {grid.valid.size} cells decode to valid objects. "
        "Click a cell, or box-select a region, to decode it."
    )
    picked = st.session_state.pop(PICKED_KEY, None)
    owner = (model.name, spec.key())
    if picked:
        points = _picked_overlay_points(picked, overlays, overlay_latents)
        if points is not None:  # run, data or selection points: their own stored latents
            z, labels = points
            st.session_state[SLICE_SELECTION_KEY] = {"owner": owner, "cells": [], "points": True}
            set_selection(
                Selection(
                    model=model.name,
                    source="slices",
                    z=z[:MAX_SELECTION],
                    labels=tuple(labels[:MAX_SELECTION]),
                )
            )
        else:
            cells = _cells_at(grid, [(x, y) for x, y, _ in picked])[:MAX_SELECTION]
            st.session_state[SLICE_SELECTION_KEY] = {"owner": owner, "cells": cells}
            set_selection(
                Selection(
                    model=model.name,
                    source="slices",
                    z=np.array([grid.cell_latent(r, c) for r, c in cells]),
                    labels=tuple(f"cell ({r}, {c})" for r, c in cells),
                )
            )
    chosen = st.session_state.get(SLICE_SELECTION_KEY)
    # Picks belong to the model and grid they were made on; another model or grid drops them.
    if not isinstance(chosen, dict) or chosen.get("owner") != owner:
        chosen = None
    if chosen and chosen.get("points"):
        linked = get_selection(model.name)
        if linked is not None:
            _decode_points(model, linked[0].z, list(linked[0].labels))
    elif chosen:
        _decode_panel(model, grid, [tuple(c) for c in chosen["cells"]])
    _exports(grid, fig)


main()
