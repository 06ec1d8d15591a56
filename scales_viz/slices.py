"""Planes through latent space, grids of latent points on them, and scores over those grids.

A :class:`Plane` is an origin and two orthonormal directions in R^d. A :class:`SliceSpec` puts
a square grid on a plane (extent in units of the model's prior scale, so the same settings mean
the same thing on every model). :func:`compute_slice` scores every cell with ScaLES and the
baselines and checks the validity of each cell's decoding, in chunks with progress.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from scales_viz.errors import InputValueError
from scales_viz.score import argmax_log_prob, scales_and_logits
from scales_viz.scoring import SCORE_NAMES, score_latents

if TYPE_CHECKING:
    from scales_viz.cluster import Cluster
    from scales_viz.models.base import LatentModel

__all__ = [
    "MAX_RESOLUTION",
    "Plane",
    "SliceGrid",
    "SliceSpec",
    "axis_plane",
    "compute_slice",
    "parse_point",
    "pca_plane",
    "plane_through",
    "random_plane",
]

MAX_RESOLUTION = 256
#: Two directions closer to parallel than this (|sin| of the angle) cannot span a plane.
COLLINEAR_TOLERANCE = 1e-8
#: Latent points scored per chunk (each chunk reports progress).
SLICE_CHUNK = 256
#: Prior samples addressable as "prior N".
MAX_PRIOR_INDEX = 100_000

Progress = Callable[[int, int], None]


def _vector(value: object, name: str, d: int | None = None) -> np.ndarray:
    array = np.asarray(
        value.detach().cpu().numpy() if isinstance(value, Tensor) else value, dtype=np.float64
    )
    if array.ndim != 1 or (d is not None and array.shape[0] != d):
        want = f"a vector of length {d}" if d is not None else "a 1-D vector"
        raise InputValueError(f"`{name}` must be {want}; got shape {array.shape}.")
    if not np.isfinite(array).all():
        raise InputValueError(f"`{name}` holds NaN or infinite values.")
    return array


@dataclass(frozen=True)
class Plane:
    """The affine plane `origin + a u + b v` in R^d, with `u`, `v` orthonormal.

    Attributes:
        origin: `d` float64 array.
        u: `d` unit vector (the grid's x axis).
        v: `d` unit vector orthogonal to `u` (the y axis).
        label: how the plane was chosen, for titles.
    """

    origin: np.ndarray
    u: np.ndarray
    v: np.ndarray
    label: str = ""

    def __post_init__(self) -> None:
        d = _vector(self.origin, "origin").shape[0]
        u, v = _vector(self.u, "u", d), _vector(self.v, "v", d)
        if abs(np.linalg.norm(u) - 1) > 1e-6 or abs(np.linalg.norm(v) - 1) > 1e-6:
            raise InputValueError("plane directions `u` and `v` must have unit length.")
        if abs(float(u @ v)) > 1e-6:
            raise InputValueError(f"plane directions must be orthogonal; u.v = {float(u @ v):g}.")

    @property
    def dim(self) -> int:
        """`d`."""
        return int(np.asarray(self.origin).shape[0])

    def points(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Latents `n x d` at plane coordinates `(a, b)` (each `n`)."""
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        return self.origin + a[:, None] * self.u + b[:, None] * self.v

    def project(self, z: np.ndarray | Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Plane coordinates `n x 2` of points `z` (`n x d`) and their distance off the plane."""
        array = np.asarray(
            z.detach().cpu().numpy() if isinstance(z, Tensor) else z, dtype=np.float64
        )
        if array.ndim != 2 or array.shape[1] != self.dim:
            raise InputValueError(
                f"points to project must be n x {self.dim}; got shape {array.shape}."
            )
        offset = array - self.origin
        coords = np.stack([offset @ self.u, offset @ self.v], axis=1)
        residual = offset - coords[:, :1] * self.u - coords[:, 1:] * self.v
        return coords, np.linalg.norm(residual, axis=1)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists (JSON-ready)."""
        return {
            "origin": np.asarray(self.origin).tolist(),
            "u": np.asarray(self.u).tolist(),
            "v": np.asarray(self.v).tolist(),
            "label": self.label,
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Plane:
        """Inverse of :meth:`to_dict`."""
        return cls(
            np.asarray(record["origin"], dtype=np.float64),
            np.asarray(record["u"], dtype=np.float64),
            np.asarray(record["v"], dtype=np.float64),
            str(record.get("label", "")),
        )

    def key(self) -> tuple[float, ...]:
        """A hashable summary (rounded coordinates) for caching."""
        stacked = np.concatenate([self.origin, self.u, self.v])
        return tuple(np.round(stacked, 12).tolist())


def _orthonormal_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gram-Schmidt on two directions; raises if they are (nearly) parallel or zero."""
    norm_a = float(np.linalg.norm(a))
    if norm_a == 0:
        raise InputValueError("the first direction of the plane is zero.")
    u = a / norm_a
    w = b - (b @ u) * u
    norm_w = float(np.linalg.norm(w))
    if norm_w <= COLLINEAR_TOLERANCE * max(float(np.linalg.norm(b)), 1.0):
        raise InputValueError(
            "the directions (or the three points) are collinear: they do not span a plane."
        )
    return u, w / norm_w


def axis_plane(origin: np.ndarray | Tensor, i: int, j: int) -> Plane:
    """The plane through `origin` along latent axes `i` and `j`."""
    o = _vector(origin, "origin")
    d = o.shape[0]
    if not (0 <= i < d and 0 <= j < d) or i == j:
        raise InputValueError(f"axes must be two different integers in [0, {d}); got {i}, {j}.")
    u, v = np.zeros(d), np.zeros(d)
    u[i], v[j] = 1.0, 1.0
    return Plane(o, u, v, f"axes z{i}, z{j}")


def random_plane(origin: np.ndarray | Tensor, *, seed: int) -> Plane:
    """A uniformly random orthonormal pair of directions through `origin` (seeded)."""
    o = _vector(origin, "origin")
    if o.shape[0] < 2:
        raise InputValueError("a plane needs a latent space of at least 2 dimensions.")
    rng = np.random.default_rng(seed)
    first, second = rng.normal(size=(2, o.shape[0]))
    u, v = _orthonormal_pair(first, second)
    return Plane(o, u, v, f"random (seed {seed})")


def pca_plane(latents: np.ndarray | Tensor, origin: np.ndarray | Tensor | None = None) -> Plane:
    """The top two principal directions of `latents` (`m x d`), through their mean by default."""
    array = np.asarray(
        latents.detach().cpu().numpy() if isinstance(latents, Tensor) else latents,
        dtype=np.float64,
    )
    if array.ndim != 2 or array.shape[0] < 3 or array.shape[1] < 2:
        raise InputValueError(
            f"PCA needs an m x d array with m >= 3 and d >= 2; got shape {array.shape}."
        )
    mean = array.mean(axis=0)
    _, _, vt = np.linalg.svd(array - mean, full_matrices=False)
    o = mean if origin is None else _vector(origin, "origin", array.shape[1])
    u, v = _orthonormal_pair(vt[0], vt[1])
    return Plane(o, u, v, "PCA of data latents")


def plane_through(points: Sequence[np.ndarray | Tensor] | np.ndarray) -> Plane:
    """The plane through three points; origin at the first, `u` towards the second."""
    if len(points) != 3:
        raise InputValueError(f"a plane through points needs exactly 3; got {len(points)}.")
    p0 = _vector(points[0], "points[0]")
    p1 = _vector(points[1], "points[1]", p0.shape[0])
    p2 = _vector(points[2], "points[2]", p0.shape[0])
    u, v = _orthonormal_pair(p1 - p0, p2 - p0)
    return Plane(p0, u, v, "through three points")


@dataclass(frozen=True)
class SliceSpec:
    """A square grid on a plane.

    Attributes:
        plane: where the grid lies.
        extent: half-width of the grid, in plane units (the page sets it as a multiple of the
            prior scale).
        resolution: cells per side (odd resolutions put a cell exactly on the origin).
    """

    plane: Plane
    extent: float
    resolution: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.extent) and self.extent > 0):
            raise InputValueError(f"`extent` must be a positive number; got {self.extent!r}.")
        if isinstance(self.resolution, bool) or not 2 <= int(self.resolution) <= MAX_RESOLUTION:
            raise InputValueError(
                f"`resolution` must be an integer from 2 to {MAX_RESOLUTION}; "
                f"got {self.resolution!r}."
            )

    def axis(self) -> np.ndarray:
        """The `resolution` cell centres along each side, from -extent to +extent."""
        return np.linspace(-self.extent, self.extent, self.resolution)

    def latents(self) -> np.ndarray:
        """Cell latents `(resolution^2) x d`, row-major: row = y index, column = x index."""
        axis = self.axis()
        b, a = np.meshgrid(axis, axis, indexing="ij")
        return self.plane.points(a.ravel(), b.ravel())

    def key(self) -> tuple[Any, ...]:
        """Hashable cache key."""
        return (self.plane.key(), float(self.extent), int(self.resolution))


@dataclass(frozen=True)
class SliceGrid:
    """Scores and decodings over a slice.

    Attributes:
        spec: the grid.
        scores: name -> `resolution x resolution` float64 array (row = y, column = x).
        valid: `resolution x resolution` bool array (validity of each cell's decoding).
        decoded: the `resolution^2` decoded objects as text (row-major), for hover and tables.
        objectives: name -> `resolution x resolution` array (NaN where invalid).
    """

    spec: SliceSpec
    scores: dict[str, np.ndarray]
    valid: np.ndarray
    decoded: list[str] = field(default_factory=list)
    objectives: dict[str, np.ndarray] = field(default_factory=dict)

    def cell_latent(self, row: int, col: int) -> np.ndarray:
        """The latent of cell `(row, col)`."""
        axis = self.spec.axis()
        return self.spec.plane.points(np.array([axis[col]]), np.array([axis[row]]))[0]


def _describe(obj: object) -> str:
    if isinstance(obj, str):
        return obj
    return ""


def slice_chunk(
    model: LatentModel,
    latents: np.ndarray,
    *,
    scores: Sequence[str] = SCORE_NAMES,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> tuple[dict[str, np.ndarray], list[Any], np.ndarray]:
    """The scores, decoded objects and validity of one chunk of latents (one row each)."""
    z = torch.as_tensor(latents, dtype=dtype, device=torch.device(device))
    data = model.data_latents.to(device=z.device, dtype=dtype)
    from scales_viz.models.base import DecodesLogits  # the model's own package is loaded

    if "scales" in scores and isinstance(model, DecodesLogits):
        # One decoder pass: ScaLES, the likelihood and the decodings all come from the logits
        # of the Jacobian computation.
        score, logits = scales_and_logits(model.decoder_for(z), z, likelihood=model.likelihood)
        found = {"scales": score, "likelihood": argmax_log_prob(logits, model.likelihood)}
        values = {
            name: (found[name] if name in found else score_latents(model, name, z, data=data))
            for name in scores
        }
        objects = list(model.objects_from_logits(logits))
    else:
        values = {name: score_latents(model, name, z, data=data) for name in scores}
        objects = list(model.decode(z.to(torch.float32)))
    numbers = {name: value.detach().cpu().numpy() for name, value in values.items()}
    return numbers, objects, np.asarray(model.validity(objects))


def compute_slice(
    model: LatentModel,
    spec: SliceSpec,
    *,
    scores: Sequence[str] = SCORE_NAMES,
    objectives: Sequence[str] = (),
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    cluster: Cluster | None = None,
    chunk: int = SLICE_CHUNK,
) -> SliceGrid:
    """Score every cell of `spec` under `model` and check each cell's decoding.

    Args:
        model: a :class:`~scales_viz.models.LatentModel`.
        spec: the grid.
        scores: which of "scales", "likelihood", "prior", "distance_to_data".
        objectives: objective names to evaluate on each cell's decoding.
        dtype: the dtype of the scoring (float64 keeps ScaLES exact).
        device: where to score.
        progress: called with (cells done, cells total) after each chunk.
        cluster: a :class:`~scales_viz.cluster.Cluster` holding the same model: the chunks
            are scored there (on its devices) instead of here; the same grid comes back.
        chunk: latents per chunk (progress is reported, and a stop can happen, between
            chunks: smaller chunks on a slow decoder keep a page's Cancel prompt).

    Returns:
        The :class:`SliceGrid`.
    """
    unknown = sorted(set(scores) - set(SCORE_NAMES))
    if unknown:
        raise InputValueError(f"unknown scores {unknown}; choose from {list(SCORE_NAMES)}.")
    if spec.plane.dim != model.latent_dim:
        raise InputValueError(
            f"the plane lives in d={spec.plane.dim}; model {model.name!r} has d={model.latent_dim}."
        )
    if chunk < 1:
        raise InputValueError(f"chunk must be at least 1; got {chunk}.")
    latents = spec.latents()
    total = latents.shape[0]
    chunks = [latents[start : start + chunk] for start in range(0, total, chunk)]

    def chunk_progress(done: int, _: int) -> None:
        if progress is not None:
            progress(min(done * chunk, total), total)

    if cluster is not None:
        results = cluster.map(
            slice_chunk, chunks, progress=chunk_progress, scores=tuple(scores), dtype=dtype
        )
    else:
        results = []
        for part in chunks:
            results.append(slice_chunk(model, part, scores=scores, dtype=dtype, device=device))
            chunk_progress(len(results), len(chunks))
    parts = {name: [r[0][name] for r in results] for name in scores}
    objects = [obj for r in results for obj in r[1]]
    valid_parts = [r[2] for r in results]
    shape = (spec.resolution, spec.resolution)
    return SliceGrid(
        spec=spec,
        scores={name: np.concatenate(values).reshape(shape) for name, values in parts.items()},
        valid=np.concatenate(valid_parts).reshape(shape),
        decoded=[_describe(obj) for obj in objects],
        objectives={
            name: model.objective_values(objects, name).reshape(shape) for name in objectives
        },
    )


def parse_point(
    text: str, *, data_latents: Tensor, prior_scale: float, seed: int = 0
) -> np.ndarray:
    """A latent point from a short description.

    Forms: ``zero``; ``data N`` (the N-th reference data latent); ``prior N`` (the N-th of
    the prior samples drawn with `seed`); or `d` comma-separated numbers.

    Raises:
        InputValueError: the text matches no form, the index is out of range, or a typed
            vector has the wrong length or a non-finite entry.
    """
    d = int(data_latents.shape[1])
    words = text.strip().lower().split()
    if words == ["zero"]:
        return np.zeros(d)
    if len(words) == 2 and words[0] in ("data", "prior") and words[1].isdigit():
        index = int(words[1])
        if words[0] == "data":
            if index >= data_latents.shape[0]:
                raise InputValueError(
                    f"'{text}': there are {data_latents.shape[0]} data latents (0 to "
                    f"{data_latents.shape[0] - 1})."
                )
            return data_latents[index].double().numpy()
        if index >= MAX_PRIOR_INDEX:
            raise InputValueError(f"'{text}': prior sample index must be below {MAX_PRIOR_INDEX}.")
        gen = torch.Generator().manual_seed(seed)
        draws = torch.randn(index + 1, d, generator=gen, dtype=torch.float64)
        return (draws[index] * prior_scale).numpy()
    try:
        values = np.array([float(part) for part in text.replace(";", ",").split(",")])
    except ValueError:
        raise InputValueError(
            f"'{text}' is not a point: write 'zero', 'data N', 'prior N' or {d} "
            "comma-separated numbers."
        ) from None
    if values.shape[0] != d or not np.isfinite(values).all():
        raise InputValueError(
            f"'{text}': a typed point needs {d} finite numbers; got {values.shape[0]}."
        )
    return values
