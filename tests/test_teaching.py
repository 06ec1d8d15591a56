"""The Learn walk's experiment: a model restricted to a plane, and gp-ascent on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scales_viz.errors import InputValueError
from scales_viz.lso.optimizers import Budget, Settings, run
from scales_viz.lso.teaching import PlaneModel, compare_on_plane, learn_plane, summarise_starts
from scales_viz.models import DecodesLogits, Encodes, LatentModel, load_model
from scales_viz.slices import SliceSpec, axis_plane, compute_slice, random_plane


@pytest.fixture(scope="module")
def plane_model() -> PlaneModel:
    model = load_model("expressions")
    return PlaneModel(model, random_plane(np.full(model.latent_dim, 0.1), seed=3))


def test_plane_points_decode_and_score_as_the_lifted_latents(plane_model: PlaneModel) -> None:
    model, plane = plane_model.model, plane_model.plane
    ab = torch.tensor([[0.3, -0.7], [1.2, 0.4]], dtype=torch.float64)
    z = torch.as_tensor(plane.points(ab[:, 0].numpy(), ab[:, 1].numpy()))
    torch.testing.assert_close(plane_model.lift(ab), z)
    assert plane_model.decode(ab) == model.decode(z.float())
    torch.testing.assert_close(plane_model.scales(ab), model.scales(z))
    with torch.no_grad():
        torch.testing.assert_close(
            plane_model.decoder_for(ab)(ab), model.decoder_for(z)(z), rtol=1e-10, atol=1e-10
        )


def test_a_plane_model_is_a_latent_model_without_the_optional_capabilities(
    plane_model: PlaneModel,
) -> None:
    typed: LatentModel = plane_model  # mypy checks PlaneModel against the protocol here
    assert isinstance(typed, LatentModel)
    assert not isinstance(plane_model, DecodesLogits)
    assert not isinstance(plane_model, Encodes)


def test_a_slice_of_a_plane_model_decodes_each_cell_without_objects_from_logits(
    plane_model: PlaneModel,
) -> None:
    spec = SliceSpec(axis_plane(np.zeros(2), 0, 1), extent=1.0, resolution=3)
    grid = compute_slice(plane_model, spec)
    ab = torch.as_tensor(spec.latents())
    assert grid.decoded == plane_model.decode(ab)
    np.testing.assert_allclose(
        grid.scores["scales"].ravel(), plane_model.scales(ab).numpy(), rtol=1e-10
    )


def test_the_score_gradient_in_the_plane_is_the_projected_full_gradient(
    plane_model: PlaneModel,
) -> None:
    ab = torch.tensor([[0.5, 0.2]], dtype=torch.float64, requires_grad=True)
    (grad_ab,) = torch.autograd.grad(plane_model.scales(ab).sum(), ab)
    z = plane_model.lift(ab.detach()).requires_grad_(True)
    (grad_z,) = torch.autograd.grad(plane_model.model.scales(z).sum(), z)
    basis = torch.as_tensor(np.stack([plane_model.plane.u, plane_model.plane.v]))
    torch.testing.assert_close(grad_ab, grad_z @ basis.T, rtol=1e-8, atol=1e-10)


def test_data_latents_are_their_plane_coordinates(plane_model: PlaneModel) -> None:
    coords = plane_model.data_latents
    want, _ = plane_model.plane.project(plane_model.model.data_latents)
    assert coords.shape == (plane_model.model.data_latents.shape[0], 2)
    np.testing.assert_allclose(coords.numpy(), want, rtol=1e-5, atol=1e-5)


def test_learn_plane_runs_through_the_prior_centre_along_the_data() -> None:
    model = load_model("expressions")
    plane = learn_plane(model)
    assert np.allclose(plane.origin, 0.0)
    data = model.data_latents.double().numpy()
    spread = np.var(data @ plane.u)
    random = random_plane(np.zeros(model.latent_dim), seed=0)
    assert spread > np.var(data @ random.u)  # the top principal direction beats a random one


def test_gp_ascent_starts_from_the_given_points(plane_model: PlaneModel) -> None:
    start = ((0.25, -0.5), (0.0, 1.0))
    settings = Settings(batch_size=2, n_initial=4, start=start, with_scales=False)
    result = run(
        plane_model,
        "fit_target",
        optimizer="gp-ascent",
        budget=Budget(evaluations=6),
        seed=0,
        settings=settings,
    )
    assert result.status.value == "completed", result.reason
    np.testing.assert_allclose(result.steps[0].z[:2], np.array(start))
    assert result.steps[0].size == 4
    assert settings.record("gp-ascent")["start"] == [[0.25, -0.5], [0.0, 1.0]]
    for bad in (((0.0, 1.0, 2.0),), ((0.0, float("nan")),), ((0.0, 0.0),) * 5):
        with pytest.raises(InputValueError, match=r"settings\.start"):
            run(
                plane_model,
                "fit_target",
                optimizer="gp-ascent",
                budget=Budget(evaluations=6),
                seed=0,
                settings=Settings(batch_size=2, n_initial=4, start=bad),
            )


def test_both_runs_share_the_initial_design_and_differ_by_the_penalty(
    plane_model: PlaneModel,
) -> None:
    seen: list[int] = []
    found = compare_on_plane(
        plane_model, "fit_target", (0.4, -0.3), evaluations=15, callback=seen.append
    )
    first_plain, first_penalised = found.plain.steps[0], found.penalised.steps[0]
    np.testing.assert_array_equal(first_plain.z, first_penalised.z)
    assert tuple(first_plain.z[0]) == (0.4, -0.3)
    # After the shared design, the penalty gradient moves the ascent elsewhere.
    assert not np.array_equal(found.plain.steps[1].z, found.penalised.steps[1].z)
    assert found.summaries[1].label == "scales penalty (alpha 0.5)"
    assert seen[-1] == 30 and seen == sorted(seen)
    for summary in found.summaries:
        assert 0.0 <= summary.valid_share <= 1.0 and summary.evaluations == 15
    with pytest.raises(InputValueError, match="choose a penalty"):
        compare_on_plane(plane_model, "fit_target", (0.0, 0.0), penalty="none")
    with pytest.raises(InputValueError, match="no objective"):
        compare_on_plane(plane_model, "qed", (0.0, 0.0))
    with pytest.raises(InputValueError, match="two finite"):
        compare_on_plane(plane_model, "fit_target", (0.0, float("inf")))


def test_summary_over_starts_aggregates_every_run(plane_model: PlaneModel) -> None:
    record = summarise_starts(
        plane_model, "fit_target", np.array([[0.0, 0.0], [0.5, 0.5]]), evaluations=10
    )
    assert len(record["rows"]) == 4 and record["starts"] == 2
    for kind in ("plain", "penalised"):
        shares = [r["valid_share"] for r in record["rows"] if r["run"] == kind]
        assert record["aggregate"][kind]["valid_share_mean"] == pytest.approx(np.mean(shares))
    with pytest.raises(InputValueError, match="k x 2"):
        summarise_starts(plane_model, "fit_target", np.zeros((2, 3)))


def test_paired_verdict_compares_each_start_with_itself() -> None:
    from scales_viz.lso.teaching import paired_verdict

    rows = []
    for start, (plain, penalised) in enumerate([(0.2, 0.6), (0.4, 0.8), (0.5, 0.9)]):
        rows.append({"start": start, "run": "plain", "valid_share": plain, "best_objective": -1.0})
        rows.append(
            {"start": start, "run": "penalised", "valid_share": penalised, "best_objective": -1.0}
        )
    found = paired_verdict({"rows": rows, "penalty": "scales"})
    assert found["valid_share"]["mean_difference"] == pytest.approx(0.4)
    assert found["valid_share"]["sem"] == pytest.approx(0.0, abs=1e-12)
    assert found["valid_share"]["better"] == 3 and found["best_objective"]["tied"] == 3
    assert "+40.0 points" in found["verdict"] and "more than twice" in found["verdict"]
    assert "within twice" in found["verdict"]  # the objective did not move
