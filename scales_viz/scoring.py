"""Scoring latent points on a model: the four scores, by name, and whole evaluations.

One place for the four per-latent scores that the views, the cards and the optimisers compare
(``scales``, ``likelihood``, ``prior``, ``distance_to_data``): their names, labels and axis
titles, and :func:`score_latents`, the dispatch every caller uses (Slices, the model cards,
the optimisers' penalties). :func:`evaluate_points` decodes and scores points for the
optimisers (one step at a time) and the importers (a whole file, chunked, with progress), so
that a run made here and a run imported from elsewhere carry the same columns;
:func:`all_scores` is every per-point number of a set of latents (maps, selections, ``score``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from scales_viz.errors import InputValueError
from scales_viz.score import check_latents, distance_to_data, prior_logpdf
from scales_viz.score import likelihood as likelihood_score

if TYPE_CHECKING:
    from scales_viz.cluster import Cluster
    from scales_viz.models.base import LatentModel

__all__ = [
    "NEIGHBOURS",
    "SCORE_LABELS",
    "SCORE_NAMES",
    "SCORE_TITLES",
    "Evaluated",
    "all_scores",
    "evaluate_points",
    "score_latents",
]

#: The four scores of a latent, higher = more realistic.
SCORE_NAMES = ("scales", "likelihood", "prior", "distance_to_data")
#: Short labels (tables, cards).
SCORE_LABELS = {
    "scales": "ScaLES",
    "likelihood": "likelihood",
    "prior": "prior",
    "distance_to_data": "distance to data",
}
#: Neighbours averaged by the distance-to-data score.
NEIGHBOURS = 3
#: Axis and colour-bar titles (figures).
SCORE_TITLES = {
    "scales": "ScaLES",
    "likelihood": "log p(argmax decoding)",
    "prior": "log prior",
    "distance_to_data": f"-distance to data (k={NEIGHBOURS})",
}


def score_latents(
    model: LatentModel,
    name: str,
    z: torch.Tensor,
    *,
    data: torch.Tensor | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Score `name` of each row of `z` under `model` (differentiable where the score is).

    Args:
        name: one of :data:`SCORE_NAMES`.
        data: the reference latents of ``distance_to_data`` (default: the model's).
        progress: ScaLES's ``progress(done, total)``.

    Raises:
        InputValueError: an unknown score name.
    """
    if name == "scales":
        result: torch.Tensor = (
            model.scales(z) if progress is None else model.scales(z, progress=progress)
        )
        return result
    if name == "likelihood":
        return likelihood_score(model.decoder_for(z), z, likelihood=model.likelihood)
    if name == "prior":
        return prior_logpdf(z, model.prior_scale)
    if name == "distance_to_data":
        reference = model.data_latents if data is None else data
        return distance_to_data(z, reference.to(device=z.device, dtype=z.dtype), NEIGHBOURS)
    raise InputValueError(f"unknown score {name!r}; choose from {list(SCORE_NAMES)}.")


#: Points per chunk when evaluating many (bounds memory and paces progress reports).
EVALUATE_CHUNK = 256


@dataclass(frozen=True)
class Evaluated:
    """Per-point evaluation of `n` latents (arrays of length `n`)."""

    decoded: list[str | None]
    valid: np.ndarray
    objective: np.ndarray
    scales: np.ndarray
    likelihood: np.ndarray
    #: Values of the ``also`` objectives, by name (computed on the same decodings).
    others: dict[str, np.ndarray] = field(default_factory=dict)


def _text(obj: Any) -> str | None:
    return obj if isinstance(obj, str) else None


def evaluate_points(
    model: LatentModel,
    objective: str,
    z: np.ndarray | torch.Tensor,
    *,
    with_scales: bool = True,
    also: Sequence[str] = (),
    device: torch.device | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Evaluated:
    """Decode `z` on `model` and score every point.

    Args:
        model: a :class:`~scales_viz.models.LatentModel`.
        objective: one of ``model.objectives``.
        z: `n x d` latents (finite).
        with_scales: compute ScaLES (exact, float64); NaN otherwise.
        also: more objectives to evaluate on the same decodings (``Evaluated.others``).
        device: where to score (default CPU).
        progress: called as ``progress(done, n)`` after each chunk.

    Raises:
        InputValueError: unknown objective, or `z` of the wrong shape or not finite.
    """
    for name in (objective, *also):
        if name not in model.objectives:
            raise InputValueError(
                f"model {model.name!r} has no objective {name!r}; "
                f"it has {sorted(model.objectives)}."
            )
    tensor = z if torch.is_tensor(z) else torch.from_numpy(np.array(z, dtype=np.float64))
    tensor = check_latents(tensor.to(torch.float64), "z", model.latent_dim)
    n = tensor.shape[0]
    device = device or torch.device("cpu")
    decoded: list[str | None] = []
    keys = ("valid", "obj", "scales", "lik", *(f"also:{name}" for name in also))
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    done = 0
    for chunk in tensor.split(EVALUATE_CHUNK):
        objects = model.decode(chunk.float())
        valid = np.asarray(model.validity(objects), dtype=bool)
        parts["valid"].append(valid)
        parts["obj"].append(model.objective_values(objects, objective))
        for name in also:
            parts[f"also:{name}"].append(model.objective_values(objects, name))
        decoded.extend(_text(obj) for obj in objects)
        on_device = chunk.to(device)
        with torch.no_grad():
            lik = likelihood_score(
                model.decoder_for(on_device), on_device, likelihood=model.likelihood
            )
            parts["lik"].append(lik.double().cpu().numpy())
            if with_scales:
                parts["scales"].append(model.scales(on_device).double().cpu().numpy())
            else:
                parts["scales"].append(np.full(chunk.shape[0], np.nan))
        done += chunk.shape[0]
        if progress is not None:
            progress(done, n)
    if n == 0:
        nothing = np.zeros(0)
        others = {name: nothing for name in also}
        return Evaluated([], np.zeros(0, bool), nothing, nothing, nothing, others)
    return Evaluated(
        decoded=decoded,
        valid=np.concatenate(parts["valid"]),
        objective=np.concatenate(parts["obj"]),
        scales=np.concatenate(parts["scales"]),
        likelihood=np.concatenate(parts["lik"]),
        others={name: np.concatenate(parts[f"also:{name}"]) for name in also},
    )


def all_scores(
    model: LatentModel,
    z: np.ndarray | torch.Tensor,
    *,
    device: torch.device | None = None,
    progress: Callable[[int, int], None] | None = None,
    cluster: Cluster | None = None,
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Every per-point number of `z` and the decoded texts ("" for images).

    With `cluster` (a :class:`~scales_viz.cluster.Cluster` holding the same model) the
    chunks are scored on its actors and put back in order.

    Returns:
        ``scores`` with ``scales``, ``likelihood``, ``valid`` (0/1 float) and one
        ``objective:NAME`` per objective (NaN where invalid), and the decoded texts.
    """
    if cluster is not None:
        array = z.detach().cpu().numpy() if isinstance(z, torch.Tensor) else np.asarray(z)
        n = array.shape[0]
        chunks = [array[i : i + EVALUATE_CHUNK] for i in range(0, n, EVALUATE_CHUNK)]

        def chunk_progress(done: int, _: int) -> None:
            if progress is not None:
                progress(min(done * EVALUATE_CHUNK, n), n)

        results = cluster.map(all_scores, chunks, progress=chunk_progress)
        if not results:
            return all_scores(model, array)
        merged = {k: np.concatenate([r[0][k] for r in results]) for k in results[0][0]}
        return merged, [text for r in results for text in r[1]]
    first, *rest = list(model.objectives)
    found = evaluate_points(model, first, z, also=rest, device=device, progress=progress)
    scores = {
        "scales": found.scales,
        "likelihood": found.likelihood,
        "valid": found.valid.astype(np.float64),
        f"objective:{first}": found.objective,
    }
    for name, values in found.others.items():
        scores[f"objective:{name}"] = values
    return scores, [d or "" for d in found.decoded]
