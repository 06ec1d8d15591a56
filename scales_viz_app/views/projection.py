"""Projection view: a UMAP map of the model's latents, coloured by a score, with runs and a
lasso/box selection that Inspect reads."""

from __future__ import annotations

import numpy as np
import streamlit as st

from scales_viz.errors import ScalesVizError
from scales_viz.figures.projection import RunPath, plot_projection
from scales_viz.models import VAEModel
from scales_viz.projection import ProjectionMap, get_map, warm_reducer
from scales_viz.selection import MAX_SELECTION, Selection
from scales_viz_app.ui.pages import page
from scales_viz_app.ui.state import (
    TRAJECTORIES_KEY,
    current_model,
    get_cluster,
    get_selection,
    set_selection,
)

CHART_KEY = "projection_chart"
PICKED_KEY = "projection_picked"
LIMITS = (2000, 5000, 20000)
#: Seconds between checks for the background UMAP refit.
REFRESH_S = 2.0


@st.cache_resource(show_spinner=False, max_entries=8)
def _map(name: str, _model: VAEModel) -> ProjectionMap:
    """The model's map (shipped with built-ins; else built once and cached on disk)."""
    bar = st.progress(0.0, text="Building the map")

    def progress(stage: str, done: int, total: int) -> None:
        bar.progress(min(1.0, done / max(total, 1)), text=f"{stage}: {done} of {total}")

    try:
        # Maps that have to be built score their points on the Ray cluster under serve --ray.
        return get_map(_model, progress=progress, cluster=get_cluster(name))
    finally:
        bar.empty()


def _colour_options(projection: ProjectionMap) -> dict[str, str]:
    options = {"ScaLES": "scales", "log p(argmax decoding)": "likelihood"}
    for key in projection.scores:
        if key.startswith("objective:"):
            options[key.split(":", 1)[1]] = key
    options["validity"] = "valid"
    options["source"] = "source"
    return options


def _on_select() -> None:
    event = st.session_state.get(CHART_KEY) or {}
    points = event.get("selection", {}).get("points", [])
    picked = []
    for point in points:
        index = point.get("customdata")
        if isinstance(index, list):
            index = index[0] if index else None
        if isinstance(index, int | float):
            picked.append(int(index))
    st.session_state[PICKED_KEY] = sorted(set(picked))


@st.fragment(run_every=REFRESH_S)
def _refresh_when_warm(projection: ProjectionMap) -> None:
    """Poll the background refit; rerun the whole page once the reducer is ready."""
    if projection.is_warm:
        st.rerun()


def _runs(projection: ProjectionMap, model: VAEModel) -> list[RunPath]:
    runs = [
        run
        for run in st.session_state.get(TRAJECTORIES_KEY, [])
        if run.get("model", model.name) == model.name
    ]
    if not runs:
        return []
    if not projection.is_warm:
        warm_reducer(projection)
        st.info(
            f"{len(runs)} run(s) will be drawn once the map's UMAP reducer is ready "
            "(it is being refitted in the background: about a minute after a fresh start); "
            "the page redraws itself then."
        )
        _refresh_when_warm(projection)
        return []
    paths = []
    for run in runs:
        z = np.asarray(run["z"], dtype=np.float64)
        if z.ndim == 2 and z.shape[1] == model.latent_dim and len(z):
            best = run.get("best")
            paths.append(
                RunPath(str(run["name"]), projection.transform(z), None if best is None else best)
            )
    return paths


def _foreign_selection(projection: ProjectionMap, selection: Selection) -> list[RunPath]:
    """A selection made on another view, placed in the map (once the reducer is warm)."""
    if not projection.is_warm:
        warm_reducer(projection)
        st.info(
            f"The {selection.size} point(s) selected on {selection.source} will be drawn once "
            "the map's UMAP reducer is ready (refitting in the background); the page redraws "
            "itself then."
        )
        _refresh_when_warm(projection)
        return []
    coords = projection.transform(selection.z)
    return [RunPath(f"selection ({selection.source})", coords, None, path=False)]


def main() -> None:
    """Render the view."""
    model = current_model()
    if model is None:
        st.stop()
    st.title(f"Projection: {model.name}")
    try:
        projection = _map(model.name, model)
    except ScalesVizError as exc:
        st.error(f"The map could not be made: {exc}")
        st.stop()
    options = _colour_options(projection)
    cols = st.columns(3)
    colour = cols[0].selectbox("Colour by", list(options), key="projection_colour")
    limit = cols[1].selectbox("Points drawn at most", LIMITS, key="projection_limit")
    cols[2].caption(
        f"{projection.size} latents: {int((projection.source == 'data').sum())} encoded data, "
        f"{int((projection.source == 'prior').sum())} prior, "
        f"{int((projection.source == 'far').sum())} far (5x prior scale). UMAP "
        f"n_neighbors={projection.settings.n_neighbors}, min_dist="
        f"{projection.settings.min_dist}, seed {projection.settings.seed}."
    )
    key = options[colour]
    values = projection.source if key == "source" else projection.scores[key]
    categorical = key in ("source", "valid")
    if key == "valid":
        values = np.where(values > 0.5, "valid", "invalid")
    picked = st.session_state.pop(PICKED_KEY, None)
    if picked:
        picked = sorted({int(i) for i in picked if 0 <= int(i) < projection.size})[:MAX_SELECTION]
        set_selection(
            Selection(
                model=model.name,
                source="projection",
                z=projection.latents[picked].astype(np.float64),
                labels=tuple(f"{projection.source[i]} #{i}" for i in picked),
            ),
            indices=picked,
        )
    selected = None
    current = get_selection(model.name)
    if current is not None and current[0].source == "projection" and current[1] is not None:
        selected = current[1]
    labels = [
        f"{projection.source[i]} #{i}: {projection.decoded[i][:40]}"
        if projection.decoded and projection.decoded[i]
        else f"{projection.source[i]} #{i}"
        for i in range(projection.size)
    ]
    runs = _runs(projection, model)
    if current is not None and current[0].source != "projection":
        runs += _foreign_selection(projection, current[0])
    fig = plot_projection(
        projection.coords,
        values,
        colour_title=colour,
        categorical=categorical,
        labels=labels,
        selected=selected,
        runs=runs,
        limit=int(limit),
    )
    st.plotly_chart(
        fig,
        key=CHART_KEY,
        on_select=_on_select,
        selection_mode=("lasso", "box", "points"),
    )
    if selected:
        st.success(
            f"{len(selected)} point(s) selected: open **Inspect** to see them decoded "
            "(only map points count; runs are drawn for context)."
        )
    else:
        st.caption("Lasso or box-select points to inspect them; unselected points turn grey.")
    st.page_link(page("inspect"), label="Inspect the selection", icon=":material/arrow_forward:")


main()
