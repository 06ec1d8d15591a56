"""The Learn walk-through's experiment: gradient ascent on ``looks_like_k``, with and without a
realism penalty, from one start point on a 2-D model (``digits-2d``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from scales_viz.errors import InputValueError
from scales_viz.lso.optimizers import Budget, Settings, run
from scales_viz.lso.records import RunResult
from scales_viz.score import distance_to_data

__all__ = ["Chase", "ChaseSummary", "chase"]


@dataclass(frozen=True)
class ChaseSummary:
    """Where one path ended: its last point's numbers."""

    label: str
    end: np.ndarray
    objective: float
    valid: bool
    scales: float
    distance_to_data: float
    valid_share: float


@dataclass(frozen=True)
class Chase:
    """The two runs (plain and penalised) and their summaries."""

    digit: int
    plain: RunResult
    penalised: RunResult
    summaries: tuple[ChaseSummary, ChaseSummary]


def _summary(label: str, result: RunResult, data: torch.Tensor) -> ChaseSummary:
    last = result.steps[-1]
    z = np.concatenate([s.z for s in result.steps])
    valid = np.concatenate([s.valid for s in result.steps])
    distance = distance_to_data(torch.as_tensor(last.z), data, k=min(3, data.shape[0]))
    return ChaseSummary(
        label=label,
        end=z[-1],
        objective=float(last.objective[0]),
        valid=bool(last.valid[0]),
        scales=float(last.scales[0]),
        distance_to_data=float(-distance[0]),
        valid_share=float(valid.mean()),
    )


def chase(
    model: Any,
    digit: int,
    start: tuple[float, float],
    *,
    penalty: str = "scales",
    alpha: float = 0.5,
    steps: int = 40,
    step_size: float = 0.1,
) -> Chase:
    """Climb the classifier's probability of `digit` from `start`, once plainly and once with
    the `penalty` gradient (unit length, weight `alpha`) added.

    Raises:
        InputValueError: the model has no ``looks_like_DIGIT`` objective, is not 2-D, or the
            settings are out of range.
    """
    name = f"looks_like_{digit}"
    if name not in model.objectives:
        raise InputValueError(f"model {model.name!r} has no objective {name!r}.")
    if model.latent_dim != 2 or len(start) != 2:
        raise InputValueError(
            f"the walk-through needs a 2-D model and a 2-D start; got d={model.latent_dim}."
        )
    if penalty == "none":
        raise InputValueError("choose a penalty to compare with the plain run.")
    budget = Budget(evaluations=steps)
    base = Settings(batch_size=1, start=(tuple(float(v) for v in start),), step_size=step_size)
    plain = run(model, name, optimizer="gradient", budget=budget, seed=0, settings=base)
    settings = Settings(
        batch_size=1,
        start=base.start,
        step_size=step_size,
        penalty=penalty,  # type: ignore[arg-type]
        alpha=alpha,
    )
    penalised = run(model, name, optimizer="gradient", budget=budget, seed=0, settings=settings)
    data = model.data_latents.double()
    return Chase(
        digit=digit,
        plain=plain,
        penalised=penalised,
        summaries=(
            _summary("no penalty", plain, data),
            _summary(f"{penalty} penalty (alpha {alpha:g})", penalised, data),
        ),
    )
