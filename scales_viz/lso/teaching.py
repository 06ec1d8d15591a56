"""The Learn walk's experiment: latent-space optimisation on one plane of a model, with and
without a realism penalty (the ScaLES paper's Figure 1, live).

:class:`PlaneModel` restricts a model to a plane ``z = origin + a u + b v``: its latents are
the plane coordinates `(a, b)`, so any optimiser of :mod:`scales_viz.lso.optimizers` searches
the plane and its whole path can be drawn. Decoding, validity, objectives and likelihood are
the full model's at the lifted point; ScaLES is the full model's score (its `d`-dimensional
Jacobian), and its gradient in `(a, b)` is the projection of the full gradient onto the plane.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from scales_viz.errors import InputValueError
from scales_viz.lso.analysis import mean_sem
from scales_viz.lso.optimizers import Budget, Settings, run
from scales_viz.lso.records import RunResult
from scales_viz.score import check_latents
from scales_viz.slices import Plane, pca_plane

if TYPE_CHECKING:
    from scales_viz.models.base import LatentModel

__all__ = [
    "Comparison",
    "PathSummary",
    "PlaneModel",
    "compare_on_plane",
    "learn_plane",
    "paired_verdict",
    "summarise_starts",
]

#: The walk's optimiser settings: a small initial design around the start, then rounds of
#: `BATCH` proposals by GP-guided gradient ascent in the plane.
N_INITIAL = 5
BATCH = 5
EVALUATIONS = 30
#: Spread of the initial design around the start, in prior scales.
START_JITTER = 0.15


class _PlaneDecoder(nn.Module):
    """`(a, b)` -> the wrapped decoder's logits at ``origin + a u + b v``."""

    def __init__(self, decoder: nn.Module, origin: Tensor, basis: Tensor) -> None:
        super().__init__()
        self.decoder = decoder
        self.origin: Tensor
        self.basis: Tensor
        self.register_buffer("origin", origin)
        self.register_buffer("basis", basis)

    def forward(self, ab: Tensor) -> Tensor:
        out: Tensor = self.decoder(self.origin + ab @ self.basis)
        return out


class PlaneModel:
    """`model` restricted to `plane`; latents are `n x 2` plane coordinates.

    A :class:`~scales_viz.models.LatentModel`, so the optimisers and
    :func:`~scales_viz.scoring.evaluate_points` take it as they take the model itself.
    ``data_latents`` are the plane coordinates of the model's reference latents (their
    projections onto the plane).
    """

    latent_dim = 2

    def __init__(self, model: LatentModel, plane: Plane) -> None:
        if plane.dim != model.latent_dim:
            raise InputValueError(
                f"the plane lies in {plane.dim} dimensions; model {model.name!r} has "
                f"{model.latent_dim}."
            )
        self.model = model
        self.plane = plane
        self.name = model.name
        self.objectives = model.objectives
        self.likelihood = model.likelihood
        self.prior_scale = model.prior_scale
        self._basis = np.stack([plane.u, plane.v])
        self._decoders: dict[tuple[torch.device, torch.dtype], nn.Module] = {}

    def lift(self, ab: Tensor) -> Tensor:
        """Latents `n x d` of plane coordinates `n x 2` (differentiable; `ab`'s dtype)."""
        check_latents(ab, "plane coordinates", 2)
        origin = torch.as_tensor(self.plane.origin, dtype=ab.dtype, device=ab.device)
        basis = torch.as_tensor(self._basis, dtype=ab.dtype, device=ab.device)
        return origin + ab @ basis

    @property
    def data_latents(self) -> Tensor:
        """Plane coordinates `m x 2` (float32) of the model's reference latents."""
        coords, _ = self.plane.project(self.model.data_latents)
        return torch.as_tensor(coords, dtype=torch.float32)

    def decoder_for(self, ab: Tensor) -> nn.Module:
        """The decoder of plane coordinates on `ab`'s device and dtype."""
        key = (ab.device, ab.dtype)
        if key not in self._decoders:
            inner = self.model.decoder_for(torch.zeros(1, dtype=ab.dtype, device=ab.device))
            origin = torch.as_tensor(self.plane.origin, dtype=ab.dtype, device=ab.device)
            basis = torch.as_tensor(self._basis, dtype=ab.dtype, device=ab.device)
            self._decoders[key] = _PlaneDecoder(inner, origin, basis).eval()
        return self._decoders[key]

    def decode(self, ab: Tensor) -> list[Any]:
        """The model's decodings at the lifted points."""
        return list(self.model.decode(self.lift(ab)))

    def validity(self, objects: Sequence[Any]) -> np.ndarray:
        """The model's validity rule."""
        return np.asarray(self.model.validity(objects), dtype=bool)

    def objective_values(self, objects: Sequence[Any], name: str) -> np.ndarray:
        """The model's objective `name`."""
        return np.asarray(self.model.objective_values(objects, name), dtype=np.float64)

    def scales(self, ab: Tensor, **options: Any) -> Tensor:
        """The full model's ScaLES at the lifted points (gradients flow back to `ab`)."""
        score: Tensor = self.model.scales(self.lift(ab), **options)
        return score


def learn_plane(model: LatentModel) -> Plane:
    """The walk's plane: the top two principal directions of the data latents, through the
    prior's mean (so the plane's prior is the model's prior restricted to it)."""
    return pca_plane(model.data_latents, origin=np.zeros(model.latent_dim))


@dataclass(frozen=True)
class PathSummary:
    """One run's numbers: its label, share of valid proposals, best valid objective, and the
    mean ScaLES of its proposals."""

    label: str
    valid_share: float
    best_objective: float
    mean_scales: float
    evaluations: int


@dataclass(frozen=True)
class Comparison:
    """The plain and penalised runs from one start, and their summaries."""

    objective: str
    start: tuple[float, float]
    plain: RunResult
    penalised: RunResult
    summaries: tuple[PathSummary, PathSummary]


def _summary(label: str, result: RunResult) -> PathSummary:
    valid = np.concatenate([s.valid for s in result.steps]) if result.steps else np.zeros(0)
    values = np.concatenate([s.scales for s in result.steps]) if result.steps else np.zeros(0)
    finite = values[np.isfinite(values)]
    return PathSummary(
        label=label,
        valid_share=float(valid.mean()) if valid.size else math.nan,
        best_objective=float(result.best_objective),
        mean_scales=float(finite.mean()) if finite.size else math.nan,
        evaluations=int(result.evaluations),
    )


def _initial_design(
    start: tuple[float, float], scale: float, seed: int
) -> tuple[tuple[float, ...], ...]:
    """The start and `N_INITIAL - 1` seeded points around it."""
    rng = np.random.default_rng(seed)
    points = np.asarray(start, dtype=np.float64) + START_JITTER * scale * rng.normal(
        size=(N_INITIAL, 2)
    )
    points[0] = start
    return tuple(tuple(float(v) for v in row) for row in points)


def compare_on_plane(
    plane_model: PlaneModel,
    objective: str,
    start: tuple[float, float],
    *,
    penalty: str = "scales",
    alpha: float = 0.5,
    evaluations: int = EVALUATIONS,
    seed: int = 0,
    callback: Callable[[int], None] | None = None,
) -> Comparison:
    """Run ``gp-ascent`` on the plane from `start`, without and with `penalty`.

    Both runs share the initial design (the start and four seeded points near it) and the
    seed, so they differ only by the penalty.

    Args:
        plane_model: the model on a plane.
        objective: one of the model's objectives (maximised).
        start: plane coordinates `(a, b)`.
        penalty: ``scales``, ``prior`` or ``likelihood``.
        alpha: weight of the unit penalty gradient.
        evaluations: budget of each run.
        seed: seeds the initial design and the runs.
        callback: called with the number of evaluations done over both runs (progress).

    Raises:
        InputValueError: unknown objective, ``penalty="none"``, or a start that is not two
            finite numbers.
    """
    if penalty == "none":
        raise InputValueError("choose a penalty to compare with the plain run.")
    if objective not in plane_model.objectives:
        raise InputValueError(
            f"model {plane_model.name!r} has no objective {objective!r}; it has "
            f"{sorted(plane_model.objectives)}."
        )
    if len(start) != 2 or not all(math.isfinite(float(v)) for v in start):
        raise InputValueError(f"the start must be two finite plane coordinates; got {start!r}.")
    start = (float(start[0]), float(start[1]))
    design = _initial_design(start, plane_model.prior_scale, seed)
    done = [0]

    def tick(step: Any) -> bool:
        done[0] += int(step.size)
        if callback is not None:
            callback(done[0])
        return False

    results = []
    for pen in ("none", penalty):
        settings = Settings(
            batch_size=BATCH,
            n_initial=N_INITIAL,
            start=design,
            penalty=pen,  # type: ignore[arg-type]
            alpha=alpha,
        )
        results.append(
            run(
                plane_model,
                objective,
                optimizer="gp-ascent",
                budget=Budget(evaluations=evaluations),
                seed=seed,
                settings=settings,
                callback=tick,
            )
        )
    plain, penalised = results
    return Comparison(
        objective=objective,
        start=start,
        plain=plain,
        penalised=penalised,
        summaries=(
            _summary("no penalty", plain),
            _summary(f"{penalty} penalty (alpha {alpha:g})", penalised),
        ),
    )


def summarise_starts(
    plane_model: PlaneModel,
    objective: str,
    starts: np.ndarray,
    *,
    penalty: str = "scales",
    alpha: float = 0.5,
    evaluations: int = EVALUATIONS,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """:func:`compare_on_plane` from each of `starts` (`k x 2`, seed = start index).

    Returns:
        A JSON-ready record: the settings, one row per start and run (valid share, best valid
        objective, mean ScaLES), and per run kind the mean and standard deviation over starts
        of the valid share and of the best valid objective (starts where a run found nothing
        valid are counted in ``no_valid``, not averaged).
    """
    starts = np.asarray(starts, dtype=np.float64)
    if starts.ndim != 2 or starts.shape[1] != 2 or starts.shape[0] < 1:
        raise InputValueError(f"starts must be k x 2 plane coordinates; got {starts.shape}.")
    rows: list[dict[str, Any]] = []
    for index, start in enumerate(starts):
        found = compare_on_plane(
            plane_model,
            objective,
            (float(start[0]), float(start[1])),
            penalty=penalty,
            alpha=alpha,
            evaluations=evaluations,
            seed=index,
        )
        for kind, summary in zip(("plain", "penalised"), found.summaries, strict=True):
            rows.append(
                {
                    "start": index,
                    "a": float(start[0]),
                    "b": float(start[1]),
                    "run": kind,
                    "label": summary.label,
                    "valid_share": summary.valid_share,
                    "best_objective": summary.best_objective,
                    "mean_scales": summary.mean_scales,
                }
            )
        if progress is not None:
            progress(index + 1, len(starts))
    aggregate: dict[str, dict[str, float]] = {}
    for kind in ("plain", "penalised"):
        share = mean_sem([r["valid_share"] for r in rows if r["run"] == kind])
        best = np.array([r["best_objective"] for r in rows if r["run"] == kind])
        best_stats = mean_sem(best)
        # One start has no spread to speak of; the Learn table shows it as ± 0.
        aggregate[kind] = {
            "valid_share_mean": share.mean,
            "valid_share_std": share.std if share.n > 1 else 0.0,
            "best_objective_mean": best_stats.mean,
            "best_objective_std": best_stats.std if best_stats.n > 1 else 0.0,
            "no_valid": int((~np.isfinite(best)).sum()),
        }
    return {
        "model": plane_model.name,
        "objective": objective,
        "optimizer": "gp-ascent",
        "penalty": penalty,
        "alpha": alpha,
        "evaluations": evaluations,
        "starts": int(starts.shape[0]),
        "rows": rows,
        "aggregate": aggregate,
    }


def paired_verdict(record: dict[str, Any]) -> dict[str, Any]:
    """Paired differences (penalised minus plain, start by start) of a :func:`summarise_starts`
    record: mean, standard error, starts better and tied, for the valid share and the best
    valid objective, and a one-paragraph verdict that says whether the difference is more than
    twice its standard error."""
    by_start: dict[int, dict[str, dict[str, Any]]] = {}
    for row in record["rows"]:
        by_start.setdefault(int(row["start"]), {})[row["run"]] = row
    out: dict[str, Any] = {}
    for key in ("valid_share", "best_objective"):
        diffs = np.array(
            [
                pair["penalised"][key] - pair["plain"][key]
                for pair in by_start.values()
                if {"plain", "penalised"} <= set(pair)
            ],
            dtype=np.float64,
        )
        diffs = diffs[np.isfinite(diffs)]
        stats = mean_sem(diffs)
        out[key] = {
            "mean_difference": stats.mean,
            "sem": stats.sem,
            "better": int((diffs > 0).sum()),
            "tied": int((diffs == 0).sum()),
            "starts": int(diffs.size),
        }

    def judged(key: str, scale: float, unit: str) -> str:
        d = out[key]
        clear = math.isfinite(d["sem"]) and abs(d["mean_difference"]) > 2 * d["sem"]
        return (
            f"{scale * d['mean_difference']:+.{1 if unit else 3}f}{unit} ± "
            f"{scale * d['sem']:.{1 if unit else 3}f}{unit} (better from {d['better']} of "
            f"{d['starts']} starts, tied at {d['tied']}; "
            f"{'more than' if clear else 'within'} twice its standard error)"
        )

    penalty = record.get("penalty", "the")
    out["verdict"] = (
        f"Start by start, the {penalty} penalty changed the share of valid proposals by "
        f"{judged('valid_share', 100, ' points')} and the best valid objective by "
        f"{judged('best_objective', 1, '')}."
    )
    return out
