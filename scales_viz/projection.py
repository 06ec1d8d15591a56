"""UMAP maps of a model's latent space: a scikit-learn-style estimator and cached maps.

:class:`LatentProjection` wraps ``umap.UMAP``: ``fit`` on latents, ``transform`` new ones into
the same 2-D map, deterministic for a ``random_state`` (UMAP then runs single-threaded), and a
clear :class:`NotFittedError` before ``fit``.

:func:`build_map` fits a model's *map*: encoded data latents plus prior samples and "far"
samples (5x the prior scale), with every point's ScaLES, likelihood, validity and objectives
for colouring. A map is cached on disk as a plain ``.npz`` (coordinates, latents, scores; read
with ``allow_pickle=False``) keyed by the model's fingerprint and the settings, and built-in
models ship theirs (``scales_viz/assets/models/NAME/projection.npz``), so a map appears
without paying umap-learn's numba compilation (about 35 CPU-seconds in each new process).

Fitted reducers are never pickled to disk (nothing here is ever unpickled). ``transform``
needs one, so :meth:`ProjectionMap.reducer` refits it from the map's own latents and settings;
with the same ``random_state`` the refit reproduces the cached coordinates exactly (checked:
``refit_matches``), and :func:`warm_reducer` does it off the request path, in one thread per map.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError as SklearnNotFittedError

from scales_viz.errors import InputValueError, ScalesVizError
from scales_viz.npz import npz_headers
from scales_viz.paths import child_path
from scales_viz.scoring import all_scores

if TYPE_CHECKING:
    from scales_viz.cluster import Cluster
    from scales_viz.models.base import LatentModel

__all__ = [
    "CACHE_ENV",
    "LatentProjection",
    "MapSettings",
    "NotFittedError",
    "ProjectionMap",
    "build_map",
    "load_map",
    "model_fingerprint",
]

LOG = logging.getLogger(__name__)

#: Environment variable naming the map cache folder.
CACHE_ENV = "SCALES_VIZ_CACHE"
MAP_FILE = "projection.npz"
#: Most bytes a map file may unpack to (a 20k-point map of a 256-d model is about 50 MB).
MAX_MAP_BYTES = 1 << 30
MAP_FORMAT = 1
SOURCES = ("data", "prior", "far")
FAR_SCALE = 5.0


class NotFittedError(ScalesVizError, SklearnNotFittedError):
    """``transform`` (or ``embedding_``) was used before ``fit``."""


def _latents(x: object, name: str, d: int | None = None) -> np.ndarray:
    """`x` as a finite `n x d` float32 array, or a clear error."""
    if torch.is_tensor(x):
        x = x.detach().cpu().numpy()
    try:
        array = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputValueError(f"{name} must be an n x d array of numbers; got {exc}.") from None
    if array.ndim != 2:
        raise InputValueError(f"{name} must be n x d; got shape {array.shape}.")
    if d is not None and array.shape[1] != d:
        raise InputValueError(
            f"{name} must have {d} columns (the fitted latent size); got {array.shape[1]}."
        )
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise InputValueError(
            f"{name} holds NaN or inf in {int(bad.sum())} row(s), first row {int(np.argmax(bad))}."
        )
    return array.astype(np.float32)


class LatentProjection(TransformerMixin, BaseEstimator):
    """UMAP of latent points into 2-D (scikit-learn estimator API).

    Args:
        n_neighbors: UMAP's neighbourhood size.
        min_dist: UMAP's minimum distance between embedded points.
        metric: distance in latent space.
        random_state: seed; with one set, fits and transforms are deterministic.
        n_epochs: optimisation epochs (None: UMAP's default for the data size).
    """

    def __init__(
        self,
        n_neighbors: int = 15,
        min_dist: float = 0.1,
        metric: str = "euclidean",
        random_state: int | None = 0,
        n_epochs: int | None = None,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.random_state = random_state
        self.n_epochs = n_epochs

    def fit(self, X: object, y: object = None) -> LatentProjection:
        """Fit the map on `X` (`n x d`, finite, n > n_neighbors)."""
        import umap

        array = _latents(X, "X")
        if array.shape[0] <= self.n_neighbors:
            raise InputValueError(
                f"UMAP needs more points than n_neighbors={self.n_neighbors}; got {array.shape[0]}."
            )
        self.umap_ = umap.UMAP(
            n_neighbors=self.n_neighbors,
            min_dist=self.min_dist,
            metric=self.metric,
            random_state=self.random_state,
            n_epochs=self.n_epochs,
            n_components=2,
        )
        self.embedding_ = np.asarray(self.umap_.fit_transform(array), dtype=np.float32)
        self.n_features_in_ = array.shape[1]
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "umap_"):
            raise NotFittedError(
                "This LatentProjection is not fitted yet: call fit(latents) before transform."
            )

    def transform(self, X: object) -> np.ndarray:
        """Place new latents (`m x d`) in the fitted map: `m x 2` float32."""
        self._check_fitted()
        array = _latents(X, "X", self.n_features_in_)
        if array.shape[0] == 0:
            return np.zeros((0, 2), dtype=np.float32)
        return np.asarray(self.umap_.transform(array), dtype=np.float32)

    def fit_transform(self, X: object, y: object = None, **fit_params: Any) -> np.ndarray:
        """Fit on `X` and return its embedding."""
        return self.fit(X).embedding_


# --------------------------------------------------------------------------------------------
# Maps of a model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapSettings:
    """What a map is fitted on and how (part of its cache key).

    Attributes:
        n_data: encoded data latents (the first `n_data` of the model's reference set).
        n_prior: prior samples.
        n_far: samples at 5x the prior scale.
        seed: seed of the samples and of UMAP.
        n_neighbors: UMAP's neighbourhood size.
        min_dist: UMAP's minimum distance.
    """

    n_data: int = 1000
    n_prior: int = 500
    n_far: int = 500
    seed: int = 0
    n_neighbors: int = 15
    min_dist: float = 0.1

    def __post_init__(self) -> None:
        for name in ("n_data", "n_prior", "n_far", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputValueError(f"MapSettings.{name} must be an int >= 0; got {value!r}.")
        if self.n_data + self.n_prior + self.n_far <= self.n_neighbors:
            raise InputValueError("a map needs more points than n_neighbors.")

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def model_fingerprint(model: LatentModel) -> str:
    """A short hash that changes when the model's decoder or reference data change."""
    manifest = getattr(model, "manifest", {}) or {}
    parts = [str(model.name), str(model.latent_dim)]
    for section in ("decoder", "encoder", "reference"):
        record = manifest.get(section)
        checksum = record.get("sha256") if isinstance(record, Mapping) else None
        checksum = checksum or getattr(record, "sha256", None)  # a manifest ModuleSpec
        if checksum:
            parts.append(str(checksum))
    if len(parts) < 5:  # decoder, encoder or reference not checksummed: hash the weights
        # The decoder for CPU float32 latents (a VAEModel's own decoder as loaded; a
        # PlaneModel's carries its plane too).
        decoder = model.decoder_for(torch.zeros(1, model.latent_dim))
        digest = hashlib.sha256()
        for tensor in decoder.state_dict().values():
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        parts.append(digest.hexdigest())
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


@dataclass
class ProjectionMap:
    """A fitted map: latents, where they came from, their 2-D coordinates and scores.

    Attributes:
        model: model name.
        fingerprint: :func:`model_fingerprint` of the model it was fitted for.
        settings: how it was fitted.
        latents: `n x d` float32.
        source: `n` labels (``data``, ``prior``, ``far``).
        coords: `n x 2` float32.
        scores: per-point float64 arrays: ``scales``, ``likelihood``, ``valid`` (0/1) and one
            ``objective:NAME`` per objective.
        decoded: `n` decoded texts ("" for images).
    """

    model: str
    fingerprint: str
    settings: MapSettings
    latents: np.ndarray
    source: np.ndarray
    coords: np.ndarray
    scores: dict[str, np.ndarray]
    decoded: list[str] = field(default_factory=list)
    _reducer: LatentProjection | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _warming: threading.Thread | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        return int(self.latents.shape[0])

    def save(self, path: Path) -> Path:
        """Write the map as a plain ``.npz`` (no pickled objects)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": MAP_FORMAT,
            "model": self.model,
            "fingerprint": self.fingerprint,
            "settings": self.settings.to_dict(),
            "scores": sorted(self.scores),
        }
        tmp = path.with_suffix(".tmp.npz")
        arrays: dict[str, Any] = {
            "meta": np.array(json.dumps(meta)),
            "latents": self.latents.astype(np.float32),
            "source": np.array(self.source, dtype="U8"),
            "coords": self.coords.astype(np.float32),
            "decoded": np.array(self.decoded, dtype=str),
        }
        for k, v in self.scores.items():
            arrays[f"score__{k}"] = np.asarray(v, dtype=np.float64)
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
        return path

    @property
    def is_warm(self) -> bool:
        """Whether a fitted reducer is ready (``transform`` returns at once)."""
        return self._reducer is not None

    def reducer(self) -> LatentProjection:
        """The fitted reducer, refitted from the map's latents the first time (slow: UMAP)."""
        with self._lock:
            if self._reducer is None:
                reducer = LatentProjection(
                    n_neighbors=self.settings.n_neighbors,
                    min_dist=self.settings.min_dist,
                    random_state=self.settings.seed,
                )
                reducer.fit(self.latents)
                if not np.allclose(reducer.embedding_, self.coords, atol=1e-3):
                    LOG.warning(
                        "the refitted UMAP of %s differs from its cached coordinates "
                        "(another umap-learn/numba version?); using the refit's coordinates",
                        self.model,
                    )
                    self.coords = reducer.embedding_
                self._reducer = reducer
            return self._reducer

    def transform(self, z: object) -> np.ndarray:
        """Place latents in the map (`m x 2`); refits the reducer first if needed."""
        return self.reducer().transform(z)


def load_map(path: Path, *, model: LatentModel | None = None) -> ProjectionMap:
    """Read a map written by :meth:`ProjectionMap.save`.

    Raises:
        InputValueError: not a map file, another format, or (with `model`) made for another
            model or another version of it.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            npz_headers(archive, str(path), MAX_MAP_BYTES)
            meta = json.loads(str(archive["meta"]))
            if meta.get("format") != MAP_FORMAT:
                raise InputValueError(f"{path}: map format {meta.get('format')!r} is unknown.")
            scores = {k: archive[f"score__{k}"] for k in meta["scores"]}
            loaded = ProjectionMap(
                model=str(meta["model"]),
                fingerprint=str(meta["fingerprint"]),
                settings=MapSettings(**meta["settings"]),
                latents=archive["latents"],
                source=archive["source"],
                coords=archive["coords"],
                scores=scores,
                decoded=[str(s) for s in archive["decoded"]],
            )
    except Exception as exc:  # numpy, zipfile and json raise many types on damaged files
        if isinstance(exc, InputValueError):
            raise
        raise InputValueError(f"{path} is not a readable projection map: {exc}") from exc
    if model is not None and loaded.fingerprint != model_fingerprint(model):
        raise InputValueError(
            f"{path} was made for another version of model {loaded.model!r} "
            f"(fingerprint {loaded.fingerprint}, the model's is {model_fingerprint(model)})."
        )
    return loaded


def map_latents(model: LatentModel, settings: MapSettings) -> tuple[np.ndarray, np.ndarray]:
    """The latents a map is fitted on and their sources (deterministic for the settings)."""
    data = model.data_latents[: settings.n_data].numpy().astype(np.float32)
    gen = torch.Generator().manual_seed(settings.seed)
    prior = torch.randn(settings.n_prior, model.latent_dim, generator=gen) * model.prior_scale
    far = torch.randn(settings.n_far, model.latent_dim, generator=gen) * (
        FAR_SCALE * model.prior_scale
    )
    latents = np.concatenate([data, prior.numpy(), far.numpy()]).astype(np.float32)
    source = np.array(
        ["data"] * len(data) + ["prior"] * settings.n_prior + ["far"] * settings.n_far, dtype="U8"
    )
    return latents, source


def build_map(
    model: LatentModel,
    settings: MapSettings | None = None,
    *,
    progress: Callable[[str, int, int], None] | None = None,
    cluster: Cluster | None = None,
) -> ProjectionMap:
    """Fit a model's map (UMAP) and score its points (on `cluster`, a
    :class:`~scales_viz.cluster.Cluster`, when given); the reducer stays warm in the result."""
    settings = settings or MapSettings()
    latents, source = map_latents(model, settings)

    def scored(done: int, total: int) -> None:
        if progress is not None:
            progress("scoring", done, total)

    scores, decoded = all_scores(model, latents, progress=scored, cluster=cluster)
    if progress is not None:
        progress("fitting UMAP", 0, 1)
    reducer = LatentProjection(
        n_neighbors=settings.n_neighbors, min_dist=settings.min_dist, random_state=settings.seed
    ).fit(latents)
    if progress is not None:
        progress("fitting UMAP", 1, 1)
    return ProjectionMap(
        model=str(model.name),
        fingerprint=model_fingerprint(model),
        settings=settings,
        latents=latents,
        source=source,
        coords=reducer.embedding_,
        scores=scores,
        decoded=decoded,
        _reducer=reducer,
    )


def cache_dir() -> Path:
    """Where maps are cached: ``$SCALES_VIZ_CACHE`` or ``~/.cache/scales-viz/maps``."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "scales-viz" / "maps"


def cached_map_path(model: LatentModel, settings: MapSettings) -> Path:
    """The cache file of `model`'s map with `settings`."""
    return child_path(cache_dir(), f"{model.name}-{model_fingerprint(model)}-{settings.key()}.npz")


def shipped_map_path(model: LatentModel) -> Path | None:
    """The map a built-in model ships with (``projection.npz`` in its directory), if any."""
    directory = getattr(model, "directory", None)
    if directory is None:
        return None
    path = Path(directory) / MAP_FILE
    return path if path.exists() else None


def get_map(
    model: LatentModel,
    settings: MapSettings | None = None,
    *,
    progress: Callable[[str, int, int], None] | None = None,
    cluster: Cluster | None = None,
) -> ProjectionMap:
    """The model's map: shipped (default settings), cached on disk, or built (its points
    scored on `cluster` when given) and cached."""
    settings = settings or MapSettings()
    shipped = shipped_map_path(model)
    if shipped is not None:
        try:
            found = load_map(shipped, model=model)
            if found.settings == settings:
                return found
        except InputValueError as exc:
            LOG.warning("ignoring the shipped map: %s", exc)
    path = cached_map_path(model, settings)
    if path.exists():
        try:
            return load_map(path, model=model)
        except InputValueError as exc:
            LOG.warning("rebuilding the cached map: %s", exc)
    built = build_map(model, settings, progress=progress, cluster=cluster)
    try:
        built.save(path)
    except OSError as exc:
        LOG.warning("could not cache the map at %s: %s", path, exc)
    return built


_WARMING = threading.Lock()


def warm_reducer(projection: ProjectionMap) -> threading.Thread | None:
    """Refit the map's reducer in a daemon thread (so ``transform`` is ready later).

    One thread per map: while a refit is running, later calls (each rerun of a page that
    wants the reducer) return that thread instead of starting another. None once warm.
    """
    with _WARMING:
        if projection.is_warm:
            return None
        if projection._warming is not None and projection._warming.is_alive():
            return projection._warming
        thread = threading.Thread(
            target=projection.reducer, name=f"umap-warm-{projection.model}", daemon=True
        )
        projection._warming = thread
        thread.start()
        return thread
