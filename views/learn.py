"""Learn view: a guided walk through latent-space exploration on the 2-D digits model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
import torch

from scales_viz.errors import ScalesVizError
from scales_viz.figures.slices import PointsOverlay, plot_slice, plot_validity_map
from scales_viz.lso.records import Step, best_path, points_frame
from scales_viz.lso.teaching import Chase, chase
from scales_viz.models import VAEModel
from scales_viz.slices import SliceGrid, SliceSpec, axis_plane, compute_slice
from ui.cache import cached
from ui.render import INVALID_MARK, VALID_MARK, plane_mosaic, upscale
from ui.state import get_model

MODEL = "digits-2d"
EXTENT = 3.0
RESOLUTION = 41
STEPS = (
    "1. What a latent space is",
    "2. The ScaLES field and the validity map",
    "3. An optimiser chasing a digit",
    "4. How to read the views",
)


def _grid(model: VAEModel) -> SliceGrid:
    spec = SliceSpec(axis_plane(np.zeros(2), 0, 1), EXTENT * model.prior_scale, RESOLUTION)
    return cached(
        "learn_grid",
        model.name,
        lambda progress: compute_slice(
            model,
            spec,
            scores=("scales", "distance_to_data"),
            objectives=tuple(model.objectives),
            progress=progress,
        ),
        label="Scoring the latent plane",
    )


def _step_space(model: VAEModel) -> None:
    st.markdown(
        "A VAE's decoder turns a point `z` of its latent space into an object. This model's "
        "latent space has **two** dimensions, so the whole of it fits on the screen: below, "
        "every image is the decoding of one point of a grid over "
        f"[-{EXTENT:g}, {EXTENT:g}]^2 (the prior is a standard normal, so nearly all training "
        "data sit inside). Nearby points decode to similar images; far from the centre the "
        "decoder extrapolates."
    )
    plane_mosaic(model, axis_plane(np.zeros(2), 0, 1), EXTENT * model.prior_scale, 15)


def _step_field(model: VAEModel, grid: SliceGrid) -> None:
    st.markdown(
        "**ScaLES** scores each latent point from the decoder alone: "
        "`-1/2 log det(J^T J)`, with `J` the Jacobian of the decoder's output distribution. "
        "The paper's claim: high ScaLES marks regions where decodings are realistic. Beside "
        "it, the **validity map**: a cell is valid when a digit classifier is at least 90% "
        "sure of its decoding."
    )
    left, right = st.columns(2)
    with left:
        st.plotly_chart(
            plot_slice(grid, score="scales", show_invalid=False, title="ScaLES"),
            key="learn_field",
        )
    with right:
        st.plotly_chart(plot_validity_map(grid), key="learn_validity")
    scales = grid.scores["scales"]
    valid = grid.valid
    inside = np.hypot(*np.meshgrid(grid.spec.axis(), grid.spec.axis())) <= 1.0
    st.markdown(
        f"On this grid: {valid.mean():.0%} of cells are valid; mean ScaLES is "
        f"{np.nanmean(scales[valid]):.2f} on valid cells and "
        f"{np.nanmean(scales[~valid]) if (~valid).any() else float('nan'):.2f} on invalid ones; "
        f"{np.nanmean(scales[inside]):.2f} within radius 1 (where the data are) and "
        f"{np.nanmean(scales[~inside]):.2f} outside it."
    )
    here, expressions = _card_auroc(MODEL), _card_auroc("expressions")
    st.info(
        "Read this honestly: on this small pixel model the decoder saturates away from the "
        "data (pixels become confidently 0 or 1), which *raises* ScaLES there, and the "
        "classifier is confident about saturated images too, so validity hardly depends on "
        f"position. The model cards measure ScaLES's valid-generation AUROC at {here} on "
        f"this model and {expressions} on the expressions model. A realism score has to be "
        "checked on each model before it is trusted: that is what the Model view's AUROCs "
        "are for."
    )


def _card_auroc(name: str) -> str:
    """ScaLES's AUROC from a built-in model's card (``evaluation.json``), as text."""
    import json

    from scales_viz.models.registry import model_dir

    try:
        record = json.loads((model_dir(name) / "evaluation.json").read_text(encoding="utf-8"))
        return f"{float(record['auroc']['scales']):.2f}"
    except (OSError, ValueError, KeyError, TypeError):
        return "(not measured)"


def _chase_controls(model: VAEModel) -> dict[str, object]:
    cols = st.columns(5)
    digit = cols[0].selectbox("Target digit", list(range(10)), index=7, key="learn_digit")
    a = cols[1].slider("Start a", -EXTENT, EXTENT, 1.5, 0.1, key="learn_start_a")
    b = cols[2].slider("Start b", -EXTENT, EXTENT, -1.0, 0.1, key="learn_start_b")
    penalty = cols[3].selectbox("Penalty", ["scales", "prior", "likelihood"], key="learn_penalty")
    alpha = cols[4].slider("Penalty weight alpha", 0.0, 2.0, 0.5, 0.1, key="learn_alpha")
    return {"digit": int(digit), "start": (float(a), float(b)), "penalty": penalty, "alpha": alpha}


def _run_chase(model: VAEModel, settings: dict[str, object]) -> Chase:
    key = (model.name, *sorted((k, str(v)) for k, v in settings.items()))
    return cached(
        "learn_chase",
        key,
        lambda progress: chase(
            model,
            int(settings["digit"]),  # type: ignore[call-overload]
            settings["start"],  # type: ignore[arg-type]
            penalty=str(settings["penalty"]),
            alpha=float(settings["alpha"]),  # type: ignore[arg-type]
        ),
        label="Climbing",
    )


def _path(result_steps: list[Step], name: str) -> PointsOverlay:
    """A run's path on the plane (the 2-D latents are the plane coordinates)."""
    z, best = best_path(points_frame(result_steps, run=name, optimizer=name, seed=0))
    objective = np.concatenate([s.objective for s in result_steps])
    texts = [f"step {k}: p={v:.3f}" for k, v in enumerate(objective)]
    return PointsOverlay(name, z, np.zeros(len(z)), texts, path=True, best=best)


def _step_chase(model: VAEModel, grid: SliceGrid) -> None:
    st.markdown(
        "**Over-exploration.** An optimiser asked to make the classifier as sure as possible "
        "that the decoding is a given digit climbs that probability by gradient ascent "
        "(unit-length steps of 0.1). Nothing stops it from leaving the region the decoder was "
        "trained on. The second run adds a realism penalty's unit gradient with weight alpha. "
        "Change the target, the start and the penalty, then move the step slider."
    )
    settings = _chase_controls(model)
    try:
        found = _run_chase(model, settings)
    except ScalesVizError as exc:
        st.error(str(exc))
        return
    plain, penalised = found.summaries
    overlays = [
        _path(found.plain.steps, plain.label),
        _path(found.penalised.steps, penalised.label),
    ]
    st.plotly_chart(
        plot_slice(
            grid,
            score="scales",
            show_invalid=True,
            objective=f"looks_like_{found.digit}",
            overlays=overlays,
            title=f"Paths on the ScaLES field (contours: p(looks like {found.digit}))",
        ),
        key="learn_paths",
    )
    last = len(found.plain.steps) - 1
    step = st.slider("Step", 0, last, last, key="learn_step_slider")
    cols = st.columns(2)
    for col, result, summary in zip(
        cols, (found.plain, found.penalised), found.summaries, strict=True
    ):
        point = result.steps[step]
        image = model.decode(torch.as_tensor(point.z, dtype=torch.float32))[0]
        with col:
            st.markdown(f"**{summary.label}**, step {step}")
            st.image(
                upscale(image),
                caption=(
                    f"{VALID_MARK if point.valid[0] else INVALID_MARK} · "
                    f"p({found.digit}) {np.nan_to_num(point.objective[0]):.3f} · "
                    f"ScaLES {point.scales[0]:.2f} · z = ({point.z[0, 0]:.2f}, {point.z[0, 1]:.2f})"
                ),
                clamp=True,
            )
    table = pd.DataFrame(
        {
            s.label: {
                "end point": f"({s.end[0]:.2f}, {s.end[1]:.2f})",
                f"p(looks like {found.digit}) at the end": f"{np.nan_to_num(s.objective):.3f}",
                "end decoding valid": "yes" if s.valid else "no",
                "ScaLES at the end": f"{s.scales:.2f}",
                "distance to the data at the end": f"{s.distance_to_data:.2f}",
                "valid share along the path": f"{s.valid_share:.0%}",
            }
            for s in found.summaries
        }
    )
    st.table(table)
    closer = penalised.distance_to_data < plain.distance_to_data
    st.markdown(
        f"In this run the penalised path ended **{'closer to' if closer else 'farther from'}** "
        f"the data ({penalised.distance_to_data:.2f} against {plain.distance_to_data:.2f}). "
        "Try the prior and likelihood penalties too, and compare where each path ends and "
        "whether its decodings stay valid."
    )


def _step_reading() -> None:
    st.markdown(
        "- **Slices** colour a plane through latent space by ScaLES (or a baseline); the dark "
        "overlay marks invalid decodings, the red dashed line is a ScaLES threshold, and "
        "clicking a cell decodes it.\n"
        "- **Projection** maps many latents to 2-D with UMAP; distances there are only "
        "roughly meaningful, so decode points (Inspect) rather than trusting positions.\n"
        "- **Optimisers** compare runs: best valid objective over evaluations, the share of "
        "valid proposals per round (over-exploration shows as a falling share), ScaLES "
        "along each run, and realism against objective.\n"
        "- **Model** gives each score's valid-generation AUROC: check it before using a score "
        "as a realism constraint on a model."
    )


def main() -> None:
    """Render the view (always on the 2-D digits model, whatever the sidebar says)."""
    st.title("Learn: exploring a latent space")
    try:
        model = get_model(MODEL)
    except ScalesVizError as exc:
        st.error(f"The walk-through needs the built-in {MODEL} model: {exc}")
        st.stop()
    st.caption(f"On the built-in `{MODEL}` model (latent dimension 2, 8x8 digit images).")
    step = st.radio("Step", STEPS, key="learn_step", horizontal=True)
    if step == STEPS[0]:
        _step_space(model)
        return
    grid = _grid(model)
    if step == STEPS[1]:
        _step_field(model, grid)
    elif step == STEPS[2]:
        _step_chase(model, grid)
    else:
        _step_reading()


main()
