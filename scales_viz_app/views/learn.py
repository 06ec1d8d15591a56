"""Learn view: the ScaLES paper's Figure 1, live, on a plane of the flagship expressions model."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from scales_viz.errors import ScalesVizError
from scales_viz.evaluation import card_record
from scales_viz.figures.objects import plot_expression_fit
from scales_viz.figures.slices import PointsOverlay, plot_slice, plot_validity_map
from scales_viz.lso import teaching
from scales_viz.lso.records import Step, best_path, points_frame
from scales_viz.lso.teaching import (
    Comparison,
    PlaneModel,
    compare_on_plane,
    learn_plane,
)
from scales_viz.models import VAEModel
from scales_viz.models.registry import model_dir
from scales_viz.slices import Plane, SliceGrid, SliceSpec, compute_slice
from scales_viz_app.ui.cache import cached, is_cached
from scales_viz_app.ui.render import INVALID_MARK, VALID_MARK
from scales_viz_app.ui.state import get_model

MODEL = "expressions"
OBJECTIVE = "fit_target"
#: Half-width of the plane shown, in prior scales, and cells per side.
EXTENT = 3.0
RESOLUTION = 33
#: Data points offered as starts (the ones closest to the plane).
START_CHOICES = 12
SUMMARY_FILE = "learn_summary.json"
CLICK_KEY = "learn_field_click"
START_KEY = "learn_start_click"
CLICKED_START = "the point I clicked on the field"
STEPS = (
    "1. A plane through latent space",
    "2. The ScaLES field and the validity map",
    "3. Optimisers with and without a penalty",
    "4. Over 20 starts",
    "5. How to read the views",
)


def _grid(model: VAEModel, plane: Plane) -> SliceGrid:
    spec = SliceSpec(plane, EXTENT * model.prior_scale, RESOLUTION)
    return cached(
        "learn_grid",
        (model.name, plane.key()),
        lambda progress: compute_slice(
            model,
            spec,
            scores=("scales", "distance_to_data"),
            objectives=(OBJECTIVE,),
            progress=progress,
        ),
        label="Scoring the plane (ScaLES, validity, objective)",
    )


def _auroc_text(name: str) -> str:
    try:
        return f"{float(card_record(model_dir(name))['auroc']['scales']):.2f}"
    except (KeyError, TypeError, ValueError):
        return "(not measured)"


def _step_plane(model: VAEModel, plane: Plane, grid: SliceGrid) -> None:
    st.markdown(
        "A VAE's decoder turns a point `z` of its latent space into an object; here, an "
        f"arithmetic expression such as `x*sin(x)`. This model's latent space has "
        f"**{model.latent_dim} dimensions**, too many to draw, so the walk uses one **plane** "
        "through it: the plane through the prior's centre spanned by the two directions along "
        "which the encoded training expressions vary most (PCA). Each point `(a, b)` of the "
        "plane is a latent `a u + b v`; every cell below is decoded, and hovering it shows "
        "the expression. Green cells decode to a valid expression, red ones to a string that "
        "does not parse."
    )
    st.plotly_chart(
        plot_validity_map(grid, title="What the decoder emits over the plane"), key="learn_map"
    )
    axis = grid.spec.axis()
    r = axis.shape[0]
    middle = r // 2
    picks = np.linspace(0, r - 1, 9).round().astype(int)
    rows = [
        {
            "a": f"{axis[c]:+.2f}",
            "b": "0",
            "decoding": grid.decoded[middle * r + c] if grid.decoded else "",
            "valid": VALID_MARK if grid.valid[middle, c] else INVALID_MARK,
        }
        for c in picks
    ]
    st.markdown("Walking along the `a` axis (b = 0): nearby points decode to similar strings.")
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="learn_walk_table")
    coords, distance = plane.project(model.data_latents)
    inside = (np.abs(coords) <= grid.spec.extent).all(axis=1)
    st.caption(
        f"{grid.valid.mean():.0%} of the {r * r} cells decode valid. {inside.mean():.0%} of the "
        f"{len(coords):,} encoded expressions project inside this window; their median distance "
        f"off the plane is {np.median(distance):.2f} (the plane holds two of {model.latent_dim} "
        "directions)."
    )


def _step_field(model: VAEModel, grid: SliceGrid) -> None:
    st.markdown(
        "**ScaLES** scores each latent point from the decoder alone: `-1/2 log det(J^T J)`, "
        "with `J` the Jacobian of the decoder's output distribution. High ScaLES marks regions "
        "where small moves in `z` change the output distribution little: the paper's "
        "argument is that such regions are where the decoder learnt realistic outputs. Beside "
        "it, the validity map of the same plane."
    )
    left, right = st.columns(2)
    with left:
        st.plotly_chart(
            plot_slice(grid, score="scales", show_invalid=False, title="ScaLES over the plane"),
            key="learn_field",
        )
    with right:
        st.plotly_chart(plot_validity_map(grid), key="learn_validity")
    scales = grid.scores["scales"]
    valid = grid.valid
    invalid_mean = np.nanmean(scales[~valid]) if (~valid).any() else float("nan")
    st.markdown(
        f"On this plane: {valid.mean():.0%} of cells are valid; mean ScaLES is "
        f"**{np.nanmean(scales[valid]):.1f} on valid cells** and "
        f"**{invalid_mean:.1f} on invalid ones**."
    )
    st.info(
        f"How far to trust it: over data, prior and far latents of the whole space, ScaLES "
        f"separates valid from invalid decodings with AUROC {_auroc_text(MODEL)} on this "
        f"smooth decoder and {_auroc_text('expressions-ar')} on `expressions-ar`, the same "
        "grammar with a decoder that feeds back its argmax (where the Jacobian only sees the "
        "latent context). The Model view compares the two families."
    )


def _data_starts(plane_model: PlaneModel, model: VAEModel) -> pd.DataFrame:
    """The reference data points closest to the plane, with their projections."""
    coords, distance = plane_model.plane.project(model.data_latents)
    inside = np.abs(coords).max(axis=1) <= EXTENT * model.prior_scale * 0.9
    order = [int(i) for i in np.argsort(distance) if inside[i]][:START_CHOICES]
    return pd.DataFrame(
        {
            "index": order,
            "expression": [str(model.data_objects[i]) for i in order],
            "a": coords[order, 0],
            "b": coords[order, 1],
            "distance": distance[order],
        }
    )


def _on_field_click() -> None:
    event = st.session_state.get(CLICK_KEY) or {}
    points = event.get("selection", {}).get("points", [])
    if points and "x" in points[0] and "y" in points[0]:
        st.session_state[START_KEY] = (float(points[0]["x"]), float(points[0]["y"]))
        st.session_state["learn_start_choice"] = CLICKED_START


def _controls(plane_model: PlaneModel, model: VAEModel) -> dict[str, Any]:
    starts = _data_starts(plane_model, model)
    labels = [CLICKED_START] + [
        f"data {row.index}: {row.expression} (projected to a={row.a:.2f}, b={row.b:.2f})"
        for row in starts.itertuples()
    ]
    clicked = st.session_state.get(START_KEY)
    choice = st.selectbox(
        "Start",
        labels,
        index=0 if clicked else 1,
        key="learn_start_choice",
        help="A data point's projection onto the plane, or a point clicked on the field below.",
    )
    if choice == labels[0]:
        start = clicked or (0.0, 0.0)
    else:
        row = starts.iloc[labels.index(choice) - 1]
        start = (float(row["a"]), float(row["b"]))
    cols = st.columns(2)
    penalty = cols[0].selectbox(
        "Penalty of the second run", ["scales", "prior", "likelihood"], key="learn_penalty"
    )
    # 1.0 on this plane: at 0.5 the penalty's effect on valid proposals was within the spread
    # between starts (+4.3 +- 5.2 points over 20 starts), at 1.0 it is +15.3 +- 4.5.
    alpha = cols[1].slider("Penalty weight alpha", 0.1, 2.0, 1.0, 0.1, key="learn_alpha")
    return {"start": (round(start[0], 4), round(start[1], 4)), "penalty": penalty, "alpha": alpha}


def _comparison(plane_model: PlaneModel, settings: dict[str, Any]) -> Comparison:
    return cached(
        "learn_runs",
        _run_key(plane_model, settings),
        lambda progress: compare_on_plane(
            plane_model,
            OBJECTIVE,
            settings["start"],
            penalty=settings["penalty"],
            alpha=settings["alpha"],
            evaluations=teaching.EVALUATIONS,
            callback=lambda done: progress(done, 2 * teaching.EVALUATIONS),
        ),
        label="Running gp-ascent twice (without and with the penalty)",
    )


def _run_key(plane_model: PlaneModel, settings: dict[str, Any]) -> tuple[Any, ...]:
    return (
        plane_model.name,
        plane_model.plane.key(),
        teaching.EVALUATIONS,
        *sorted(settings.items()),
    )


def _path(steps: list[Step], name: str) -> PointsOverlay:
    """A run's path on the plane (its latents are plane coordinates), one point per round."""
    frame = points_frame(steps, run=name, optimizer=name, seed=0)
    z, best = best_path(frame)
    texts = [
        f"{name}, round {step.step}: {int(step.valid.sum())} of {step.size} valid" for step in steps
    ]
    return PointsOverlay(name, z, np.zeros(len(z)), texts, path=True, best=best)


def _step_runs(model: VAEModel, plane_model: PlaneModel, grid: SliceGrid) -> None:
    st.markdown(
        "**Over-exploration.** `gp-ascent` (the paper's optimiser: a Gaussian process on the "
        "valid observations, then gradient ascent on its expected improvement) searches the "
        "plane's two coordinates for an expression that fits `1/3 + x + sin(x*x)`. Nothing "
        "stops it from proposing latents where the decoder emits invalid strings. The second "
        "run adds a realism penalty's unit gradient with weight alpha. Pick a start (a data "
        "point, or click the field), then run both."
    )
    settings = _controls(plane_model, model)
    st.caption(
        f"Start at a={settings['start'][0]:.2f}, b={settings['start'][1]:.2f}. Two runs of "
        f"{teaching.EVALUATIONS} evaluations each; the first time for a start this takes about a "
        "minute on a laptop CPU (then it is cached)."
    )
    key = _run_key(plane_model, settings)
    found: Comparison | None = None
    if is_cached("learn_runs", key) or st.button("Run both", key="learn_run", type="primary"):
        try:
            found = _comparison(plane_model, settings)
        except ScalesVizError as exc:
            st.error(str(exc))
            return
    overlays = []
    if found is not None:
        plain, penalised = found.summaries
        overlays = [
            _path(found.plain.steps, plain.label),
            _path(found.penalised.steps, penalised.label),
        ]
    fig = plot_slice(
        grid,
        score="scales",
        show_invalid=True,
        objective=OBJECTIVE,
        overlays=overlays,
        title="ScaLES (colour), invalid cells (dark), fit to the target (contours)",
    )
    st.plotly_chart(fig, key=CLICK_KEY, on_select=_on_field_click, selection_mode=("points",))
    if found is None:
        return
    _run_details(model, plane_model, found)


def _run_details(model: VAEModel, plane_model: PlaneModel, found: Comparison) -> None:
    rounds = min(len(found.plain.steps), len(found.penalised.steps))
    step = st.slider("Round", 0, rounds - 1, rounds - 1, key="learn_round")
    cols = st.columns(2)
    for col, result, summary in zip(
        cols, (found.plain, found.penalised), found.summaries, strict=True
    ):
        record = result.steps[step]
        finite = np.where(record.valid & np.isfinite(record.objective), record.objective, -np.inf)
        k = int(np.argmax(finite)) if np.isfinite(finite).any() else 0
        text = str(record.decoded[k])
        with col:
            st.markdown(f"**{summary.label}**, round {step}: its best proposal")
            st.plotly_chart(
                plot_expression_fit(text, height=240), key=f"learn_fit_{summary.label}_{step}"
            )
            st.caption(
                f"`{text}` · {VALID_MARK if record.valid[k] else INVALID_MARK} · "
                f"objective {record.objective[k]:.3f} · ScaLES {record.scales[k]:.1f} · "
                f"{int(record.valid.sum())} of {record.size} valid this round"
            )
    table = pd.DataFrame(
        {
            s.label: {
                "valid proposals": f"{s.valid_share:.0%}",
                "best valid objective": f"{s.best_objective:.3f}",
                "mean ScaLES of the proposals": f"{s.mean_scales:.1f}",
                "evaluations": s.evaluations,
            }
            for s in found.summaries
        }
    )
    st.table(table)
    plain, penalised = found.summaries
    more_valid = penalised.valid_share > plain.valid_share
    better = penalised.best_objective > plain.best_objective
    st.markdown(
        f"From this start the penalised run proposed **{'more' if more_valid else 'no more'}** "
        f"valid expressions ({penalised.valid_share:.0%} against {plain.valid_share:.0%}) and "
        f"found a **{'better' if better else 'no better'}** fit ({penalised.best_objective:.3f} "
        f"against {plain.best_objective:.3f}). One start is an anecdote: step 4 gives the "
        "numbers over 20."
    )


def _step_summary() -> None:
    path = model_dir(MODEL) / SUMMARY_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        aggregate = record["aggregate"]
    except (OSError, ValueError, KeyError, TypeError):
        st.warning(
            f"No measured summary is shipped with `{MODEL}` ({SUMMARY_FILE}); make it with "
            f"`scales-viz learn-summary {MODEL}`."
        )
        return
    st.markdown(
        f"The same comparison from **{record['starts']} starts** (projections of randomly "
        f"chosen encoded expressions onto the plane), `{record['optimizer']}`, "
        f"{record['evaluations']} evaluations per run, penalty `{record['penalty']}` with "
        f"alpha {record['alpha']:g}. Mean ± standard deviation over the starts."
    )
    rows = {}
    for kind, label in (("plain", "no penalty"), ("penalised", f"{record['penalty']} penalty")):
        agg = aggregate[kind]
        rows[label] = {
            "valid proposals": f"{agg['valid_share_mean']:.0%} ± {agg['valid_share_std']:.0%}",
            "best valid objective": f"{agg['best_objective_mean']:.3f} ± "
            f"{agg['best_objective_std']:.3f}",
            "starts with nothing valid": agg["no_valid"],
        }
    st.table(pd.DataFrame(rows))
    if record.get("verdict"):
        st.markdown(record["verdict"])
    paired = record.get("paired", {}).get("valid_share", {})
    mean, sem = paired.get("mean_difference"), paired.get("sem")
    if isinstance(mean, float) and isinstance(sem, float) and abs(mean) <= 2 * sem:
        st.info(
            "What this teaches, on this model: the penalty does not clearly keep the search "
            "valid; its effect is within the spread between starts. A realism penalty can only "
            "help as far as the score separates valid from invalid decodings, and here ScaLES's "
            f"valid-generation AUROC is {_auroc_text(MODEL)} (the Model view), with confident "
            "degenerate strings far from the data scoring high. Try a start near the edge of the "
            "valid region in step 3, and the likelihood penalty, and compare."
        )
    st.caption(f"Measured with `{record.get('command', '')}` on {record.get('date', '?')}.")


def _step_reading() -> None:
    st.markdown(
        "- **Model** gives each score's valid-generation AUROC and compares decoder families: "
        "check it before using a score as a realism constraint on a model.\n"
        "- **Slices** colour any plane through latent space by ScaLES (or a baseline); dark "
        "cells decode invalid, contours show an objective, and clicking a cell decodes it.\n"
        "- **Projection** maps many latents to 2-D with UMAP; distances there are only "
        "roughly meaningful, so decode points (Inspect) rather than trusting positions.\n"
        "- **Optimisers** run and compare optimisers in the full latent space: best valid "
        "objective over evaluations, the share of valid proposals per round (over-exploration "
        "shows as a falling share), ScaLES along each run, and realism against objective."
    )


def main() -> None:
    """Render the view (always on the flagship expressions model, whatever the sidebar says)."""
    st.title("Learn: exploring a latent space")
    try:
        model = get_model(MODEL)
    except ScalesVizError as exc:
        st.error(f"The walk-through needs the built-in {MODEL} model: {exc}")
        st.stop()
    st.caption(
        f"On the built-in `{MODEL}` model (latent dimension {model.latent_dim}, arithmetic "
        "expressions), on one plane of its latent space."
    )
    step = st.radio("Step", STEPS, key="learn_step", horizontal=True)
    if step == STEPS[4]:
        _step_reading()
        return
    if step == STEPS[3]:
        _step_summary()
        return
    plane = learn_plane(model)
    grid = _grid(model, plane)
    if step == STEPS[0]:
        _step_plane(model, plane, grid)
    elif step == STEPS[1]:
        _step_field(model, grid)
    else:
        _step_runs(model, PlaneModel(model, plane), grid)


main()
