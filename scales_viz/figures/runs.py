"""LSO run comparisons: best-so-far curves, valid share per step, ScaLES along runs, Pareto front.

Every figure reads the *points table* of :mod:`scales_viz.lso.records` (one row per evaluated
point). The analytics (best so far, summaries, mean ± SEM, the Pareto front) live in
:mod:`scales_viz.lso.analysis`, whose module docstring states the rules they share; this module
only draws. The longer figures follow the two steps of :mod:`scales_viz.figures.slices`: a
``_get_x_info`` step gathers plain data into a frozen dataclass, a ``_build_x_figure`` step draws
it, and the public ``plot_x`` joins them. Figures are tested on ``fig.data`` / ``fig.layout``.

* Optimizer colours come from :func:`optimizer_colours` (a fixed palette in sorted-name order);
  every figure takes ``colours=`` so an app can keep them fixed while runs are filtered.
* A NaN SEM (one run) is drawn as a zero-width band.
* A table with no rows gives a figure whose only content is an annotation such as "no runs
  selected"; no exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from scales_viz.figures.slices import SCORE_TITLES, THRESHOLD_COLOUR
from scales_viz.lso.analysis import (
    RANK,
    RealismObjective,
    float_column,
    ordered_points,
    realism_objective,
    require_columns,
    run_segments,
    run_table,
    scales_quantiles_per_step,
    summarise_best,
    summarise_valid_share,
    valid_mask,
)

__all__ = [
    "GL_THRESHOLD",
    "INVALID_LEGEND",
    "PALETTE",
    "PARETO_NAME",
    "optimizer_colours",
    "plot_best_curves",
    "plot_realism_objective",
    "plot_scales_along",
    "plot_scales_by_step",
    "plot_valid_share",
]

#: The qualitative palette (Plotly's D3 colours), assigned in sorted optimizer-name order and
#: repeated after ten optimizers.
PALETTE: tuple[str, ...] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
#: Scatter figures with more points than this use WebGL (``go.Scattergl``).
GL_THRESHOLD = 1000
PARETO_NAME = "Pareto front"
INVALID_LEGEND = "invalid decoding (x)"
PARETO_COLOUR = "#222222"
INVALID_MARKER_COLOUR = "rgba(40, 40, 40, 0.8)"
BAND_ALPHA = 0.2
#: Line dashes cycled over the seeds of one optimizer in :func:`plot_scales_along`.
SEED_DASHES: tuple[str, ...] = ("solid", "dot", "dash", "longdash", "dashdot")
NO_RUNS = "no runs selected"
NO_SCALES = "no ScaLES values"
NO_VALID = "no valid points"


# --------------------------------------------------------------------------------------------
# Shared drawing helpers
# --------------------------------------------------------------------------------------------


def optimizer_colours(names: Iterable[str]) -> dict[str, str]:
    """A colour per optimizer: :data:`PALETTE` in sorted-name order (repeats after ten).

    Args:
        names: optimizer names (duplicates allowed).

    Returns:
        name -> hex colour; the same set of names always gives the same colours.
    """
    unique = sorted({str(name) for name in names})
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(unique)}


def _rgba(colour: str, alpha: float) -> str:
    value = colour.lstrip("#")
    red, green, blue = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({red}, {green}, {blue}, {alpha})"


def _colours(names: Iterable[str], colours: Mapping[str, str] | None) -> dict[str, str]:
    names = sorted({str(n) for n in names})
    base = optimizer_colours(names)
    if colours is not None:
        base.update({n: colours[n] for n in names if n in colours})
    return base


def _message_figure(message: str, title: str, x_title: str, y_title: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(
        text=message,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 16},
    )
    fig.update_layout(
        title={"text": title},
        xaxis={"title": {"text": x_title}, "showticklabels": False, "showgrid": False},
        yaxis={"title": {"text": y_title}, "showticklabels": False, "showgrid": False},
    )
    return fig


def _band_trace(
    name: str, x: np.ndarray, mean: np.ndarray, sem: np.ndarray, colour: str, clip: bool
) -> go.Scatter:
    """A closed ±1 SEM polygon over the rows with a finite mean (NaN SEM: zero width)."""
    ok = np.isfinite(mean)
    x, mean, half = x[ok], mean[ok], np.nan_to_num(sem[ok], nan=0.0)
    upper, lower = mean + half, mean - half
    if clip:
        upper, lower = np.clip(upper, 0.0, 1.0), np.clip(lower, 0.0, 1.0)
    return go.Scatter(
        x=np.r_[x, x[::-1]],
        y=np.r_[upper, lower[::-1]],
        fill="toself",
        fillcolor=_rgba(colour, BAND_ALPHA),
        line={"width": 0, "color": _rgba(colour, 0.0)},
        mode="lines",
        name=f"{name} ±1 SEM",
        legendgroup=name,
        showlegend=False,
        hoverinfo="skip",
    )


def _summary_traces(
    fig: go.Figure,
    summary: pd.DataFrame,
    x_column: str,
    colours: Mapping[str, str],
    value_format: str,
    mode: str,
) -> None:
    """A band and a mean line per optimizer (in sorted order); hover shows n of runs."""
    clip = value_format == "%"
    for optimizer, group in summary.groupby("optimizer", sort=True):
        name = str(optimizer)
        x = group[x_column].to_numpy(dtype=np.int64)
        mean = group["mean"].to_numpy(dtype=np.float64)
        sem = group["sem"].to_numpy(dtype=np.float64)
        n = group["n"].to_numpy(dtype=np.int64)
        runs = group["runs"].to_numpy(dtype=np.int64)
        fig.add_trace(_band_trace(name, x, mean, sem, colours[name], clip))
        text = [
            f"{_fmt(m, value_format)} ± {_fmt(s, value_format)} (SEM)<br>n = {k} of {r} runs"
            for m, s, k, r in zip(
                mean.tolist(), sem.tolist(), n.tolist(), runs.tolist(), strict=True
            )
        ]
        fig.add_trace(
            go.Scatter(
                x=x,
                y=mean,
                mode=mode,
                name=name,
                legendgroup=name,
                line={"color": colours[name], "width": 2},
                marker={"color": colours[name], "size": 6},
                customdata=np.stack([n, runs], axis=1),
                text=text,
                hovertemplate=f"{x_column} %{{x}}<br>%{{text}}<extra>{name}</extra>",
            )
        )


def _fmt(value: float, kind: str) -> str:
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.1%}" if kind == "%" else f"{value:.4g}"


def _titled(fig: go.Figure, title: str | None, x_title: str, y_title: str) -> go.Figure:
    """The figure with its title, axis titles and closest-point hover."""
    fig.update_layout(
        title={"text": title},
        xaxis={"title": {"text": x_title}},
        yaxis={"title": {"text": y_title}},
        hovermode="closest",
    )
    return fig


def plot_best_curves(
    points: pd.DataFrame,
    *,
    title: str | None = None,
    grid: int | None = None,
    colours: Mapping[str, str] | None = None,
) -> go.Figure:
    """Mean best-so-far valid objective against evaluations, per optimizer, with a ±1 SEM band.

    Per optimizer (sorted by name) two traces: the band (``"<optimizer> ±1 SEM"``, a
    ``fill='toself'`` polygon, no legend entry, zero width where the SEM is NaN) and the mean
    line (``"<optimizer>"``, hover: mean ± SEM and "n = k of r runs"; ``customdata = [n, runs]``).
    Curves follow :func:`~scales_viz.lso.analysis.summarise_best` (each ends at its optimizer's
    shortest run).

    Args:
        points: a points table.
        title: figure title (default "Best valid objective so far").
        grid: passed to :func:`~scales_viz.lso.analysis.summarise_best` to thin long curves.
        colours: optimizer -> colour overrides (default :func:`optimizer_colours`).

    Returns:
        The figure; with no rows, only the annotation "no runs selected"; with no valid point,
        "no valid points".
    """
    title = title or "Best valid objective so far"
    x_title, y_title = "evaluations", "best valid objective"
    if points.empty:
        return _message_figure(NO_RUNS, title, x_title, y_title)
    summary = summarise_best(points, grid=grid)
    if not np.isfinite(summary["mean"].to_numpy(dtype=np.float64)).any():
        return _message_figure(NO_VALID, title, x_title, y_title)
    fig = go.Figure()
    palette = _colours(summary["optimizer"], colours)
    _summary_traces(fig, summary, "evaluations", palette, "g", "lines")
    return _titled(fig, title, x_title, y_title)


def plot_valid_share(
    points: pd.DataFrame,
    *,
    title: str | None = None,
    colours: Mapping[str, str] | None = None,
) -> go.Figure:
    """Share of valid proposals per step (round), mean ± SEM over each optimizer's runs.

    Per optimizer (sorted by name) a band (``"<optimizer> ±1 SEM"``, clipped to [0, 1]) and a
    ``lines+markers`` mean trace (``"<optimizer>"``; hover: share ± SEM and "n = k of r runs").
    The y axis is fixed to [0, 1] and shown as %. Steps as in
    :func:`~scales_viz.lso.analysis.summarise_valid_share`.

    Args:
        points: a points table.
        title: figure title (default "Valid proposals per step").
        colours: optimizer -> colour overrides (default :func:`optimizer_colours`).

    Returns:
        The figure; with no rows, only the annotation "no runs selected".
    """
    title = title or "Valid proposals per step"
    x_title, y_title = "step", "valid proposals"
    if points.empty:
        return _message_figure(NO_RUNS, title, x_title, y_title)
    summary = summarise_valid_share(points)
    fig = go.Figure()
    palette = _colours(summary["optimizer"], colours)
    _summary_traces(fig, summary, "step", palette, "%", "lines+markers")
    fig = _titled(fig, title, x_title, y_title)
    fig.update_yaxes(range=[0.0, 1.0], tickformat=".0%")
    return fig


def _scatter_class(gl: bool) -> type[go.Scatter] | type[go.Scattergl]:
    return go.Scattergl if gl else go.Scatter


def _point_customdata(frame: pd.DataFrame) -> np.ndarray:
    """``[run, step, index]`` per row (object array, ints as Python ints)."""
    data = np.empty((len(frame), 3), dtype=object)
    data[:, 0] = frame["run"].astype(object).to_numpy()
    data[:, 1] = frame["step"].to_numpy(dtype=np.int64).tolist()
    data[:, 2] = frame["index"].to_numpy(dtype=np.int64).tolist()
    return data


# --------------------------------------------------------------------------------------------
# ScaLES per step
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScalesByStepInfo:
    """What :func:`plot_scales_by_step` draws.

    Attributes:
        quantiles: :func:`~scales_viz.lso.analysis.scales_quantiles_per_step` of the points.
        colours: optimizer -> colour.
        title: figure title.
        message: draw only this message (no data to draw), or None.
    """

    quantiles: pd.DataFrame
    colours: Mapping[str, str]
    title: str
    message: str | None = None


def _get_scales_by_step_info(
    points: pd.DataFrame, title: str | None, colours: Mapping[str, str] | None
) -> ScalesByStepInfo:
    title = title or "ScaLES of the proposals, per step (median and 25-75% band)"
    if points.empty:
        return ScalesByStepInfo(pd.DataFrame(), {}, title, NO_RUNS)
    quantiles = scales_quantiles_per_step(points)
    if quantiles.empty:
        return ScalesByStepInfo(quantiles, {}, title, NO_SCALES)
    return ScalesByStepInfo(quantiles, _colours(quantiles["optimizer"], colours), title)


def _build_scales_by_step_figure(info: ScalesByStepInfo) -> go.Figure:
    x_title, y_title = "step", SCORE_TITLES["scales"]
    if info.message is not None:
        return _message_figure(info.message, info.title, x_title, y_title)
    fig = go.Figure()
    for optimizer, stats in info.quantiles.groupby("optimizer", sort=True):
        name = str(optimizer)
        steps = stats["step"].to_numpy()
        colour = info.colours[name]
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([steps, steps[::-1]]),
                y=np.concatenate([stats["q75"].to_numpy(), stats["q25"].to_numpy()[::-1]]),
                fill="toself",
                fillcolor=_rgba(colour, BAND_ALPHA),
                line={"width": 0},
                hoverinfo="skip",
                name=f"{name} 25-75%",
                legendgroup=name,
                showlegend=False,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=stats["median"].to_numpy(),
                mode="lines+markers",
                line={"color": colour, "width": 2},
                name=name,
                legendgroup=name,
                hovertemplate="step %{x}: median ScaLES %{y:.4g}<extra>" + name + "</extra>",
            )
        )
    fig.update_layout(
        title={"text": info.title},
        xaxis={"title": {"text": x_title}},
        yaxis={"title": {"text": y_title}},
        legend={"orientation": "h", "y": -0.2, "yanchor": "top"},
        margin={"b": 110},
    )
    return fig


def plot_scales_by_step(
    points: pd.DataFrame,
    *,
    title: str | None = None,
    colours: Mapping[str, str] | None = None,
) -> go.Figure:
    """ScaLES of the proposals per step: per optimizer, the median over its runs' proposals of
    that step (a line) and the 25-75% band around it, so several runs read as one story.

    Args:
        points: a points table (needs ``optimizer``, ``step`` and ``scales``).
        title: figure title (default "ScaLES of the proposals, per step").
        colours: optimizer -> colour overrides (default :func:`optimizer_colours`).

    Returns:
        One band trace (``"<optimizer> 25-75%"``, no legend entry) and one median trace (named
        by the optimizer) per optimizer; with no finite ScaLES, a message figure.
    """
    return _build_scales_by_step_figure(_get_scales_by_step_info(points, title, colours))


# --------------------------------------------------------------------------------------------
# ScaLES along each run
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunLine:
    """One run's ScaLES line in :func:`plot_scales_along`.

    Attributes:
        name: legend entry.
        optimizer: the run's optimizer (its legend group and colour).
        colour: line and marker colour.
        dash: line dash.
        evaluations: `k` evaluation counts (x).
        scales: `k` ScaLES values (y; NaN leaves a gap).
        valid: `k` bools (circle or "x" marker).
        text: `k` hover lines (step, position, objective or "invalid").
        customdata: `k x 3` object array ``[run, step, index]``.
    """

    name: str
    optimizer: str
    colour: str
    dash: str
    evaluations: np.ndarray
    scales: np.ndarray
    valid: np.ndarray
    text: list[str]
    customdata: np.ndarray


@dataclass(frozen=True)
class ScalesAlongInfo:
    """What :func:`plot_scales_along` draws.

    Attributes:
        lines: one :class:`RunLine` per run, in ``(optimizer, seed, run)`` order.
        any_invalid: some point is invalid (the "x" legend entry is drawn).
        threshold: the dashed line's ScaLES value, or None.
        threshold_label: the line's label.
        title: figure title.
        gl: draw with WebGL.
        message: draw only this message (no data to draw), or None.
    """

    lines: tuple[RunLine, ...]
    any_invalid: bool
    threshold: float | None
    threshold_label: str
    title: str
    gl: bool = False
    message: str | None = None


def _run_names(runs: pd.DataFrame) -> list[str]:
    """``"<optimizer> (seed s)"`` per run; the run id is appended where that name repeats."""
    base = [f"{o} (seed {s})" for o, s in zip(runs["optimizer"], runs["seed"], strict=True)]
    counts = pd.Series(base).value_counts()
    return [f"{b} [{r}]" if counts[b] > 1 else b for b, r in zip(base, runs["run"], strict=True)]


def _hover_lines(part: pd.DataFrame, valid: np.ndarray) -> list[str]:
    return [
        f"step {s}, #{i}<br>objective {o:.4g}" if v else f"step {s}, #{i}<br>invalid"
        for s, i, o, v in zip(
            part["step"].tolist(),
            part["index"].tolist(),
            float_column(part, "objective").tolist(),
            valid.tolist(),
            strict=True,
        )
    ]


def _get_scales_along_info(
    points: pd.DataFrame,
    threshold: float | None,
    threshold_label: str,
    title: str | None,
    colours: Mapping[str, str] | None,
) -> ScalesAlongInfo:
    title = title or "ScaLES of the proposals"
    threshold = float(threshold) if threshold is not None and np.isfinite(threshold) else None
    empty = ScalesAlongInfo((), False, threshold, threshold_label, title)
    if points.empty:
        return replace(empty, message=NO_RUNS)
    require_columns(
        points, ("run", "optimizer", "seed", "step", "index", "objective", "scales", "valid")
    )
    frame = ordered_points(points)
    scales = float_column(frame, "scales")
    if not np.isfinite(scales).any():
        return replace(empty, message=NO_SCALES)
    valid = valid_mask(frame)
    runs = run_table(points)
    names = _run_names(runs)
    palette = _colours(runs["optimizer"], colours)
    seed_rank = runs.groupby("optimizer", sort=False).cumcount().to_numpy()
    lines = []
    for rank, (start, stop) in enumerate(run_segments(frame[RANK].to_numpy())):
        part = frame.iloc[start:stop]
        optimizer = str(runs["optimizer"].iloc[rank])
        lines.append(
            RunLine(
                name=names[rank],
                optimizer=optimizer,
                colour=palette[optimizer],
                dash=SEED_DASHES[seed_rank[rank] % len(SEED_DASHES)],
                evaluations=part["evaluations"].to_numpy(dtype=np.int64),
                scales=scales[start:stop],
                valid=valid[start:stop],
                text=_hover_lines(part, valid[start:stop]),
                customdata=_point_customdata(part),
            )
        )
    return ScalesAlongInfo(
        tuple(lines),
        bool(not valid.all()),
        threshold,
        threshold_label,
        title,
        gl=len(frame) > GL_THRESHOLD,
    )


def _run_line_trace(
    line: RunLine, trace_class: type[go.Scatter] | type[go.Scattergl]
) -> go.Scatter | go.Scattergl:
    return trace_class(
        x=line.evaluations,
        y=line.scales,
        mode="lines+markers",
        name=line.name,
        legendgroup=line.optimizer,
        line={"color": line.colour, "width": 1, "dash": line.dash},
        marker={
            "color": line.colour,
            "size": np.where(line.valid, 6, 8).tolist(),
            "symbol": np.where(line.valid, "circle", "x").tolist(),
        },
        customdata=line.customdata,
        text=line.text,
        hovertemplate=(
            f"evaluation %{{x}}<br>ScaLES %{{y:.4g}}<br>%{{text}}<extra>{line.name}</extra>"
        ),
    )


def _build_scales_along_figure(info: ScalesAlongInfo) -> go.Figure:
    x_title, y_title = "evaluation", SCORE_TITLES["scales"]
    if info.message is not None:
        return _message_figure(info.message, info.title, x_title, y_title)
    fig = go.Figure()
    trace_class = _scatter_class(info.gl)
    for line in info.lines:
        fig.add_trace(_run_line_trace(line, trace_class))
    if info.any_invalid:
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=INVALID_LEGEND,
                marker={"symbol": "x", "color": INVALID_MARKER_COLOUR, "size": 8},
                hoverinfo="skip",
            )
        )
    if info.threshold is not None:
        fig.add_hline(
            y=info.threshold,
            line={"color": THRESHOLD_COLOUR, "width": 2, "dash": "dash"},
            annotation_text=f"{info.threshold_label} = {info.threshold:.3g}",
            annotation_position="top left",
        )
    return _titled(fig, info.title, x_title, y_title)


def plot_scales_along(
    points: pd.DataFrame,
    *,
    threshold: float | None = None,
    threshold_label: str = "ScaLES threshold",
    title: str | None = None,
    colours: Mapping[str, str] | None = None,
) -> go.Figure:
    """ScaLES of every proposal against the run's evaluation count, one trace per run.

    Each run is one ``lines+markers`` trace named ``"<optimizer> (seed s)"`` (the run id is
    appended in brackets when two runs share that name), coloured by optimizer, dashed by seed
    within the optimizer, in ``(optimizer, seed, run)`` order. Valid points are circles, invalid
    ones "x" markers; a legend-only trace :data:`INVALID_LEGEND` explains the "x" when any point is
    invalid. ``customdata = [run, step, index]`` per point. NaN ScaLES leave gaps. WebGL is used
    above :data:`GL_THRESHOLD` points.

    Args:
        points: a points table (needs ``scales`` besides the run/position columns).
        threshold: draw a dashed horizontal line at this ScaLES value (e.g. a data quantile);
            non-finite values are ignored.
        threshold_label: the line's label, shown as ``"<label> = <threshold>"``.
        title: figure title (default "ScaLES of the proposals").
        colours: optimizer -> colour overrides (default :func:`optimizer_colours`).

    Returns:
        The figure; with no rows, only the annotation "no runs selected"; with no finite ScaLES,
        "no ScaLES values".
    """
    info = _get_scales_along_info(points, threshold, threshold_label, title, colours)
    return _build_scales_along_figure(info)


# --------------------------------------------------------------------------------------------
# Objective against realism
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RealismFigureInfo:
    """What :func:`plot_realism_objective` draws.

    Attributes:
        data: the drawn points and their front, or None with a message.
        label: the realism score's axis title.
        colours: optimizer -> colour.
        title: figure title (it says how many points are not shown).
        message: draw only this message (no data to draw), or None.
    """

    data: RealismObjective | None
    label: str
    colours: Mapping[str, str]
    title: str
    message: str | None = None


def _hidden_note(data: RealismObjective, label: str) -> str:
    """``" (k invalid, m without <label> not shown)"``, or "" when every point is drawn."""
    hidden = []
    if data.invalid:
        hidden.append(f"{data.invalid} invalid")
    if data.unscored:
        hidden.append(f"{data.unscored} without {label}")
    return f" ({', '.join(hidden)} not shown)" if hidden else ""


def _get_realism_info(
    points: pd.DataFrame, realism: str, title: str | None, colours: Mapping[str, str] | None
) -> RealismFigureInfo:
    label = SCORE_TITLES.get(realism, realism)
    base_title = title or f"Objective against {label}"
    if points.empty:
        return RealismFigureInfo(None, label, {}, base_title, NO_RUNS)
    data = realism_objective(points, realism)
    full_title = base_title + _hidden_note(data, label)
    if data.points.empty:
        return RealismFigureInfo(None, label, {}, full_title, NO_VALID)
    # Colours over every optimizer in the table, drawn or not, so they match the other figures.
    return RealismFigureInfo(data, label, _colours(points["optimizer"], colours), full_title)


def _build_realism_figure(info: RealismFigureInfo) -> go.Figure:
    x_title, y_title = info.label, "objective"
    if info.data is None:
        return _message_figure(info.message or NO_VALID, info.title, x_title, y_title)
    shown, front = info.data.points, info.data.front
    trace_class = _scatter_class(len(shown) > GL_THRESHOLD)
    x, y = shown["realism"].to_numpy(), shown["objective"].to_numpy()
    hover = (
        f"{info.label} %{{x:.4g}}<br>objective %{{y:.4g}}<br>"
        "run %{customdata[0]}, step %{customdata[1]}, #%{customdata[2]}"
    )
    fig = go.Figure()
    for optimizer in sorted(info.colours):
        mask = (shown["optimizer"] == optimizer).to_numpy()
        if not mask.any():
            continue
        fig.add_trace(
            trace_class(
                x=x[mask],
                y=y[mask],
                mode="markers",
                name=optimizer,
                legendgroup=optimizer,
                marker={"color": info.colours[optimizer], "size": 6, "opacity": 0.7},
                customdata=_point_customdata(shown[mask]),
                hovertemplate=hover + f"<extra>{optimizer}</extra>",
            )
        )
    fig.add_trace(
        trace_class(
            x=x[front],
            y=y[front],
            mode="lines+markers",
            name=PARETO_NAME,
            line={"color": PARETO_COLOUR, "width": 2, "shape": "vh"},
            marker={
                "color": "rgba(0, 0, 0, 0)",
                "size": 10,
                "line": {"color": PARETO_COLOUR, "width": 2},
            },
            customdata=_point_customdata(shown.iloc[front]),
            hovertemplate=hover + f"<extra>{PARETO_NAME}</extra>",
        )
    )
    return _titled(fig, info.title, x_title, y_title)


def plot_realism_objective(
    points: pd.DataFrame,
    *,
    realism: str = "scales",
    title: str | None = None,
    colours: Mapping[str, str] | None = None,
) -> go.Figure:
    """Objective against a realism score for every valid proposal, with the Pareto front.

    Drawn points are those valid with a finite objective and a finite realism score. The rest
    are not drawn (placing them at an edge would stretch the axes and mix them into the front);
    the title says how many: ``"... (k invalid, m without <score> not shown)"``.

    Per optimizer (sorted by name) one ``markers`` trace named ``"<optimizer>"`` with
    ``customdata = [run, step, index]`` per point, then one ``"Pareto front"`` trace: the
    non-dominated drawn points of all optimizers together
    (:func:`~scales_viz.lso.analysis.pareto_front`), joined as a staircase
    (``line.shape = "vh"``), also with ``customdata``. WebGL is used above
    :data:`GL_THRESHOLD` drawn points.

    Args:
        points: a points table.
        realism: the realism column for x (``"scales"`` or ``"likelihood"``; any numeric column
            of the table works).
        title: figure title (default "Objective against <score>").
        colours: optimizer -> colour overrides (default :func:`optimizer_colours`).

    Returns:
        The figure; with no rows, only the annotation "no runs selected"; with nothing to draw,
        "no valid points".

    Raises:
        KeyError: the table has rows but no `realism` column.
    """
    return _build_realism_figure(_get_realism_info(points, realism, title, colours))
