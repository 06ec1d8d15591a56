"""Planes, grids and slice scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scales_viz.errors import InputValueError
from scales_viz.models import VAEModel, load_model
from scales_viz.slices import (
    MAX_RESOLUTION,
    Plane,
    SliceSpec,
    axis_plane,
    compute_slice,
    parse_point,
    pca_plane,
    plane_through,
    random_plane,
)


@pytest.fixture(scope="module")
def digits() -> VAEModel:
    return load_model("digits")


def _orthonormal(plane: Plane) -> None:
    np.testing.assert_allclose(np.linalg.norm(plane.u), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(plane.v), 1.0, atol=1e-12)
    assert abs(float(plane.u @ plane.v)) < 1e-12


def test_random_plane_is_orthonormal_and_seeded() -> None:
    origin = np.arange(6.0)
    plane = random_plane(origin, seed=3)
    _orthonormal(plane)
    again = random_plane(origin, seed=3)
    np.testing.assert_array_equal(plane.u, again.u)
    assert not np.allclose(plane.u, random_plane(origin, seed=4).u)


def test_pca_plane_finds_the_spread_directions() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(500, 5)) * np.array([0.01, 5.0, 0.01, 2.0, 0.01])
    plane = pca_plane(data)
    _orthonormal(plane)
    assert abs(plane.u[1]) > 0.99 and abs(plane.v[3]) > 0.99
    np.testing.assert_allclose(plane.origin, data.mean(axis=0))


def test_plane_through_three_points_contains_them() -> None:
    rng = np.random.default_rng(1)
    points = rng.normal(size=(3, 7))
    plane = plane_through(list(points))
    _orthonormal(plane)
    coords, distance = plane.project(points)
    np.testing.assert_allclose(distance, 0.0, atol=1e-12)
    np.testing.assert_allclose(plane.points(coords[:, 0], coords[:, 1]), points, atol=1e-12)


def test_projected_points_lie_on_the_plane_and_distance_is_the_residual() -> None:
    rng = np.random.default_rng(2)
    plane = random_plane(rng.normal(size=4), seed=0)
    z = rng.normal(size=(20, 4))
    coords, distance = plane.project(z)
    on_plane = plane.points(coords[:, 0], coords[:, 1])
    _, again = plane.project(on_plane)
    np.testing.assert_allclose(again, 0.0, atol=1e-12)
    np.testing.assert_allclose(distance, np.linalg.norm(z - on_plane, axis=1), atol=1e-12)
    residual = z - on_plane
    np.testing.assert_allclose(residual @ plane.u, 0.0, atol=1e-12)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: plane_through([np.zeros(3), np.ones(3), 2 * np.ones(3)]), "collinear"),
        (lambda: plane_through([np.zeros(3), np.ones(3)]), "exactly 3"),
        (lambda: axis_plane(np.zeros(3), 1, 1), "two different"),
        (lambda: axis_plane(np.zeros(3), 0, 3), "two different"),
        (lambda: random_plane(np.array([np.nan, 0.0]), seed=0), "NaN"),
        (lambda: pca_plane(np.zeros((2, 3))), "m >= 3"),
        (lambda: Plane(np.zeros(2), np.array([1.0, 0.0]), np.array([1.0, 0.0])), "orthogonal"),
        (lambda: SliceSpec(axis_plane(np.zeros(2), 0, 1), 1.0, MAX_RESOLUTION + 1), "resolution"),
        (lambda: SliceSpec(axis_plane(np.zeros(2), 0, 1), -1.0, 9), "extent"),
    ],
)
def test_bad_planes_and_grids_are_clear_errors(make: object, message: str) -> None:
    with pytest.raises(InputValueError, match=message):
        make()  # type: ignore[operator]


def test_plane_round_trips_through_dict() -> None:
    plane = random_plane(np.arange(3.0), seed=1)
    again = Plane.from_dict(plane.to_dict())
    assert again.key() == plane.key() and again.label == plane.label


def test_grid_is_row_major_with_y_rows() -> None:
    spec = SliceSpec(axis_plane(np.zeros(2), 0, 1), extent=2.0, resolution=5)
    latents = spec.latents().reshape(5, 5, 2)
    np.testing.assert_allclose(latents[0, :, 0], spec.axis())  # x varies along a row
    np.testing.assert_allclose(latents[:, 0, 1], spec.axis())  # y varies down a column


def test_centre_cell_equals_the_score_at_the_origin(digits: VAEModel) -> None:
    origin = digits.data_latents[0].double().numpy()
    spec = SliceSpec(random_plane(origin, seed=0), extent=1.0, resolution=7)
    grid = compute_slice(digits, spec, objectives=["looks_like_3"])
    z0 = torch.as_tensor(origin)[None]
    assert grid.scores["scales"][3, 3] == pytest.approx(float(digits.scales(z0)[0]), rel=1e-10)
    np.testing.assert_allclose(grid.cell_latent(3, 3), origin, atol=1e-12)
    decoded = digits.decode(z0.float())
    assert bool(grid.valid[3, 3]) == digits.is_valid(decoded[0])
    assert grid.objectives["looks_like_3"].shape == (7, 7)


def test_cells_match_scoring_their_latents_directly(digits: VAEModel) -> None:
    spec = SliceSpec(random_plane(np.zeros(8), seed=2), extent=3.0, resolution=6)
    calls: list[tuple[int, int]] = []
    grid = compute_slice(digits, spec, progress=lambda done, total: calls.append((done, total)))
    direct = digits.scales(torch.as_tensor(spec.latents())).numpy().reshape(6, 6)
    np.testing.assert_allclose(grid.scores["scales"], direct, rtol=1e-10)
    assert calls[-1] == (36, 36)
    assert set(grid.scores) == {"scales", "likelihood", "prior", "distance_to_data"}


def test_plane_of_the_wrong_dimension_is_refused(digits: VAEModel) -> None:
    spec = SliceSpec(axis_plane(np.zeros(2), 0, 1), extent=1.0, resolution=3)
    with pytest.raises(InputValueError, match=r"d=2.*d=8"):
        compute_slice(digits, spec)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("zero", [0.0, 0.0]), ("data 1", [3.0, 4.0]), ("1.5, -2", [1.5, -2.0]), (" 1;2 ", [1.0, 2.0])],
)
def test_points_parse_from_text(text: str, expected: list[float]) -> None:
    data = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(parse_point(text, data_latents=data, prior_scale=1.0), expected)


def test_prior_points_are_seeded_and_scaled() -> None:
    data = torch.zeros(2, 3)
    first = parse_point("prior 2", data_latents=data, prior_scale=0.1, seed=4)
    again = parse_point("prior 2", data_latents=data, prior_scale=0.1, seed=4)
    np.testing.assert_array_equal(first, again)
    assert 0 < np.linalg.norm(first) < 1.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data 9", "there are 2 data latents"),
        ("1, 2, 3", "needs 2 finite"),
        ("nan, 1", "finite"),
        ("hello", "not a point"),
        ("prior 999999999", "below"),
    ],
)
def test_bad_point_text_is_explained(text: str, message: str) -> None:
    with pytest.raises(InputValueError, match=message):
        parse_point(text, data_latents=torch.zeros(2, 2), prior_scale=1.0)


def test_one_decoder_pass_gives_the_same_scores_and_decodings_as_separate_calls() -> None:
    import torch

    from scales_viz import likelihood, scales
    from scales_viz.models import load_model
    from scales_viz.slices import SliceSpec, compute_slice, random_plane

    model = load_model("expressions")
    spec = SliceSpec(random_plane(np.zeros(model.latent_dim), seed=1), 2.0, 5)
    grid = compute_slice(model, spec, scores=("scales", "likelihood"), objectives=("fit_target",))
    z = torch.as_tensor(spec.latents(), dtype=torch.float64)
    decoder = model.decoder_for(z)
    np.testing.assert_allclose(
        grid.scores["scales"].ravel(), scales(decoder, z).numpy(), rtol=1e-10
    )
    np.testing.assert_allclose(
        grid.scores["likelihood"].ravel(), likelihood(decoder, z).numpy(), rtol=1e-10
    )
    assert grid.decoded == model.decode(z.float())
    assert (grid.valid.ravel() == model.validity(grid.decoded)).all()
