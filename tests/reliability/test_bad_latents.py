"""NaN, inf, huge and wrongly shaped latents through the score, slices, optimisers and pages.

Non-finite or misshapen latents are refused with an error naming what was expected and what
came. Huge but finite latents (1e30, which a run file may legally hold) are scored without a
crash: the score is NaN or -inf where the decoder's output stops being finite, as
``scales_viz.score`` documents, and every page still draws.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from scales_viz.errors import InputTypeError, InputValueError, ScalesVizError
from scales_viz.lso.optimizers import Budget, Settings, run
from scales_viz.models import VAEModel, load_model
from scales_viz.score import scales
from scales_viz.scoring import evaluate_points
from scales_viz.selection import Selection
from scales_viz.slices import SliceSpec, axis_plane, compute_slice, parse_point, plane_through

HUGE = 1e30
MODELS = ["digits-2d", "expressions"]


@pytest.fixture(scope="module", params=MODELS)
def model(request: pytest.FixtureRequest) -> VAEModel:
    return load_model(request.param)


def _z(model: VAEModel, n: int = 3) -> torch.Tensor:
    return torch.zeros(n, model.latent_dim, dtype=torch.float64)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_latents_are_refused_by_the_score(model: VAEModel, bad: float) -> None:
    z = _z(model)
    z[1, 0] = bad
    with pytest.raises(InputValueError, match=r"finite|NaN|inf"):
        scales(model.decoder, z, likelihood=model.likelihood)
    with pytest.raises(InputValueError, match=r"finite|NaN|inf"):
        model.scales(z)


@pytest.mark.parametrize(
    "shape", [(3,), (3, 1, 1), (0,), (3, 1), (3, 1000)], ids=["1d", "3d", "empty1d", "d1", "d1000"]
)
def test_wrong_shapes_name_what_was_expected(model: VAEModel, shape: tuple[int, ...]) -> None:
    if shape == (3, 1) and model.latent_dim == 1:
        pytest.skip("right shape for this model")
    with pytest.raises(ScalesVizError) as caught:
        model.scales(torch.zeros(shape, dtype=torch.float64))
    message = str(caught.value)
    assert str(model.latent_dim) in message or "n x d" in message or "2-D" in message, message


def test_integer_and_non_tensor_latents(model: VAEModel) -> None:
    with pytest.raises(InputTypeError):
        scales(model.decoder, torch.zeros(2, model.latent_dim, dtype=torch.int64))
    with pytest.raises(InputTypeError):
        scales(model.decoder, [[0.0] * model.latent_dim])  # type: ignore[arg-type]


def test_empty_batches_give_empty_scores(model: VAEModel) -> None:
    assert model.scales(_z(model, 0)).shape == (0,)


def test_huge_finite_latents_score_without_crashing(model: VAEModel) -> None:
    z = _z(model, 4)
    z[1] = HUGE
    z[2] = -HUGE
    z[3, 0] = 1e308
    got = model.scales(z)
    assert got.shape == (4,)
    assert torch.isfinite(got[0])
    # Far out the decoder saturates: a finite, NaN or -inf score, never an exception.
    assert not torch.isinf(got[1:]).any() or (got[1:][torch.isinf(got[1:])] < 0).all()
    evaluated = evaluate_points(model, next(iter(model.objectives)), z[:3].numpy())
    assert len(evaluated.valid) == 3


def test_broken_digit_images_are_invalid_with_no_objective() -> None:
    """Far out, the digits decoder overflows to NaN pixels: such an image is invalid and its
    objectives are NaN, beside a normal image that still scores."""
    from scales_viz.models import load_model

    digits = load_model("digits-2d")
    normal = digits.decode(digits.sample_prior(1, seed=0))[0]
    broken = np.full_like(np.asarray(normal, dtype=np.float32), np.nan)
    valid = digits.validity([broken, normal])
    assert not valid[0]
    for name in digits.objectives:
        values = digits.objective_values([broken, normal], name)
        assert math.isnan(values[0]) and math.isfinite(values[1])


def test_slice_planes_refuse_bad_vectors(model: VAEModel) -> None:
    d = model.latent_dim
    with pytest.raises(InputValueError):
        plane_through([np.zeros(d), np.full(d, math.nan), np.ones(d)])
    with pytest.raises(InputValueError):
        plane_through([np.zeros(d), np.zeros(d), np.zeros(d)])  # no plane through one point
    with pytest.raises(InputValueError):
        plane_through([np.zeros(d), np.ones(d + 1), np.ones(d)])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"extent": math.nan},
        {"extent": math.inf},
        {"extent": -1.0},
        {"extent": 0.0},
        {"resolution": 1},
        {"resolution": 10**6},
    ],
    ids=["nan", "inf", "negative", "zero", "res1", "res1e6"],
)
def test_slice_specs_refuse_bad_extent_and_resolution(kwargs: dict[str, Any]) -> None:
    plane = plane_through([np.zeros(2), np.eye(2)[0], np.eye(2)[1]])
    base: dict[str, Any] = {"plane": plane, "extent": 3.0, "resolution": 17}
    with pytest.raises(InputValueError):
        SliceSpec(**{**base, **kwargs})


def test_a_slice_far_out_computes(model: VAEModel) -> None:
    d = model.latent_dim
    origin = np.zeros(d)
    origin[0] = HUGE
    plane = axis_plane(origin, 0, 1)
    grid = compute_slice(model, SliceSpec(plane, extent=1.0, resolution=5), scores=["scales"])
    assert grid.scores["scales"].shape == (5, 5)


BAD_POINTS = ["nan, 1", "inf,inf", "1e999, 0", ",".join(["1"] * 30), "", "data -1",
              "prior 99999999999", "data 1e3", "zero zero"]  # fmt: skip


@pytest.mark.parametrize("text", BAD_POINTS)
def test_typed_points_refuse_bad_text(model: VAEModel, text: str) -> None:
    with pytest.raises(InputValueError):
        parse_point(text, data_latents=model.data_latents, prior_scale=model.prior_scale, seed=0)


@pytest.mark.parametrize(
    "start", [((math.nan, 0.0), (0.0, 0.0)), ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)), ((0.0, 0.0),)]
)
def test_optimiser_start_points_must_be_finite_and_fit(start: Any) -> None:
    digits = load_model("digits-2d")
    settings = Settings(batch_size=2, start=start)
    with pytest.raises(InputValueError, match=r"settings\.start"):
        run(digits, "looks_like_3", optimizer="gradient", budget=Budget(evaluations=4),
            seed=0, settings=settings)  # fmt: skip
    with pytest.raises(InputValueError):
        Budget(evaluations=0)


def test_an_optimiser_started_far_out_ends_cleanly() -> None:
    digits = load_model("digits-2d")
    result = run(
        digits,
        "looks_like_3",
        optimizer="gradient",
        budget=Budget(evaluations=6),
        seed=0,
        settings=Settings(batch_size=2, start=((HUGE, HUGE), (-HUGE, 0.0))),
    )
    assert result.status.value in ("completed", "stopped", "failed")
    assert result.reason


def test_selections_refuse_non_finite_latents() -> None:
    with pytest.raises(InputValueError):
        Selection("m", "slices", np.array([[0.0, math.nan]]), ("a",))
    with pytest.raises(InputValueError):
        Selection.from_state({"model": "m", "source": "slices", "z": [[0, 1], [2]], "labels": []})


# --------------------------------------------------------------------------------------------
# Pages: a run whose latents are huge (legal in a run file) goes through every view.
# --------------------------------------------------------------------------------------------


def _far_run_file() -> bytes:
    rows = [
        {"step": s, "z_0": v, "z_1": -v, "objective": 0.1 * s}
        for s, v in enumerate([0.0, 1.0, 1e6, HUGE, 3e38])
    ]
    buffer = io.StringIO()
    pd.DataFrame(rows).to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def test_run_files_refuse_latents_beyond_float32() -> None:
    from scales_viz.lso.io import read_runs

    data = b"step,z_0,z_1,objective\n0,0,0,1\n1,1e300,0,1\n"
    with pytest.raises(InputValueError, match=r"row 2.*z_0.*float32"):
        read_runs(data, fmt="csv", latent_dim=2, filename="far.csv")


def test_a_run_with_huge_latents_goes_through_every_page() -> None:
    from apptest import clean, new_app

    from scales_viz.lso.io import import_runs
    from scales_viz.lso.store import RunStore

    digits = load_model("digits-2d")
    store = RunStore()
    (stored,) = import_runs(
        store, _far_run_file(), model=digits, objective="looks_like_3", filename="far.csv"
    )
    points = store.points([stored.id])
    assert len(points) == 5
    z = points[["z_0", "z_1"]].to_numpy()
    trajectory = {"name": "far", "z": z.tolist(), "best": None}
    selection = Selection("digits-2d", "optimizers", z, tuple(f"p{i}" for i in range(5)))
    state = {
        "opt_selected_runs": [stored.id],
        "trajectories": [trajectory],
        "selection": {**selection.to_state(), "indices": None},
    }
    for page in ("optimizers.py", "slices.py", "projection.py", "inspect.py"):
        at = new_app("digits-2d", **state)
        at.switch_page(f"views/{page}")
        at.run()
        clean(at)


@pytest.mark.parametrize(
    ("page", "state"),
    [
        ("slices.py", {"slice_plane": "random", "slice_origin": "nan, 1"}),
        ("slices.py", {"slice_plane": "random", "slice_origin": "1e999, 0"}),
        ("slices.py", {"slice_plane": "through three points", "slice_points": "nan,1; 0,0; 1,1"}),
        ("slices.py", {"slice_plane": "through three points", "slice_points": "0,0; 0,0; 0,0"}),
        (
            "slices.py",
            {"slice_plane": "through three points", "slice_points": "1e300,1e300; 0,1; 1,0"},
        ),
        ("slices.py", {"slice_plane": "random", "slice_origin": ",".join(["1"] * 50)}),
    ],
    ids=["nan-origin", "overflow-origin", "nan-point", "same-points", "huge-points", "long"],
)
def test_typed_bad_latents_on_the_slices_page(page: str, state: dict[str, Any]) -> None:
    from apptest import new_app

    at = new_app("digits-2d", **state)
    at.switch_page(f"views/{page}")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.error or at.get("plotly_chart"), "neither an error nor a slice"
