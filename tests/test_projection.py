"""The UMAP estimator and model maps: contract, determinism, caching and its invalidation."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from scales_viz.errors import InputValueError
from scales_viz.models import load_model
from scales_viz.projection import (
    CACHE_ENV,
    LatentProjection,
    MapSettings,
    NotFittedError,
    cached_map_path,
    get_map,
    load_map,
    model_fingerprint,
    warm_reducer,
)

SMALL = MapSettings(n_data=60, n_prior=30, n_far=30, seed=1, n_neighbors=10)


@pytest.fixture(scope="module")
def latents() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(0, 1, (80, 5)), rng.normal(6, 1, (80, 5))])


@pytest.fixture(scope="module")
def fitted(latents: np.ndarray) -> LatentProjection:
    return LatentProjection(n_neighbors=10, random_state=0).fit(latents)


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return load_model("digits-2d")


def test_not_fitted_is_a_clear_error() -> None:
    with pytest.raises(NotFittedError, match="not fitted yet"):
        LatentProjection().transform(np.zeros((2, 3)))
    from sklearn.exceptions import NotFittedError as SklearnError

    with pytest.raises(SklearnError):  # also the scikit-learn exception
        LatentProjection().transform(np.zeros((2, 3)))


def test_fit_transform_shapes_and_clusters(fitted: LatentProjection, latents: np.ndarray) -> None:
    assert fitted.embedding_.shape == (160, 2) and fitted.embedding_.dtype == np.float32
    assert fitted.n_features_in_ == 5
    new = fitted.transform(latents[:7] + 0.01)
    assert new.shape == (7, 2)
    assert fitted.transform(np.zeros((0, 5))).shape == (0, 2)
    # the two well-separated clusters stay apart in the map
    a, b = fitted.embedding_[:80].mean(0), fitted.embedding_[80:].mean(0)
    spread = fitted.embedding_[:80].std(0).max()
    assert np.linalg.norm(a - b) > 3 * spread
    # new points from the first cluster land nearer its centre
    assert np.linalg.norm(new.mean(0) - a) < np.linalg.norm(new.mean(0) - b)


def test_deterministic_for_a_seed(fitted: LatentProjection, latents: np.ndarray) -> None:
    again = LatentProjection(n_neighbors=10, random_state=0).fit(latents)
    np.testing.assert_array_equal(again.embedding_, fitted.embedding_)
    np.testing.assert_array_equal(again.transform(latents[:5]), fitted.transform(latents[:5]))
    other = LatentProjection(n_neighbors=10, random_state=1).fit(latents)
    assert not np.array_equal(other.embedding_, fitted.embedding_)


def test_bad_input(fitted: LatentProjection) -> None:
    with pytest.raises(InputValueError, match="5 columns"):
        fitted.transform(np.zeros((3, 4)))
    with pytest.raises(InputValueError, match="NaN or inf"):
        fitted.transform(np.array([[np.nan] * 5]))
    with pytest.raises(InputValueError, match="more points than n_neighbors"):
        LatentProjection(n_neighbors=15).fit(np.zeros((10, 3)))
    with pytest.raises(InputValueError, match="n x d"):
        LatentProjection().fit(np.zeros(10))


def test_model_map_is_cached_and_rebuilt_when_model_or_settings_change(
    digits, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    built = get_map(digits, SMALL)
    assert built.size == 120 and built.is_warm
    assert set(built.source) == {"data", "prior", "far"}
    assert {"scales", "likelihood", "valid", "objective:looks_like_7"} <= set(built.scores)
    path = cached_map_path(digits, SMALL)
    assert path.exists()
    # a second call reads the cache (same coordinates, no reducer yet)
    again = get_map(digits, SMALL)
    assert not again.is_warm
    np.testing.assert_array_equal(again.coords, built.coords)
    np.testing.assert_array_equal(again.scores["scales"], built.scores["scales"])
    # the refitted reducer reproduces the cached map and places new points
    np.testing.assert_allclose(again.reducer().embedding_, built.coords, atol=1e-3)
    assert again.transform(built.latents[:3]).shape == (3, 2)
    # other settings -> another file
    other = MapSettings(n_data=60, n_prior=30, n_far=30, seed=2, n_neighbors=10)
    assert cached_map_path(digits, other) != path
    # another version of the model (changed decoder) -> another fingerprint, refused cache
    changed = copy.copy(digits)
    changed.manifest = dict(digits.manifest)
    changed.manifest["decoder"] = dataclasses.replace(digits.manifest["decoder"], sha256="0" * 64)
    assert model_fingerprint(changed) != model_fingerprint(digits)
    assert cached_map_path(changed, SMALL) != path
    with pytest.raises(InputValueError, match="another version"):
        load_map(path, model=changed)


def test_warm_reducer_starts_one_refit_per_map(digits, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    get_map(digits, SMALL)
    cold = get_map(digits, SMALL)  # read from the cache: no reducer yet
    assert not cold.is_warm
    with cold._lock:  # the refit waits on this lock, so the first thread stays alive
        first = warm_reducer(cold)
        again = [warm_reducer(cold) for _ in range(5)]  # reruns while it refits
        assert first is not None and first.is_alive()
        assert all(t is first for t in again)
    first.join(timeout=120)
    assert cold.is_warm and warm_reducer(cold) is None
    np.testing.assert_allclose(cold.reducer().embedding_, cold.coords, atol=1e-3)


def test_map_files_are_plain_arrays(digits, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    path = cached_map_path(digits, SMALL)
    if not path.exists():
        get_map(digits, SMALL)
    with np.load(path, allow_pickle=False) as archive:  # would raise on object arrays
        assert {"latents", "coords", "source", "meta"} <= set(archive.files)
    path.write_bytes(b"not a map")
    with pytest.raises(InputValueError, match="not a readable projection map"):
        load_map(path)


def test_builtin_models_ship_maps_that_match_them() -> None:
    from scales_viz.models import list_models

    for info in list_models():
        if not info.available:
            continue
        model = load_model(info.name)
        shipped = load_map(model.directory / "projection.npz", model=model)
        assert shipped.settings == MapSettings()
        assert shipped.coords.shape == (shipped.size, 2)
        assert np.isfinite(shipped.coords).all()
        assert torch.equal(torch.as_tensor(shipped.latents[:10]), model.data_latents[:10].float())
