"""What an LSO run is made of: evaluated steps, run metadata, results, and the points table.

A run is a sequence of steps; a step is one batch of proposals, each evaluated on the model:
its latent `z`, the decoded object (text; ``None`` for images), validity, the objective (NaN
where invalid), ScaLES and the likelihood baseline. Optimisers hand each step to a callback;
recording (the run store, the app's live curves) is the callback's job.

The *points table* is the one tabular layout used by the store, the importers, the exporters
and the figures (a :class:`pandas.DataFrame`, one row per evaluated point):

=============  =========  =====================================================================
column         dtype      meaning
=============  =========  =====================================================================
``run``        str        run id
``optimizer``  str        optimiser name (as shown in legends)
``seed``       int        the run's seed
``step``       int        step (round) number, from 0
``index``      int        position of the point within its step, from 0
``z_0..``      float64    the latent, one column per dimension (``z_0`` to ``z_{d-1}``)
``objective``  float64    objective value; NaN where the decoding is invalid
``scales``     float64    ScaLES under the model the run belongs to (NaN if not computed)
``likelihood`` float64    log-probability of the argmax decoding (NaN if not computed)
``valid``      bool       whether the decoding is valid
``decoded``    object     decoded text, or None (images are re-decoded from `z`)
``wall_time``  float64    seconds since the run started when the point's step was done
=============  =========  =====================================================================
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scales_viz.errors import InputValueError

__all__ = [
    "RunInfo",
    "RunResult",
    "RunStatus",
    "Step",
    "best_path",
    "best_path_rows",
    "latent_columns",
    "points_frame",
    "z_matrix",
]


class RunStatus(str, enum.Enum):
    """Where a run stands (stored as its string value)."""

    RUNNING = "running"
    #: The evaluation budget was spent.
    COMPLETED = "completed"
    #: A stop rule or the callback ended it early.
    STOPPED = "stopped"
    #: An error ended it; the reason says which.
    FAILED = "failed"
    #: Its process died mid-run (found by the store); completed steps are kept.
    INTERRUPTED = "interrupted"
    #: Imported from a file.
    IMPORTED = "imported"


@dataclass(frozen=True)
class Step:
    """One evaluated batch of proposals.

    Attributes:
        step: step number, from 0.
        z: `n x d` float64 latents.
        objective: `n` float64 objective values, NaN where invalid.
        valid: `n` bool.
        decoded: `n` decoded texts, or None entries (images).
        scales: `n` float64 ScaLES values (NaN where not computed).
        likelihood: `n` float64 likelihood baseline values (NaN where not computed).
        wall_time: seconds since the run started when this step finished.
    """

    step: int
    z: np.ndarray
    objective: np.ndarray
    valid: np.ndarray
    decoded: Sequence[str | None]
    scales: np.ndarray
    likelihood: np.ndarray
    wall_time: float

    def __post_init__(self) -> None:
        z = np.asarray(self.z, dtype=np.float64)
        if z.ndim != 2:
            raise InputValueError(f"Step.z must be n x d; got shape {z.shape}.")
        n = z.shape[0]
        object.__setattr__(self, "z", z)
        for name, dtype in (
            ("objective", np.float64),
            ("scales", np.float64),
            ("likelihood", np.float64),
            ("valid", bool),
        ):
            value = np.asarray(getattr(self, name), dtype=dtype).reshape(-1)
            if value.shape[0] != n:
                raise InputValueError(
                    f"Step.{name} must have one entry per point ({n}); got {value.shape[0]}."
                )
            object.__setattr__(self, name, value)
        decoded = list(self.decoded)
        if len(decoded) != n:
            raise InputValueError(
                f"Step.decoded must have one entry per point ({n}); got {len(decoded)}."
            )
        object.__setattr__(self, "decoded", decoded)
        if isinstance(self.step, bool) or int(self.step) != self.step or self.step < 0:
            raise InputValueError(f"Step.step must be a non-negative int; got {self.step!r}.")
        object.__setattr__(self, "step", int(self.step))
        object.__setattr__(self, "wall_time", float(self.wall_time))

    @property
    def size(self) -> int:
        """Points in the step."""
        return int(self.z.shape[0])

    def best_valid(self) -> float:
        """The step's best valid objective, NaN when none is valid."""
        values = self.objective[self.valid & np.isfinite(self.objective)]
        return float(values.max()) if values.size else math.nan


@dataclass
class RunInfo:
    """A run's metadata (one row of the store's ``runs`` table).

    Attributes:
        id: unique id (hex).
        name: display name (editable).
        model: model name.
        task: objective name.
        optimizer: optimiser name, e.g. ``gp-ascent+scales``.
        settings: the optimiser's settings (JSON-serialisable).
        seed: the run's seed.
        created: ISO 8601 creation time (UTC).
        status: a :class:`RunStatus` value.
        reason: why the run ended (empty while running).
    """

    id: str
    name: str
    model: str
    task: str
    optimizer: str
    settings: dict[str, Any]
    seed: int
    created: str
    status: str = RunStatus.RUNNING.value
    reason: str = ""


@dataclass
class RunResult:
    """What an optimiser returns.

    Attributes:
        status: COMPLETED, STOPPED or FAILED.
        reason: why it stopped, in words.
        steps: every evaluated step, in order.
        evaluations: points evaluated.
        best_objective: best valid objective (NaN if none valid).
        best_z: the latent of that point (None if none valid).
        runtime: seconds.
    """

    status: RunStatus
    reason: str
    steps: list[Step] = field(default_factory=list)
    evaluations: int = 0
    best_objective: float = math.nan
    best_z: np.ndarray | None = None
    runtime: float = 0.0


def latent_columns(d: int) -> list[str]:
    """``z_0`` .. ``z_{d-1}``."""
    return [f"z_{i}" for i in range(d)]


def points_frame(
    steps: Iterable[Step], *, run: str, optimizer: str, seed: int, latent_dim: int | None = None
) -> pd.DataFrame:
    """The points table of one run's steps (columns as in the module docstring)."""
    rows: list[pd.DataFrame] = []
    for step in steps:
        d = step.z.shape[1]
        if latent_dim is not None and d != latent_dim:
            raise InputValueError(f"step {step.step} has d={d}; the run has d={latent_dim}.")
        latent_dim = d
        frame = pd.DataFrame(step.z, columns=latent_columns(d))
        frame.insert(0, "run", run)
        frame.insert(1, "optimizer", optimizer)
        frame.insert(2, "seed", int(seed))
        frame.insert(3, "step", step.step)
        frame.insert(4, "index", np.arange(step.size))
        frame["objective"] = step.objective
        frame["scales"] = step.scales
        frame["likelihood"] = step.likelihood
        frame["valid"] = step.valid
        frame["decoded"] = pd.Series(step.decoded, dtype=object)
        frame["wall_time"] = step.wall_time
        rows.append(frame)
    if not rows:
        return empty_points_frame(latent_dim or 0)
    return pd.concat(rows, ignore_index=True)


def empty_points_frame(d: int) -> pd.DataFrame:
    """A points table with no rows and `d` latent columns."""
    columns: dict[str, Any] = {
        "run": pd.Series([], dtype=object),
        "optimizer": pd.Series([], dtype=object),
        "seed": pd.Series([], dtype=np.int64),
        "step": pd.Series([], dtype=np.int64),
        "index": pd.Series([], dtype=np.int64),
    }
    for name in latent_columns(d):
        columns[name] = pd.Series([], dtype=np.float64)
    for name in ("objective", "scales", "likelihood"):
        columns[name] = pd.Series([], dtype=np.float64)
    columns["valid"] = pd.Series([], dtype=bool)
    columns["decoded"] = pd.Series([], dtype=object)
    columns["wall_time"] = pd.Series([], dtype=np.float64)
    return pd.DataFrame(columns)


def z_matrix(points: pd.DataFrame) -> np.ndarray:
    """The `n x d` float64 latents of a points table (columns ``z_0`` ...)."""
    names = [c for c in points.columns if isinstance(c, str) and c.startswith("z_")]
    names.sort(key=lambda c: int(c[2:]))
    if names != latent_columns(len(names)):
        raise InputValueError(
            f"latent columns must be z_0..z_{{d-1}} without gaps; got {names[:5]}..."
        )
    return points[names].to_numpy(dtype=np.float64)


def steps_from_points(points: pd.DataFrame) -> list[Step]:
    """Rebuild one run's steps from its points table (rows sorted by step then index)."""
    z = z_matrix(points)
    out = []
    ordered = points.assign(_row=np.arange(len(points))).sort_values(["step", "index"])
    for step, group in ordered.groupby("step", sort=True):
        rows = group["_row"].to_numpy()
        out.append(
            Step(
                step=int(step),
                z=z[rows],
                objective=group["objective"].to_numpy(np.float64),
                valid=group["valid"].to_numpy(bool),
                decoded=[None if _missing(v) else str(v) for v in group["decoded"]],
                scales=group["scales"].to_numpy(np.float64),
                likelihood=group["likelihood"].to_numpy(np.float64),
                wall_time=float(group["wall_time"].max()),
            )
        )
    return out


def best_path_rows(points: pd.DataFrame) -> tuple[pd.DataFrame, int | None]:
    """One run's path as rows of its points table: the best proposal of each step, in step
    order (a step without a valid point contributes its first proposal), and the index (into
    those rows) of the run's best valid point, or None when no point is valid."""
    if points.empty:
        return points.iloc[0:0], None
    ordered = points.sort_values(["step", "index"], kind="stable")
    objective = ordered["objective"].to_numpy(np.float64)
    score = np.where(ordered["valid"].to_numpy(bool) & np.isfinite(objective), objective, -np.inf)
    steps = ordered["step"].to_numpy()
    keep = []
    for step in np.unique(steps):
        rows = np.flatnonzero(steps == step)
        keep.append(int(rows[np.argmax(score[rows])]))
    kept = score[keep]
    best = int(np.argmax(kept)) if np.isfinite(kept).any() else None
    return ordered.iloc[keep], best


def best_path(points: pd.DataFrame) -> tuple[np.ndarray, int | None]:
    """One run's path for drawing: the best proposal of each step, in step order.

    Batched optimisers propose many points per step; one point per step keeps a path
    readable. A step without a valid point contributes its first proposal.

    Returns:
        `(z, best)`: the `steps x d` latents, and the index (into them) of the run's best
        valid point, or None when no point is valid.
    """
    if points.empty:
        return np.zeros((0, 0)), None
    rows, best = best_path_rows(points)
    return z_matrix(rows), best


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
