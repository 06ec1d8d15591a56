"""Optimisers view: launch LSO runs, import and export them, compare them, send them to Slices."""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
import torch

from scales_viz.errors import ScalesVizError
from scales_viz.figures.runs import (
    optimizer_colours,
    plot_best_curves,
    plot_realism_objective,
    plot_scales_along,
    plot_scales_by_step,
    plot_valid_share,
)
from scales_viz.lso.field import FIELD_FORMATS
from scales_viz.lso.io import (
    ENCODED_NOTE,
    EXPORT_FORMATS,
    IMPORT_FORMATS,
    MAX_IMPORT_BYTES,
    export_runs,
    import_field_runs,
    label_runs,
)
from scales_viz.lso.io import import_runs as import_file
from scales_viz.lso.optimizers import (
    OPTIMIZERS,
    PENALISED,
    PENALTIES,
    Budget,
    Settings,
    optimizer_label,
)
from scales_viz.lso.recorded import run_recorded
from scales_viz.lso.records import RunStatus, Step, best_path_rows, points_frame, z_matrix
from scales_viz.lso.store import RunStore, StoredRun
from scales_viz.models import VAEModel
from scales_viz.selection import MAX_SELECTION, Selection
from scales_viz_app.ui.pages import page
from scales_viz_app.ui.render import INVALID_MARK, VALID_MARK, render_object
from scales_viz_app.ui.state import (
    TRAJECTORIES_KEY,
    current_model,
    device,
    get_store,
    set_selection,
)

SELECTED_KEY = "opt_selected_runs"
PICKED_KEY = "opt_picked_point"
SCATTER_KEY = "opt_scatter"
MAX_SEEDS = 20
#: The launch a rerun interrupted: its form, its runs and when (see _drop_replayed).
INTERRUPTED_KEY = "opt_interrupted_launch"
#: Streamlit replays an interrupted click at once; later, the same form is a new launch.
REPLAY_WINDOW_S = 10.0
MAX_BUDGET = 5000
MIME = {"csv": "text/csv", "parquet": "application/octet-stream", "json": "application/json"}


def _parse_seeds(text: str) -> list[int]:
    """``"0, 1, 2"`` or ``"0-4"`` -> seeds; a clear error otherwise."""
    seeds: list[int] = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part[1:]:
                low, high = part.split("-", 1)
                seeds.extend(range(int(low), int(high) + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise ScalesVizError(
                f"seeds must be integers like '0, 1, 2' or '0-4'; got {part!r}."
            ) from None
    seeds = list(dict.fromkeys(seeds))
    if not seeds or len(seeds) > MAX_SEEDS or min(seeds) < 0:
        raise ScalesVizError(f"give 1 to {MAX_SEEDS} non-negative seeds; got {text!r}.")
    return seeds


def _launch_form(model: VAEModel) -> dict[str, Any] | None:
    objectives = list(model.objectives)
    with st.form("opt_launch"):
        cols = st.columns(4)
        objective = cols[0].selectbox("Task (objective)", objectives, key="opt_objective")
        optimizer = cols[1].selectbox("Optimizer", OPTIMIZERS, index=1, key="opt_optimizer")
        penalty = cols[2].selectbox(
            "Penalty", PENALTIES, key="opt_penalty", help="gp-ascent, turbo and gradient only"
        )
        alpha = cols[3].number_input("alpha", 0.0, 10.0, 0.5, 0.1, key="opt_alpha")
        cols = st.columns(4)
        budget = cols[0].number_input("Budget (evaluations)", 1, MAX_BUDGET, 60, key="opt_budget")
        batch = cols[1].number_input("Batch per step", 1, 100, 10, key="opt_batch")
        initial = cols[2].number_input("Initial design", 1, 500, 20, key="opt_initial")
        seeds = cols[3].text_input("Seeds", "0", key="opt_seeds", help="e.g. 0, 1, 2 or 0-4")
        submitted = st.form_submit_button("Launch")
    if not submitted:
        return None
    return {
        "objective": objective,
        "optimizer": optimizer,
        "penalty": penalty if optimizer in PENALISED else "none",
        "alpha": float(alpha),
        "budget": int(budget),
        "batch": int(batch),
        "initial": int(initial),
        "seeds": seeds,
    }


def _launch(model: VAEModel, store: RunStore, form: dict[str, Any]) -> list[str]:
    """Run the form's optimiser once per seed, recording every step; the new run ids."""
    settings = Settings(
        batch_size=form["batch"],
        n_initial=form["initial"],
        penalty=form["penalty"],
        alpha=form["alpha"],
    )
    budget = Budget(evaluations=form["budget"])
    seeds = _parse_seeds(form["seeds"])
    label = optimizer_label(form["optimizer"], form["penalty"])
    launched: list[str] = []
    signature = (model.name, tuple(sorted(form.items())))
    _drop_replayed(store, signature)
    bar = st.progress(0.0, text=f"{label}: starting")
    live = st.empty()
    total = budget.evaluations * len(seeds)
    done = 0
    for seed in seeds:
        steps: list[Step] = []

        def show(info: StoredRun, step: Step, seed: int = seed, steps: list[Step] = steps) -> None:
            nonlocal done
            steps.append(step)
            done += step.size
            bar.progress(
                min(1.0, done / total),
                text=f"{label} seed {seed}: step {step.step}, {done} of {total} evaluations",
            )
            frame = points_frame(steps, run=info.id, optimizer=label, seed=seed)
            live.plotly_chart(
                plot_best_curves(frame, title=f"{label} seed {seed}: best so far"),
                key=f"opt_live_{info.id}_{step.step}",
            )

        try:
            _, result = run_recorded(
                store,
                model,
                form["objective"],
                optimizer=form["optimizer"],
                budget=budget,
                seed=seed,
                settings=settings,
                on_created=lambda info: launched.append(info.id),
                on_step=show,
                device=device(),
            )
        except ScalesVizError:
            raise
        except BaseException:
            # Streamlit stops a running script on a rerun (a click elsewhere) by raising here;
            # run_recorded has marked the run stopped.
            st.session_state[INTERRUPTED_KEY] = {
                "signature": signature,
                "runs": list(launched),
                "at": time.monotonic(),
            }
            raise
        if result.status is RunStatus.FAILED:
            st.error(f"{label} seed {seed} failed: {result.reason}")
    bar.empty()
    live.empty()
    return launched


def _drop_replayed(store: RunStore, signature: tuple[Any, ...]) -> None:
    """Delete the runs of a launch that this launch replays.

    When a rerun (another widget, a timer) interrupts the script during a launch, Streamlit
    replays the interrupted run's button click in the next run: the same launch starts again
    from scratch, with the same seeds. The interrupted copies (marked stopped, a prefix of the
    runs now made again) would show as extra runs; they are dropped, but only right after the
    interruption and for the very same form, so a run the user stopped stays.
    """
    pending = st.session_state.pop(INTERRUPTED_KEY, None)
    if not pending or pending["signature"] != signature:
        return
    if time.monotonic() - pending["at"] > REPLAY_WINDOW_S:
        return
    for run_id in pending["runs"]:
        with contextlib.suppress(ScalesVizError):
            store.delete_run(run_id)


def _run_label(run: StoredRun) -> str:
    return f"{run.name} · {run.task} · {run.status} · {run.created[:16].replace('T', ' ')}"


#: What the import form offers: scales-viz's own schema, then the field's formats.
OWN_SCHEMA = "scales-viz run file (latents)"


def _import_panel(model: VAEModel, store: RunStore) -> None:
    st.caption(
        "A scales-viz run file has one row per evaluated point: `step`, `z_0..z_{d-1}` (or a "
        "list column `z`), `objective`; optional `run`, `optimizer`, `seed`, `valid`. NPZ: "
        "arrays `z` and `y`. Files from the field's own code carry strings instead: those "
        "points are placed by this model's encoder (marked *encoded*); weighted-retraining's "
        "per-round GP latents are read from its run folder by `scales-viz runs import "
        "FOLDER`. Up to "
        f"{MAX_IMPORT_BYTES // 2**20} MB; pickles are never loaded. ScaLES, likelihood and "
        "validity are computed for this model on import."
    )
    with st.form("opt_import", clear_on_submit=True):
        upload = st.file_uploader("Run file", type=list(IMPORT_FORMATS), key="opt_upload")
        written_by = st.selectbox(
            "Written by",
            [OWN_SCHEMA, *FIELD_FORMATS],
            format_func=lambda key: FIELD_FORMATS.get(key, key),
            key="opt_import_format",
        )
        objective = st.selectbox("Its task", list(model.objectives), key="opt_import_objective")
        submitted = st.form_submit_button("Import")
    if not submitted or upload is None:
        return
    if upload.size > MAX_IMPORT_BYTES:
        st.error(
            f"{upload.name} is {upload.size / 2**20:.1f} MB; the import limit is "
            f"{MAX_IMPORT_BYTES // 2**20} MB. Nothing was imported."
        )
        return
    bar = st.progress(0.0, text="Scoring imported points")

    def progress(done: int, n: int) -> None:
        bar.progress(min(1.0, done / max(n, 1)), text=f"Scoring imported points: {done} of {n}")

    summary: dict[str, object] | None = None
    try:
        if written_by == OWN_SCHEMA:
            stored = import_file(
                store,
                upload.getvalue(),
                model=model,
                objective=objective,
                filename=upload.name,
                progress=progress,
            )
        else:
            stored, summary = import_field_runs(
                store,
                upload.getvalue(),
                model=model,
                objective=objective,
                fmt=written_by,
                filename=upload.name,
                progress=progress,
            )
    except ScalesVizError as exc:
        st.error(f"Nothing was imported. {exc}")
        return
    finally:
        bar.empty()
    before = list(st.session_state.get(SELECTED_KEY, []))
    st.session_state[SELECTED_KEY] = before + [r.id for r in stored if r.id not in before]
    st.success(f"Imported {len(stored)} run(s) from {upload.name}.")
    if summary is not None and summary["latents"] == "encoded":
        st.info(
            f"{summary['placed']} of {summary['rows']} proposals were {ENCODED_NOTE}; "
            f"{float(summary['round_trip']):.0%} of them decode back to the proposed string. "  # type: ignore[arg-type]
            + (
                f"{summary['skipped']} could not be encoded (first: "
                f"{summary['first_skipped']!r}) and were left out."
                if summary["skipped"]
                else ""
            )
        )


def _manage(store: RunStore, runs: list[StoredRun], selected: list[str]) -> None:
    by_id = {r.id: r for r in runs}
    chosen = [by_id[i] for i in selected if i in by_id]
    if not chosen:
        return
    table = pd.DataFrame(
        {
            "name": [r.name for r in chosen],
            "task": [r.task for r in chosen],
            "optimizer": [r.optimizer for r in chosen],
            "seed": [r.seed for r in chosen],
            "status": [r.status for r in chosen],
            "latents": [
                "encoded" if r.settings.get("latents") == ENCODED_NOTE else "own" for r in chosen
            ],
            "why it ended": [r.reason for r in chosen],
            "created (UTC)": [r.created[:19] for r in chosen],
        }
    )
    st.dataframe(table, hide_index=True, key="opt_runs_table")
    with st.expander("Rename or delete"):
        cols = st.columns([2, 2, 1, 1])
        target = cols[0].selectbox(
            "Run", [r.id for r in chosen], format_func=lambda i: by_id[i].name, key="opt_target"
        )
        name = cols[1].text_input("New name", by_id[target].name, key="opt_new_name")
        if cols[2].button("Rename", key="opt_rename"):
            try:
                store.rename_run(target, name)
                st.rerun()
            except ScalesVizError as exc:
                st.error(str(exc))
        confirm = cols[3].checkbox("confirm", key="opt_confirm_delete")
        if cols[3].button("Delete", key="opt_delete", disabled=not confirm):
            try:
                store.delete_run(target)  # main() drops it from the selection on the rerun
            except ScalesVizError as exc:  # e.g. deleted meanwhile in another tab
                st.error(str(exc))
            else:
                st.rerun()


def _picked() -> None:
    """Keep the proposals picked in the realism-versus-objective scatter (`[run, step, index]`
    each); the first is decoded here, all go to the linked selection."""
    event = st.session_state.get(SCATTER_KEY) or {}
    clicked = [p for p in event.get("selection", {}).get("points", []) if p.get("customdata")]
    st.session_state[PICKED_KEY] = [list(p["customdata"])[:3] for p in clicked]


def _link_picked(model: VAEModel, points: pd.DataFrame) -> None:
    """Write the picked proposals to the linked selection (read by Inspect)."""
    picked = st.session_state.get(PICKED_KEY) or []
    if not picked or st.session_state.get("opt_linked") == picked:
        return
    keys = {(str(r), int(s), int(i)) for r, s, i in picked}
    mask = [
        (str(r), int(s), int(i)) in keys
        for r, s, i in zip(points["run"], points["step"], points["index"], strict=True)
    ]
    rows = points[mask].head(MAX_SELECTION)
    if rows.empty:
        return
    set_selection(
        Selection(
            model=model.name,
            source="optimizers",
            z=z_matrix(rows),
            labels=tuple(
                f"{o} seed {sd}, step {st_}, #{i}"
                for o, sd, st_, i in zip(
                    rows["optimizer"], rows["seed"], rows["step"], rows["index"], strict=True
                )
            ),
        )
    )
    st.session_state["opt_linked"] = picked


def _show_picked(model: VAEModel, points: pd.DataFrame) -> None:
    picked = st.session_state.get(PICKED_KEY)
    if not picked:
        st.caption("Click a point (or box/lasso several) to decode it and send it to Inspect.")
        return
    _link_picked(model, points)
    run_id, step, index = str(picked[0][0]), int(picked[0][1]), int(picked[0][2])
    row = points[(points["run"] == run_id) & (points["step"] == step) & (points["index"] == index)]
    if row.empty:
        return
    z = torch.as_tensor(z_matrix(row), dtype=torch.float32)
    obj = model.decode(z)[0]
    valid = bool(row["valid"].iloc[0])
    st.subheader("Picked proposal")
    left, right = st.columns([1, 2])
    with left:
        render_object(model, obj, VALID_MARK if valid else INVALID_MARK)
    with right:
        first = row.iloc[0]
        st.table(
            pd.DataFrame(
                {
                    "value": {
                        "run": f"{first['optimizer']} seed {first['seed']}",
                        "step, index": f"{step}, {index}",
                        "objective": f"{first['objective']:.4f}",
                        "ScaLES": f"{first['scales']:.4f}",
                        "log p(argmax)": f"{first['likelihood']:.4f}",
                        "valid": "yes" if valid else "no",
                    }
                }
            )
        )


def trajectory(points: pd.DataFrame, name: str, model: str) -> dict[str, Any]:
    """A run as a Slices overlay (the session-state layout documented in ``ui/state.py``)."""
    rows, best = best_path_rows(points)
    z = z_matrix(rows) if len(rows) else np.zeros((0, 0))

    def floats(column: str) -> list[float | None]:
        values = rows[column].to_numpy(np.float64) if column in rows else np.full(len(rows), np.nan)
        return [float(v) if np.isfinite(v) else None for v in values]

    return {
        "name": name,
        "model": model,
        "z": z.tolist(),
        "best": best,
        "steps": len(z),
        "step": [int(v) for v in rows["step"]],
        "objective": floats("objective"),
        "valid": [bool(v) for v in rows["valid"]],
        "scales": floats("scales"),
    }


def _compare(model: VAEModel, store: RunStore, runs: list[StoredRun], selected: list[str]) -> None:
    if not selected:
        st.info("Select runs above to compare them.")
        return
    try:
        points = store.points(selected)
    except ScalesVizError as exc:
        st.error(str(exc))
        return
    colours = optimizer_colours(sorted({r.optimizer for r in runs}))
    tabs = st.tabs(["Best so far", "Valid share", "ScaLES along runs", "Realism vs objective"])
    with tabs[0]:
        st.plotly_chart(plot_best_curves(points, colours=colours), key="opt_best")
    with tabs[1]:
        st.plotly_chart(plot_valid_share(points, colours=colours), key="opt_valid")
    with tabs[2]:
        if st.toggle("Every proposal of every run", False, key="opt_scales_detail"):
            st.plotly_chart(plot_scales_along(points, colours=colours), key="opt_scales")
        else:
            st.plotly_chart(plot_scales_by_step(points, colours=colours), key="opt_scales")
    with tabs[3]:
        realism = st.radio("Realism score", ["scales", "likelihood"], horizontal=True)
        st.plotly_chart(
            plot_realism_objective(points, realism=realism, colours=colours),
            key=SCATTER_KEY,
            on_select=_picked,
            selection_mode=("points", "box", "lasso"),
        )
        _show_picked(model, points)
    by_id = {r.id: r for r in runs}
    cols = st.columns(len(EXPORT_FORMATS) + 1)
    if cols[0].button(
        "Show on Slices", key="opt_to_slices", help="open Slices on the plane through these runs"
    ):
        sent = [
            trajectory(points[points["run"] == run_id], by_id[run_id].name, model.name)
            for run_id in selected
            if run_id in by_id
        ]
        st.session_state[TRAJECTORIES_KEY] = sent
        usable = [run for run in sent if run["steps"] >= 3]
        if usable:  # the plane through the first run's start, best and end
            st.session_state["slice_plane"] = "through a run"
            st.session_state["slice_run"] = usable[0]["name"]
        st.switch_page(page("slices"))
    for col, fmt in zip(cols[1:], EXPORT_FORMATS, strict=True):
        col.download_button(
            f"Export {fmt.upper()}",
            # Built on click (deferred data), not on every rerun.
            lambda fmt=fmt: export_runs(
                label_runs(points, {i: r.name for i, r in by_id.items()}), fmt
            ),
            f"runs.{fmt}",
            MIME[fmt],
            key=f"opt_export_{fmt}",
        )
    best = points[points["valid"] & np.isfinite(points["objective"])]
    if len(best):
        top = best.loc[best["objective"].idxmax()]
        st.caption(
            f"Best valid objective over the selection: {top['objective']:.4f} "
            f"({top['optimizer']} seed {top['seed']}, step {top['step']}); ScaLES there "
            f"{top['scales']:.3f}."
            + ("" if math.isfinite(top["scales"]) else " (ScaLES not computed)")
        )


def main() -> None:
    """Render the view."""
    model = current_model()
    if model is None:
        st.stop()
    st.title(f"Optimisers: {model.name}")
    store = get_store()
    if store is None:
        st.stop()
    launch_tab, import_tab = st.tabs(["Launch a run", "Import runs"])
    with launch_tab:
        form = _launch_form(model)
        if form is not None:
            try:
                launched = _launch(model, store, form)
                # New runs join the comparison; the runs already picked stay.
                before = list(st.session_state.get(SELECTED_KEY, []))
                st.session_state[SELECTED_KEY] = before + [i for i in launched if i not in before]
                st.success(f"Finished {len(launched)} run(s).")
            except ScalesVizError as exc:
                st.error(str(exc))
    with import_tab:
        _import_panel(model, store)
    runs = store.runs(model=model.name)
    st.subheader(f"Runs on {model.name} ({len(runs)})")
    ids = [r.id for r in runs]
    by_id = {r.id: r for r in runs}
    if SELECTED_KEY in st.session_state:
        st.session_state[SELECTED_KEY] = [i for i in st.session_state[SELECTED_KEY] if i in by_id]
    selected = st.multiselect(
        "Runs to compare",
        ids,
        key=SELECTED_KEY,
        format_func=lambda i: _run_label(by_id[i]),
        placeholder="choose runs",
    )
    _manage(store, runs, selected)
    _compare(model, store, runs, selected)
    st.caption(f"Runs are kept in {store.path}.")


main()
