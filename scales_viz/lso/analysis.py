"""Run analytics on the points table: best so far, summaries, valid share, Pareto front, mean ± SEM.

Everything here reads the *points table* of :mod:`scales_viz.lso.records` (one row per evaluated
point) and returns DataFrames, arrays or frozen dataclasses; nothing draws.
:mod:`scales_viz.figures.runs` draws the results.

Rules shared by every function:

* A run's points are taken in ``(step, index)`` order (a stable sort, so duplicated positions keep
  their table order); a run's *evaluation count* is the 1-based position in that order.
* Runs are listed by ``(optimizer, seed, run)``; each run must have exactly one optimizer and
  one seed (:class:`~scales_viz.errors.InputValueError` otherwise).
* A point *counts for the objective* when ``valid`` is true **and** its objective is finite (as in
  :meth:`scales_viz.lso.records.Step.best_valid`). The valid share uses the ``valid`` column alone.
* Mean ± SEM (:func:`mean_sem`, :func:`mean_sem_by`, the one place it is computed): non-finite
  values are left out, ``n`` says how many values were averaged, ``sem = std(ddof=1) / sqrt(n)``;
  with ``n == 1`` the SEM (and std) is NaN (undefined, not zero), with ``n == 0`` mean and SEM
  are NaN.
* A table with no rows gives an empty result of the documented columns; no exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from scales_viz.errors import InputValueError

__all__ = [
    "BEST_COLUMNS",
    "BEST_SUMMARY_COLUMNS",
    "MEAN_SEM_COLUMNS",
    "SCALES_QUANTILE_COLUMNS",
    "VALID_SHARE_COLUMNS",
    "VALID_SHARE_SUMMARY_COLUMNS",
    "MeanSem",
    "RealismObjective",
    "best_so_far",
    "float_column",
    "mean_sem",
    "mean_sem_by",
    "ordered_points",
    "pareto_front",
    "realism_objective",
    "require_columns",
    "run_segments",
    "run_table",
    "scales_quantiles_per_step",
    "summarise_best",
    "summarise_valid_share",
    "valid_mask",
    "valid_share_per_step",
]

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
#: The statistics :func:`mean_sem_by` adds after the group columns.
MEAN_SEM_COLUMNS: tuple[str, ...] = ("mean", "std", "sem", "n")
SCALES_QUANTILE_COLUMNS: tuple[str, ...] = ("optimizer", "step", "q25", "median", "q75")
#: The quantiles of :func:`scales_quantiles_per_step` (the band's edges and its median).
SCALES_QUANTILES: tuple[float, float, float] = (0.25, 0.5, 0.75)
#: The column :func:`ordered_points` adds: the run's position in :func:`run_table`.
RANK = "_rank"

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
    "std": np.float64,
    "sem": np.float64,
    "q25": np.float64,
    "median": np.float64,
    "q75": np.float64,
}


# --------------------------------------------------------------------------------------------
# Mean ± SEM
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeanSem:
    """Mean, sample standard deviation and standard error of the finite values of a sample.

    Attributes:
        mean: the mean (NaN when ``n == 0``).
        std: ``std(ddof=1)`` (NaN when ``n < 2``).
        sem: ``std / sqrt(n)`` (NaN when ``n < 2``).
        n: how many finite values were averaged.
    """

    mean: float
    std: float
    sem: float
    n: int


def mean_sem_by(frame: pd.DataFrame, by: Sequence[str], value: str) -> pd.DataFrame:
    """Mean ± SEM of `value` per group of `by` (non-finite values left out; module rules).

    Args:
        frame: any table with the columns `by` and `value` (numeric).
        by: the group columns; groups are sorted by them.
        value: the column to summarise.

    Returns:
        One row per group: the `by` columns, then ``mean, std, sem, n``
        (:data:`MEAN_SEM_COLUMNS`); a group whose values are all non-finite has ``n == 0`` and
        NaN statistics.
    """
    keys = list(by)
    values = frame[value].to_numpy(dtype=np.float64, na_value=np.nan)
    data = frame[keys].assign(_value=np.where(np.isfinite(values), values, np.nan))
    stats = data.groupby(keys, sort=True)["_value"].agg(["mean", "std", "count"]).reset_index()
    n = stats["count"].to_numpy(dtype=np.int64)
    std = np.where(n >= 2, stats["std"].to_numpy(dtype=np.float64), np.nan)
    out = stats[keys].copy()
    out["mean"] = np.where(n >= 1, stats["mean"].to_numpy(dtype=np.float64), np.nan)
    out["std"] = std
    out["sem"] = std / np.sqrt(np.maximum(n, 1))
    out["n"] = n
    return out


def mean_sem(values: ArrayLike) -> MeanSem:
    """Mean ± SEM of one sample: :func:`mean_sem_by` with a single group.

    Args:
        values: numbers (any shape; flattened); NaN and infinities are left out.

    Returns:
        The :class:`MeanSem`; ``n == 1`` gives a NaN SEM, ``n == 0`` NaN everywhere.
    """
    flat = np.asarray(values, dtype=np.float64).ravel()
    if flat.size == 0:
        return MeanSem(mean=np.nan, std=np.nan, sem=np.nan, n=0)
    row = mean_sem_by(pd.DataFrame({"group": 0, "value": flat}), ["group"], "value").iloc[0]
    return MeanSem(
        mean=float(row["mean"]), std=float(row["std"]), sem=float(row["sem"]), n=int(row["n"])
    )


# --------------------------------------------------------------------------------------------
# Table helpers
# --------------------------------------------------------------------------------------------


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=_DTYPES[c]) for c in columns})


def _typed(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    return frame[list(columns)].astype({c: _DTYPES[c] for c in columns})


def require_columns(points: pd.DataFrame, columns: Iterable[str]) -> None:
    """Raise :class:`InputValueError` naming the `columns` the points table lacks."""
    missing = [c for c in columns if c not in points.columns]
    if missing:
        raise InputValueError(f"the points table lacks the columns {missing}.")


def float_column(points: pd.DataFrame, column: str) -> np.ndarray:
    """A column as float64 (missing values NaN)."""
    return points[column].to_numpy(dtype=np.float64, na_value=np.nan)


def valid_mask(points: pd.DataFrame) -> np.ndarray:
    """The ``valid`` column as a plain bool array (missing values are False)."""
    return points["valid"].astype("boolean").fillna(False).to_numpy(dtype=bool)


def run_table(points: pd.DataFrame) -> pd.DataFrame:
    """One row per run (``run, optimizer, seed``; optimizer as str), by optimizer, seed, run.

    Raises:
        InputValueError: a run has more than one optimizer or seed.
    """
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


def ordered_points(points: pd.DataFrame) -> pd.DataFrame:
    """The points in run order (:func:`run_table`), then ``(step, index)``.

    Adds ``evaluations`` (1-based per run) and :data:`RANK` (the run's row in
    :func:`run_table`); ``optimizer`` (as str) and ``seed`` come from :func:`run_table`.
    """
    runs = run_table(points)
    rank = pd.Series(np.arange(len(runs)), index=pd.Index(runs["run"], dtype=object))
    frame = points.assign(
        **{RANK: points["run"].astype(object).map(rank).to_numpy(dtype=np.int64)},
        _row=np.arange(len(points)),
    )
    frame = frame.sort_values([RANK, "step", "index", "_row"]).reset_index(drop=True)
    ranks = frame[RANK].to_numpy()
    frame["optimizer"] = runs["optimizer"].to_numpy()[ranks]
    frame["seed"] = runs["seed"].to_numpy()[ranks]
    frame["evaluations"] = frame.groupby(RANK, sort=False).cumcount().to_numpy() + 1
    return frame


def run_segments(keys: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of equal consecutive keys (e.g. :data:`RANK`)."""
    if keys.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    stops = np.r_[starts[1:], keys.size]
    return list(zip(starts.tolist(), stops.tolist(), strict=True))


# --------------------------------------------------------------------------------------------
# Best so far and valid share
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
    require_columns(points, ("run", "optimizer", "seed", "step", "index", "objective", "valid"))
    frame = ordered_points(points)
    objective = float_column(frame, "objective")
    counted = np.where(valid_mask(frame) & np.isfinite(objective), objective, np.nan)
    best = np.full(counted.shape, np.nan)
    for start, stop in run_segments(frame[RANK].to_numpy()):
        best[start:stop] = np.fmax.accumulate(counted[start:stop])
    return _typed(frame.assign(best=best), BEST_COLUMNS)


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
    how many runs were averaged (``n`` only grows with the count). SEM as in :func:`mean_sem`.

    Args:
        points: a points table (as for :func:`best_so_far`).
        grid: keep at most this many counts per optimizer, evenly spaced over ``1..L`` with both
            ends kept (``grid == 1`` keeps only ``L``); None keeps every count.

    Returns:
        ``optimizer, evaluations, mean, sem, n, runs`` sorted by optimizer then evaluations;
        ``runs`` is the optimizer's number of runs (``n <= runs``).

    Raises:
        InputValueError: `grid` is not a positive int or None.
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
        stats = mean_sem_by(group[group["evaluations"].isin(counts)], ["evaluations"], "best")
        parts.append(stats.assign(optimizer=str(optimizer), runs=len(lengths)))
    return _typed(pd.concat(parts, ignore_index=True), BEST_SUMMARY_COLUMNS)


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
    require_columns(points, ("run", "optimizer", "seed", "step", "valid"))
    if "index" not in points.columns:
        points = points.assign(index=0)
    frame = ordered_points(points)
    frame["_valid"] = valid_mask(frame).astype(np.int64)
    out = (
        frame.groupby([RANK, "step"], sort=True)
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
    return _typed(out, VALID_SHARE_COLUMNS)


def summarise_valid_share(points: pd.DataFrame) -> pd.DataFrame:
    """Mean ± SEM of the per-step valid share over each optimizer's runs.

    Alignment: by step number. Every step any run of the optimizer reached is kept; ``n`` is the
    number of runs that have the step (no truncation: a share is not cumulative, so a run that
    ended early biases no later step's mean the way it would best-so-far). SEM as in
    :func:`mean_sem` (NaN for ``n == 1``).

    Args:
        points: a points table (as for :func:`valid_share_per_step`).

    Returns:
        ``optimizer, step, mean, sem, n, runs`` sorted by optimizer then step; ``runs`` is the
        optimizer's number of runs.
    """
    shares = valid_share_per_step(points)
    if shares.empty:
        return _empty(VALID_SHARE_SUMMARY_COLUMNS)
    out = mean_sem_by(shares, ["optimizer", "step"], "share")
    runs = shares.groupby("optimizer")["run"].nunique()
    out["runs"] = out["optimizer"].map(runs).to_numpy(dtype=np.int64)
    return _typed(out, VALID_SHARE_SUMMARY_COLUMNS)


def scales_quantiles_per_step(points: pd.DataFrame) -> pd.DataFrame:
    """ScaLES quartiles of each optimizer's proposals per step, pooled over its runs.

    Args:
        points: a points table (needs ``optimizer, step, scales``); non-finite ScaLES values
            are left out.

    Returns:
        ``optimizer, step, q25, median, q75`` (:data:`SCALES_QUANTILE_COLUMNS`, linear
        interpolation as in :meth:`pandas.Series.quantile`) sorted by optimizer (as str) then
        step; only steps with at least one finite value appear.
    """
    if points.empty:
        return _empty(SCALES_QUANTILE_COLUMNS)
    require_columns(points, ("optimizer", "step", "scales"))
    scales = float_column(points, "scales")
    finite = np.isfinite(scales)
    frame = pd.DataFrame(
        {
            "optimizer": points["optimizer"].astype(str).to_numpy()[finite],
            "step": points["step"].to_numpy(dtype=np.int64)[finite],
            "scales": scales[finite],
        }
    )
    if frame.empty:
        return _empty(SCALES_QUANTILE_COLUMNS)
    stats = frame.groupby(["optimizer", "step"], sort=True)["scales"]
    stats = stats.quantile(list(SCALES_QUANTILES)).unstack().reset_index()
    low, mid, high = SCALES_QUANTILES
    stats = stats.rename(columns={low: "q25", mid: "median", high: "q75"})
    return _typed(stats, SCALES_QUANTILE_COLUMNS)


# --------------------------------------------------------------------------------------------
# Realism against objective
# --------------------------------------------------------------------------------------------


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

    Raises:
        InputValueError: the inputs are not 1-D of one length.
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


@dataclass(frozen=True)
class RealismObjective:
    """The points of a realism-versus-objective comparison and their Pareto front.

    Attributes:
        points: the `m` drawn points (valid, finite objective, finite realism) in
            :func:`ordered_points` order, index reset; its ``realism`` column holds the realism
            score's values whatever the score's name.
        front: int64 indices into `points` of the Pareto front (:func:`pareto_front`).
        invalid: how many points do not count for the objective (invalid or non-finite).
        unscored: how many count for it but lack a finite realism score.
    """

    points: pd.DataFrame
    front: np.ndarray
    invalid: int
    unscored: int


def realism_objective(points: pd.DataFrame, realism: str = "scales") -> RealismObjective:
    """The points that can be placed on realism-versus-objective axes, and their Pareto front.

    Args:
        points: a non-empty points table (needs ``run, optimizer, seed, step, index, objective,
            valid`` and the `realism` column).
        realism: the realism column (``"scales"``, ``"likelihood"`` or any numeric column).

    Returns:
        The :class:`RealismObjective`; its front is over all optimizers together.

    Raises:
        KeyError: the table has no `realism` column.
        InputValueError: a required column is missing, or a run has two optimizers or seeds.
    """
    if realism not in points.columns:
        raise KeyError(f"the points table has no column {realism!r}.")
    require_columns(points, ("run", "optimizer", "seed", "step", "index", "objective", "valid"))
    frame = ordered_points(points)
    x = float_column(frame, realism)
    y = float_column(frame, "objective")
    counted = valid_mask(frame) & np.isfinite(y)
    drawn = counted & np.isfinite(x)
    shown = frame[drawn].assign(realism=x[drawn], objective=y[drawn]).reset_index(drop=True)
    return RealismObjective(
        points=shown,
        front=pareto_front(x[drawn], y[drawn]),
        invalid=int((~counted).sum()),
        unscored=int((counted & ~drawn).sum()),
    )
