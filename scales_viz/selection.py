"""The linked selection: latent points picked on any view, inspected together.

Slices (cells), Projection (lasso or box) and Optimisers (proposals) write one
:class:`Selection`; the Inspect view reads it. A selection always holds the stored latents
themselves, so decoding never depends on where a point happens to be drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from scales_viz.errors import InputValueError
from scales_viz.lso.records import latent_columns
from scales_viz.score import distance_to_data, prior_logpdf
from scales_viz.scoring import all_scores

if TYPE_CHECKING:
    from scales_viz.models.base import LatentModel

__all__ = ["MAX_SELECTION", "SOURCES", "Selection", "inspect_table"]

SOURCES = ("slices", "projection", "optimizers")
#: Most points a selection keeps (a lasso over a dense map can catch thousands).
MAX_SELECTION = 2000


@dataclass(frozen=True)
class Selection:
    """Points picked on one view.

    Attributes:
        model: the model the latents belong to.
        source: the view that made it (one of ``SOURCES``).
        z: `n x d` float64 latents.
        labels: `n` short descriptions (where each point came from).
    """

    model: str
    source: str
    z: np.ndarray
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise InputValueError(
                f"selection source must be one of {SOURCES}; got {self.source!r}."
            )
        z = np.asarray(self.z, dtype=np.float64)
        if z.ndim != 2:
            raise InputValueError(f"selection latents must be n x d; got shape {z.shape}.")
        if not np.isfinite(z).all():
            raise InputValueError("selection latents hold NaN or inf.")
        if len(self.labels) != z.shape[0]:
            raise InputValueError(
                f"a selection needs one label per point ({z.shape[0]}); got {len(self.labels)}."
            )
        if z.shape[0] > MAX_SELECTION:
            raise InputValueError(
                f"a selection holds at most {MAX_SELECTION} points; got {z.shape[0]}."
            )
        object.__setattr__(self, "z", z)
        object.__setattr__(self, "labels", tuple(str(x) for x in self.labels))

    @property
    def size(self) -> int:
        return int(self.z.shape[0])

    def to_state(self) -> dict[str, Any]:
        """Plain lists and strings (for Streamlit's session state)."""
        return {
            "model": self.model,
            "source": self.source,
            "z": self.z.tolist(),
            "labels": list(self.labels),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Selection:
        """The inverse of :meth:`to_state` (validated)."""
        try:
            return cls(
                model=str(state["model"]),
                source=str(state["source"]),
                z=np.asarray(state["z"], dtype=np.float64).reshape(len(state["z"]), -1),
                labels=tuple(state["labels"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InputValueError):
                raise
            raise InputValueError(f"not a selection record: {exc}") from exc


def inspect_table(
    model: LatentModel,
    selection: Selection,
    *,
    device: torch.device | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """One row per selected point: label, decoded text, validity, objectives, ScaLES and the
    baselines (likelihood, prior, distance to data), then the latent ``z_0..``.

    Raises:
        InputValueError: the selection belongs to another model or has the wrong latent size.
    """
    if selection.model != model.name:
        raise InputValueError(
            f"the selection was made on model {selection.model!r}; the current model is "
            f"{model.name!r}."
        )
    if selection.z.shape[1] != model.latent_dim:
        raise InputValueError(
            f"selection latents have d={selection.z.shape[1]}; {model.name} has "
            f"d={model.latent_dim}."
        )
    scores, decoded = all_scores(model, selection.z, device=device, progress=progress)
    z = torch.as_tensor(selection.z, dtype=torch.float64)
    table = pd.DataFrame({"label": list(selection.labels), "decoded": decoded})
    table["valid"] = scores.pop("valid").astype(bool)
    for name in [k for k in scores if k.startswith("objective:")]:
        table[name.split(":", 1)[1]] = scores.pop(name)
    table["scales"] = scores["scales"]
    table["likelihood"] = scores["likelihood"]
    table["prior"] = prior_logpdf(z, model.prior_scale).numpy() if len(z) else []
    data = model.data_latents.to(torch.float64)
    k = min(3, data.shape[0])
    table["distance_to_data"] = distance_to_data(z, data, k=k).numpy() if len(z) else []
    latents = pd.DataFrame(selection.z, columns=latent_columns(selection.z.shape[1]))
    return pd.concat([table, latents], axis=1)


def pick_three(selection: Selection, rows: Sequence[int]) -> list[np.ndarray]:
    """Three selected latents (by row) that define a plane for the Slices view."""
    chosen = list(dict.fromkeys(int(r) for r in rows))
    if len(chosen) != 3 or not all(0 <= r < selection.size for r in chosen):
        raise InputValueError(
            f"choose exactly three different rows of the selection (0..{selection.size - 1}); "
            f"got {list(rows)}."
        )
    return [selection.z[r] for r in chosen]
