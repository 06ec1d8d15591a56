"""Inspect view: the linked selection decoded and scored, realism against objective, export,
and a slice through three chosen points."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import streamlit as st

from scales_viz.errors import ScalesVizError
from scales_viz.figures.objects import plot_expression_fit
from scales_viz.figures.runs import plot_realism_objective
from scales_viz.models import VAEModel
from scales_viz.selection import Selection, inspect_table, pick_three
from scales_viz_app.ui.cache import cached
from scales_viz_app.ui.pages import page
from scales_viz_app.ui.render import INVALID_MARK, VALID_MARK, render_object
from scales_viz_app.ui.state import current_model, device, get_selection

SHOWN_OBJECTS = 12
SCORE_COLUMNS = ("scales", "likelihood", "prior", "distance_to_data")


def _table(model: VAEModel, selection: Selection) -> pd.DataFrame:
    key = (model.name, selection.source, selection.z.tobytes(), str(device()))
    return cached(
        "inspect",
        key,
        lambda progress: inspect_table(model, selection, device=device(), progress=progress),
        label=f"Scoring {selection.size} selected latents",
    )


def _objects(model: VAEModel, selection: Selection, table: pd.DataFrame) -> None:
    import torch

    shown = min(SHOWN_OBJECTS, selection.size)
    st.subheader(f"Decoded (first {shown} of {selection.size})")
    objects = model.decode(torch.as_tensor(selection.z[:shown], dtype=torch.float32))
    objective = next(iter(model.objectives))
    columns = 3 if model.render == "text" else 6
    for start in range(0, shown, columns):
        cells = st.columns(columns)
        for offset, cell in enumerate(cells):
            row = start + offset
            if row >= shown:
                break
            with cell:
                valid = bool(table["valid"].iloc[row])
                caption = (
                    f"{row}: {table['label'].iloc[row]} · {VALID_MARK if valid else INVALID_MARK}"
                    f" · {objective} {table[objective].iloc[row]:.3f}"
                    f" · ScaLES {table['scales'].iloc[row]:.2f}"
                )
                if model.render == "text" and model.manifest.get("task") == "expressions":
                    st.plotly_chart(
                        plot_expression_fit(str(objects[row])), key=f"inspect_fit_{row}"
                    )
                    st.caption(caption)
                else:
                    render_object(model, objects[row], caption)


def _scatter(model: VAEModel, selection: Selection, table: pd.DataFrame) -> None:
    objective = st.selectbox("Objective", list(model.objectives), key="inspect_objective")
    realism = st.radio(
        "Realism score", ["scales", "likelihood"], horizontal=True, key="inspect_realism"
    )
    points = pd.DataFrame(
        {
            "run": "selection",
            "optimizer": selection.source,
            "seed": 0,
            "step": 0,
            "index": np.arange(len(table)),
            "objective": table[objective].to_numpy(np.float64),
            "scales": table["scales"].to_numpy(np.float64),
            "likelihood": table["likelihood"].to_numpy(np.float64),
            "valid": table["valid"].to_numpy(bool),
        }
    )
    st.plotly_chart(
        plot_realism_objective(points, realism=realism, title=f"Realism vs {objective}"),
        key="inspect_scatter",
    )


def _exports(table: pd.DataFrame) -> None:
    def parquet() -> bytes:
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        return buffer.getvalue()

    # Built on click (deferred data), not on every rerun.
    cols = st.columns(2)
    cols[0].download_button(
        "Selection CSV", lambda: table.to_csv(index=False), "selection.csv", "text/csv"
    )
    cols[1].download_button("Selection Parquet", parquet, "selection.parquet")


def _slice_through(selection: Selection) -> None:
    if selection.size < 3:
        st.caption("Select three or more points to make a slice through them.")
        return
    rows = st.multiselect(
        "Three points for a slice",
        list(range(selection.size)),
        default=[0, 1, 2],
        max_selections=3,
        format_func=lambda r: f"{r}: {selection.labels[r]}",
        key="inspect_plane_rows",
    )
    if st.button("Make a slice through these points", key="inspect_make_slice"):
        try:
            points = pick_three(selection, rows)
        except ScalesVizError as exc:
            st.error(str(exc))
            return
        st.session_state["slice_plane"] = "through three points"
        st.session_state["slice_points"] = "; ".join(
            ", ".join(f"{v:.6g}" for v in p) for p in points
        )
        st.success("The Slices view now has that plane: open Slices.")
        st.page_link(page("slices"), label="Open Slices")


def main() -> None:
    """Render the view."""
    model = current_model()
    if model is None:
        st.stop()
    st.title(f"Inspect: {model.name}")
    found = get_selection(model.name)
    if found is None:
        st.info(
            "Nothing selected on this model yet. Click cells on Slices, lasso points on "
            "Projection, or click proposals on Optimisers."
        )
        st.stop()
    selection = found[0]
    try:
        table = _table(model, selection)
    except ScalesVizError as exc:
        st.error(str(exc))
        st.stop()
    st.caption(
        f"{selection.size} point(s) from {selection.source}; "
        f"{int(table['valid'].sum())} decode to valid objects."
    )
    shown = [c for c in table.columns if not str(c).startswith("z_")]
    st.dataframe(table[shown], hide_index=False, key="inspect_table")
    _objects(model, selection, table)
    _scatter(model, selection, table)
    _exports(table)
    _slice_through(selection)


main()
