"""LSO run comparisons: best-so-far curves, valid share per step, ScaLES along runs, Pareto front.

Everything here reads the *points table* of :mod:`scales_viz.lso.records` (one row per evaluated
point). The maths lives in small pure helpers that return DataFrames or arrays; the figures are
built on top of them and are tested on ``fig.data`` / ``fig.layout``.

Rules shared by every function:

* A run's points are taken in ``(step, index)`` order (a stable sort, so duplicated positions keep
  their table order); a run's *evaluation count* is the 1-based position in that order.
* Runs are listed by ``(optimizer, seed, run)``; each run must have exactly one optimizer and
  one seed (:class:`~scales_viz.errors.InputValueError` otherwise).
* A point *counts for the objective* when ``valid`` is true **and** its objective is finite (as in
  :meth:`scales_viz.lso.records.Step.best_valid`). The valid share uses the ``valid`` column alone.
* Mean ± SEM across runs: NaN values are left out, ``n`` says how many runs were averaged,
  ``sem = std(ddof=1) / sqrt(n)``; with ``n == 1`` the SEM is NaN (undefined, not zero), with
  ``n == 0`` mean and SEM are NaN. The figures draw a NaN SEM as a zero-width band.
* Optimizer colours come from :func:`optimizer_colours` (a fixed palette in sorted-name order);
  every figure takes ``colours=`` so an app can keep them fixed while runs are filtered.
* A table with no rows gives an empty result (helpers) or a figure whose only content is an
  annotation such as "no runs selected" (figures); no exception.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from scales_viz.errors import InputValueError
from scales_viz.figures.slices import SCORE_TITLES, THRESHOLD_COLOUR

__all__ = [
    "BEST_COLUMNS",
    "BEST_SUMMARY_COLUMNS",
    "GL_THRESHOLD",
    "INVALID_LEGEND",
    "PALETTE",
    "PARETO_NAME",
    "VALID_SHARE_COLUMNS",
    "VALID_SHARE_SUMMARY_COLUMNS",
    "best_so_far",
    "optimizer_colours",
    "pareto_front",
    "plot_best_curves",
    "plot_realism_objective",
    "plot_scales_along",
    "plot_scales_by_step",
    "plot_valid_share",
    "summarise_best",
    "summarise_valid_share",
    "valid_share_per_step",
]

LOG = logging.getLogger(__name__)

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

BEST_COLUMNS: tuple[str, ...] = ("run", "optimizer", "seed", "evaluations", "best")
BEST_SUMMARY_COLUMNS: tuple[str, ...] = ("optimizer", "evaluations", "mean", "sem", "n", "runs")
VALID_SHARE_COLUMNS: tuple[str, ...] = (
    "run",
    "optimizer",
    "seed",
    "step",
    "proposals",
    "valid",
    "share",
)
VALID_SHARE_SUMMARY_COLUMNS: tuple[str, ...] = ("optimizer", "step", "mean", "sem", "n", "runs")

_DTYPES: dict[str, Any] = {
    "run": object,
    "optimizer": object,
    "seed": np.int64,
    "step": np.int64,
    "evaluations": np.int64,
    "proposals": np.int64,
    "valid": np.int64,
    "n": np.int64,
    "runs": np.int64,
    "best": np.float64,
    "share": np.float64,
    "mean": np.float64,
    "sem": np.float64,
}


# --------------------------------------------------------------------------------------------
# Table helpers
# --------------------------------------------------------------------------------------------


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=_DTYPES[c]) for c in columns})


def _require(points: pd.DataFrame, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in points.columns]
    if missing:
        raise InputValueError(f"the points table lacks the columns {missing}.")


def _floats(points: pd.DataFrame, column: str) -> np.ndarray:
    return points[column].to_numpy(dtype=np.float64, na_value=np.nan)


def _valid(points: pd.DataFrame) -> np.ndarray:
    """The ``valid`` column as a plain bool array (missing values are False)."""
    return points["valid"].astype("boolean").fillna(False).to_numpy(dtype=bool)


def _run_table(points: pd.DataFrame) -> pd.DataFrame:
    """One row per run (``run, optimizer, seed``), sorted by optimizer, seed and run."""
    grouped = points.groupby("run", sort=False, dropna=False)
    table = grouped.agg(
        optimizer=("optimizer", "first"),
        seed=("seed", "first"),
        optimizers=("optimizer", "nunique"),
        seeds=("seed", "nunique"),
    ).reset_index()
    bad = table[(table["optimizers"] > 1) | (table["seeds"] > 1)]
    if len(bad):
        raise InputValueError(
            f"each run must have one optimizer and one seed; runs {bad['run'].tolist()} have more."
        )
    table = table[["run", "optimizer", "seed"]].astype(
        {"run": object, "optimizer": object, "seed": np.int64}
    )
    table["optimizer"] = table["optimizer"].map(str)
    return table.sort_values(["optimizer", "seed", "run"], kind="stable").reset_index(drop=True)


def _ordered(points: pd.DataFrame) -> pd.DataFrame:
    """The points in run order, then ``(step, index)``, with 1-based ``evaluations`` per run.

    The run's ``optimizer`` (as str) and ``seed`` come from :func:`_run_table`.
    """
    runs = _run_table(points)
    rank = pd.Series(np.arange(len(runs)), index=pd.Index(runs["run"], dtype=object))
    frame = points.assign(
        _rank=points["run"].astype(object).map(rank).to_numpy(dtype=np.int64),
        _row=np.arange(len(points)),
    )
    frame = frame.sort_values(["_rank", "step", "index", "_row"]).reset_index(drop=True)
    frame["optimizer"] = runs["optimizer"].to_numpy()[frame["_rank"].to_numpy()]
    frame["seed"] = runs["seed"].to_numpy()[frame["_rank"].to_numpy()]
    frame["evaluations"] = frame.groupby("_rank", sort=False).cumcount().to_numpy() + 1
    return frame


def _segments(keys: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of equal consecutive keys."""
    if keys.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    stops = np.r_[starts[1:], keys.size]
    return list(zip(starts.tolist(), stops.tolist(), strict=True))


def _mean_sem(frame: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """Mean, SEM and count of `value` per `by` group, NaN values left out (see module rules)."""
    stats = frame.groupby(by, sort=True)[value].agg(["mean", "std", "count"]).reset_index()
    n = stats["count"].to_numpy(dtype=np.int64)
    std = stats["std"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        sem = np.where(n >= 2, std / np.sqrt(np.maximum(n, 1)), np.nan)
    mean = np.where(n >= 1, stats["mean"].to_numpy(dtype=np.float64), np.nan)
    out = stats[by].copy()
    out["mean"] = mean
    out["sem"] = sem
    out["n"] = n
    return out


# --------------------------------------------------------------------------------------------
# Maths
# --------------------------------------------------------------------------------------------


def best_so_far(points: pd.DataFrame) -> pd.DataFrame:
    """Best valid objective so far against the number of evaluations, per run.

    Args:
        points: a points table (needs ``run, optimizer, seed, step, index, objective, valid``).

    Returns:
        One row per point: ``run, optimizer, seed, evaluations, best``. ``evaluations`` counts the
        run's points in ``(step, index)`` order from 1; ``best`` is the running maximum of the
        objective over the points so far that are valid with a finite objective, NaN until the
        first such point (so it is non-decreasing once defined). Runs are ordered by
        ``(optimizer, seed, run)``.
    """
    if points.empty:
        return _empty(BEST_COLUMNS)
    _require(points, ("run", "optimizer", "seed", "step", "index", "objective", "valid"))
    frame = _ordered(points)
    objective = _floats(frame, "objective")
    counted = np.where(_valid(frame) & np.isfinite(objective), objective, np.nan)
    best = np.full(counted.shape, np.nan)
    for start, stop in _segments(frame["_rank"].to_numpy()):
        best[start:stop] = np.fmax.accumulate(counted[start:stop])
    out = frame[["run", "optimizer", "seed", "evaluations"]].copy()
    out["best"] = best
    return out.astype({c: _DTYPES[c] for c in BEST_COLUMNS})


def _grid_counts(last: int, grid: int | None) -> np.ndarray:
    """Evaluation counts ``1..last``, or at most `grid` of them evenly spaced (ends kept)."""
    if grid is None or grid >= last:
        return np.arange(1, last + 1, dtype=np.int64)
    if grid == 1:
        return np.array([last], dtype=np.int64)
    counts = np.floor(np.linspace(1, last, grid) + 0.5).astype(np.int64)
    return np.unique(counts)


def summarise_best(points: pd.DataFrame, grid: int | None = None) -> pd.DataFrame:
    """Mean ± SEM of best-so-far over each optimizer's runs, per evaluation count.

    Alignment: runs are compared at equal evaluation counts. An optimizer's curve covers the
    counts ``1..L`` reached by *every* one of its runs (``L`` = its shortest run); the tails of
    longer runs are left out rather than carried forward, so every count averages the same runs.

    NaN: a run with no valid point yet at a count is left out of that count's mean; ``n`` says
    how many runs were averaged (``n`` only grows with the count). ``sem = std(ddof=1)/sqrt(n)``,
    NaN for ``n == 1``; mean and SEM are NaN for ``n == 0``.

    Args:
        points: a points table (as for :func:`best_so_far`).
        grid: keep at most this many counts per optimizer, evenly spaced over ``1..L`` with both
            ends kept (``grid == 1`` keeps only ``L``); None keeps every count.

    Returns:
        ``optimizer, evaluations, mean, sem, n, runs`` sorted by optimizer then evaluations;
        ``runs`` is the optimizer's number of runs (``n <= runs``).
    """
    if grid is not None and (isinstance(grid, bool) or grid < 1):
        raise InputValueError(f"grid must be a positive int or None; got {grid!r}.")
    best = best_so_far(points)
    if best.empty:
        return _empty(BEST_SUMMARY_COLUMNS)
    parts = []
    for optimizer, group in best.groupby("optimizer", sort=True):
        lengths = group.groupby("run", sort=False)["evaluations"].max()
        counts = _grid_counts(int(lengths.min()), grid)
        kept = group[group["evaluations"].isin(counts)]
        stats = _mean_sem(kept, ["evaluations"], "best")
        stats.insert(0, "optimizer", str(optimizer))
        stats["runs"] = len(lengths)
        parts.append(stats)
    out = pd.concat(parts, ignore_index=True)[list(BEST_SUMMARY_COLUMNS)]
    return out.astype({c: _DTYPES[c] for c in BEST_SUMMARY_COLUMNS})


def valid_share_per_step(points: pd.DataFrame) -> pd.DataFrame:
    """Share of valid proposals in each step (round) of each run.

    Args:
        points: a points table (needs ``run, optimizer, seed, step, valid``).

    Returns:
        ``run, optimizer, seed, step, proposals, valid, share``: points in the step, how many of
        them are valid (the ``valid`` column; missing values count as invalid), and
        ``share = valid / proposals`` in [0, 1]. Ordered by ``(optimizer, seed, run, step)``.
    """
    if points.empty:
        return _empty(VALID_SHARE_COLUMNS)
    _require(points, ("run", "optimizer", "seed", "step", "valid"))
    if "index" not in points.columns:
        points = points.assign(index=0)
    frame = _ordered(points)
    frame["_valid"] = _valid(frame).astype(np.int64)
    out = (
        frame.groupby(["_rank", "step"], sort=True)
        .agg(
            run=("run", "first"),
            optimizer=("optimizer", "first"),
            seed=("seed", "first"),
            proposals=("_valid", "size"),
            valid=("_valid", "sum"),
        )
        .reset_index()
    )
    out["share"] = out["valid"].to_numpy(np.float64) / out["proposals"].to_numpy(np.float64)
    out = out[list(VALID_SHARE_COLUMNS)]
    return out.astype({c: _DTYPES[c] for c in VALID_SHARE_COLUMNS})


def summarise_valid_share(points: pd.DataFrame) -> pd.DataFrame:
    """Mean ± SEM of the per-step valid share over each optimizer's runs.

    Alignment: by step number. Every step any run of the optimizer reached is kept; ``n`` is the
    number of runs that have the step (no truncation: a share is not cumulative, so a run that
    ended early biases no later step's mean the way it would best-so-far). ``sem`` as in
    :func:`summarise_best` (NaN for ``n == 1``).

    Args:
        points: a points table (as for :func:`valid_share_per_step`).

    Returns:
        ``optimizer, step, mean, sem, n, runs`` sorted by optimizer then step; ``runs`` is the
        optimizer's number of runs.
    """
    shares = valid_share_per_step(points)
    if shares.empty:
        return _empty(VALID_SHARE_SUMMARY_COLUMNS)
    out = _mean_sem(shares, ["optimizer", "step"], "share")
    runs = shares.groupby("optimizer")["run"].nunique()
    out["runs"] = out["optimizer"].map(runs).to_numpy(dtype=np.int64)
    out = out[list(VALID_SHARE_SUMMARY_COLUMNS)]
    return out.astype({c: _DTYPES[c] for c in VALID_SHARE_SUMMARY_COLUMNS})


def pareto_front(realism: np.ndarray, objective: np.ndarray) -> np.ndarray:
    """Indices of the points no other point dominates, maximising both coordinates.

    Point `a` dominates `b` when ``a >= b`` in both coordinates and ``a > b`` in at least one.
    Points with a NaN in either coordinate are ignored; infinities compare as usual.

    Ties: points equal in both coordinates do not dominate one another, so every copy of a
    non-dominated point is kept. Two front points with the same realism therefore always have
    the same objective too.

    Args:
        realism: `n` values (e.g. ScaLES), higher is more realistic.
        objective: `n` objective values, higher is better.

    Returns:
        int64 indices into the inputs, sorted by realism ascending (objective descending along
        the front), equal points by index ascending. Empty when no point is free of NaN.
    """
    r = np.asarray(realism, dtype=np.float64)
    o = np.asarray(objective, dtype=np.float64)
    if r.ndim != 1 or o.shape != r.shape:
        raise InputValueError(
            f"realism and objective must be 1-D of one length; got {r.shape} and {o.shape}."
        )
    keep_in = np.flatnonzero(~np.isnan(r) & ~np.isnan(o))
    if keep_in.size == 0:
        return np.zeros(0, dtype=np.int64)
    r, o = r[keep_in], o[keep_in]
    # Realism descending, then objective descending: a point is dominated exactly when an
    # earlier point in this order with strictly greater realism has objective >= its own, or
    # a point with equal realism has a strictly greater objective (the first of its group).
    order = np.lexsort((-o, -r))
    r_s, o_s = r[order], o[order]
    group_start = np.r_[True, r_s[1:] != r_s[:-1]]
    start_at = np.maximum.accumulate(np.where(group_start, np.arange(r_s.size), 0))
    group_max = o_s[start_at]
    running = np.maximum.accumulate(o_s)
    first_group = start_at == 0
    before = running[np.maximum(start_at - 1, 0)]
    front = (o_s == group_max) & (first_group | (o_s > before))
    idx = keep_in[order[front]]
    return idx[np.lexsort((idx, np.asarray(realism, dtype=np.float64)[idx]))].astype(np.int64)


# --------------------------------------------------------------------------------------------
# Figures
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
    Curves follow :func:`summarise_best` (each ends at its optimizer's shortest run).

    Args:
        points: a points table.
        title: figure title (default "Best valid objective so far").
        grid: passed to :func:`summarise_best` to thin long curves.
        colours: optimizer -> colour overrides (default :func:`optimizer_colours`).

    Returns:
        The figure; with no rows, only the annotation "no runs selected"; with no valid point,
        "no valid points".
    """
    title = title or "Best valid objective so far"
    x_title, y_title = "evaluations", "best valid objective"
    if points.empty:
        return _message_figure("no runs selected", title, x_title, y_title)
    summary = summarise_best(points, grid=grid)
    if not np.isfinite(summary["mean"].to_numpy(dtype=np.float64)).any():
        return _message_figure("no valid points", title, x_title, y_title)
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
    The y axis is fixed to [0, 1] and shown as %. Steps as in :func:`summarise_valid_share`.

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
        return _message_figure("no runs selected", title, x_title, y_title)
    summary = summarise_valid_share(points)
    fig = go.Figure()
    palette = _colours(summary["optimizer"], colours)
    _summary_traces(fig, summary, "step", palette, "%", "lines+markers")
    fig = _titled(fig, title, x_title, y_title)
    fig.update_yaxes(range=[0.0, 1.0], tickformat=".0%")
    return fig


def _scatter_class(n: int) -> type[go.Scatter] | type[go.Scattergl]:
    return go.Scattergl if n > GL_THRESHOLD else go.Scatter


def _run_names(runs: pd.DataFrame) -> list[str]:
    """``"<optimizer> (seed s)"`` per run; the run id is appended where that name repeats."""
    base = [f"{o} (seed {s})" for o, s in zip(runs["optimizer"], runs["seed"], strict=True)]
    counts = pd.Series(base).value_counts()
    return [f"{b} [{r}]" if counts[b] > 1 else b for b, r in zip(base, runs["run"], strict=True)]


def _point_customdata(frame: pd.DataFrame) -> np.ndarray:
    """``[run, step, index]`` per row (object array, ints as Python ints)."""
    data = np.empty((len(frame), 3), dtype=object)
    data[:, 0] = frame["run"].astype(object).to_numpy()
    data[:, 1] = frame["step"].to_numpy(dtype=np.int64).tolist()
    data[:, 2] = frame["index"].to_numpy(dtype=np.int64).tolist()
    return data


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
        One median trace (named by the optimizer) and one band trace (``"<optimizer> 25-75%"``,
        no legend entry) per optimizer; with no finite ScaLES, a message figure.
    """
    title = title or "ScaLES of the proposals, per step (median and 25-75% band)"
    x_title, y_title = "step", SCORE_TITLES["scales"]
    if points.empty:
        return _message_figure("no runs selected", title, x_title, y_title)
    _require(points, ("optimizer", "step", "scales"))
    frame = points.assign(_s=_floats(points, "scales"))
    frame = frame[np.isfinite(frame["_s"])]
    if frame.empty:
        return _message_figure("no ScaLES values", title, x_title, y_title)
    palette = _colours(frame["optimizer"], colours)
    fig = go.Figure()
    for optimizer in sorted(frame["optimizer"].astype(str).unique()):
        part = frame[frame["optimizer"].astype(str) == optimizer]
        stats = part.groupby("step")["_s"].quantile([0.25, 0.5, 0.75]).unstack()
        steps = stats.index.to_numpy()
        colour = palette[optimizer]
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([steps, steps[::-1]]),
                y=np.concatenate([stats[0.75].to_numpy(), stats[0.25].to_numpy()[::-1]]),
                fill="toself",
                fillcolor=_rgba(colour, 0.2),
                line={"width": 0},
                hoverinfo="skip",
                name=f"{optimizer} 25-75%",
                legendgroup=optimizer,
                showlegend=False,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=stats[0.5].to_numpy(),
                mode="lines+markers",
                line={"color": colour, "width": 2},
                name=optimizer,
                legendgroup=optimizer,
                hovertemplate="step %{x}: median ScaLES %{y:.4g}<extra>" + optimizer + "</extra>",
            )
        )
    fig.update_layout(
        title={"text": title},
        xaxis={"title": {"text": x_title}},
        yaxis={"title": {"text": y_title}},
        legend={"orientation": "h", "y": -0.2, "yanchor": "top"},
        margin={"b": 110},
    )
    return fig


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
    title = title or "ScaLES of the proposals"
    x_title, y_title = "evaluation", SCORE_TITLES["scales"]
    if points.empty:
        return _message_figure("no runs selected", title, x_title, y_title)
    _require(points, ("run", "optimizer", "seed", "step", "index", "objective", "scales", "valid"))
    frame = _ordered(points)
    scales = _floats(frame, "scales")
    if not np.isfinite(scales).any():
        return _message_figure("no ScaLES values", title, x_title, y_title)
    valid = _valid(frame)
    objective = _floats(frame, "objective")
    runs = _run_table(points)
    names = _run_names(runs)
    palette = _colours(runs["optimizer"], colours)
    trace_class = _scatter_class(len(frame))
    fig = go.Figure()
    seed_rank = runs.groupby("optimizer", sort=False).cumcount().to_numpy()
    for rank, (start, stop) in enumerate(_segments(frame["_rank"].to_numpy())):
        part = frame.iloc[start:stop]
        optimizer = str(runs["optimizer"].iloc[rank])
        colour = palette[optimizer]
        ok = valid[start:stop]
        text = [
            f"step {s}, #{i}<br>objective {o:.4g}" if v else f"step {s}, #{i}<br>invalid"
            for s, i, o, v in zip(
                part["step"].tolist(),
                part["index"].tolist(),
                objective[start:stop].tolist(),
                ok.tolist(),
                strict=True,
            )
        ]
        fig.add_trace(
            trace_class(
                x=part["evaluations"].to_numpy(dtype=np.int64),
                y=scales[start:stop],
                mode="lines+markers",
                name=names[rank],
                legendgroup=optimizer,
                line={
                    "color": colour,
                    "width": 1,
                    "dash": SEED_DASHES[seed_rank[rank] % len(SEED_DASHES)],
                },
                marker={
                    "color": colour,
                    "size": np.where(ok, 6, 8).tolist(),
                    "symbol": np.where(ok, "circle", "x").tolist(),
                },
                customdata=_point_customdata(part),
                text=text,
                hovertemplate=(
                    "evaluation %{x}<br>ScaLES %{y:.4g}<br>%{text}"
                    f"<extra>{names[rank]}</extra>"
                ),
            )
        )
    if not valid.all():
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
    if threshold is not None and np.isfinite(threshold):
        fig.add_hline(
            y=float(threshold),
            line={"color": THRESHOLD_COLOUR, "width": 2, "dash": "dash"},
            annotation_text=f"{threshold_label} = {threshold:.3g}",
            annotation_position="top left",
        )
    return _titled(fig, title, x_title, y_title)


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
    non-dominated drawn points of all optimizers together (:func:`pareto_front`), joined as a
    staircase (``line.shape = "vh"``), also with ``customdata``. WebGL is used above
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
    """
    label = SCORE_TITLES.get(realism, realism)
    base_title = title or f"Objective against {label}"
    x_title, y_title = label, "objective"
    if points.empty:
        return _message_figure("no runs selected", base_title, x_title, y_title)
    if realism not in points.columns:
        raise KeyError(f"the points table has no column {realism!r}.")
    _require(points, ("run", "optimizer", "seed", "step", "index", "objective", "valid"))
    frame = _ordered(points)
    x = _floats(frame, realism)
    y = _floats(frame, "objective")
    counted = _valid(frame) & np.isfinite(y)
    drawn = counted & np.isfinite(x)
    invalid, unscored = int((~counted).sum()), int((counted & ~drawn).sum())
    hidden = []
    if invalid:
        hidden.append(f"{invalid} invalid")
    if unscored:
        hidden.append(f"{unscored} without {label}")
    full_title = f"{base_title} ({', '.join(hidden)} not shown)" if hidden else base_title
    if not drawn.any():
        return _message_figure("no valid points", full_title, x_title, y_title)
    runs = _run_table(points)
    palette = _colours(runs["optimizer"], colours)
    trace_class = _scatter_class(int(drawn.sum()))
    shown = frame[drawn].reset_index(drop=True)
    sx, sy = x[drawn], y[drawn]
    fig = go.Figure()
    hover = (
        f"{label} %{{x:.4g}}<br>objective %{{y:.4g}}<br>"
        "run %{customdata[0]}, step %{customdata[1]}, #%{customdata[2]}"
    )
    for optimizer in sorted(palette):
        mask = (shown["optimizer"] == optimizer).to_numpy()
        if not mask.any():
            continue
        fig.add_trace(
            trace_class(
                x=sx[mask],
                y=sy[mask],
                mode="markers",
                name=optimizer,
                legendgroup=optimizer,
                marker={"color": palette[optimizer], "size": 6, "opacity": 0.7},
                customdata=_point_customdata(shown[mask]),
                hovertemplate=hover + f"<extra>{optimizer}</extra>",
            )
        )
    front = pareto_front(sx, sy)
    fig.add_trace(
        trace_class(
            x=sx[front],
            y=sy[front],
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
    return _titled(fig, full_title, x_title, y_title)
