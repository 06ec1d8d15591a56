"""Optimiser contracts: callback per step, budgets and stop rules, determinism, tiny budgets,
invalid points kept out of the GP, penalties, and failures reported rather than raised."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scales_viz.errors import InputValueError
from scales_viz.lso import optimizers as opt
from scales_viz.lso.optimizers import OPTIMIZERS, Budget, Settings, run
from scales_viz.lso.records import RunStatus, Step
from scales_viz.models import load_model

OBJECTIVE = "looks_like_7"
SMALL = Settings(batch_size=4, n_initial=5, ascent_steps=3, n_candidates=64, raw_samples=16)


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return load_model("digits-2d")


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_callback_gets_every_step_in_order_and_budget_is_exact(digits, optimizer) -> None:  # type: ignore[no-untyped-def]
    seen: list[Step] = []
    result = run(
        digits,
        OBJECTIVE,
        optimizer=optimizer,
        budget=Budget(evaluations=15),
        seed=3,
        settings=SMALL,
        callback=seen.append,
    )
    assert result.status is RunStatus.COMPLETED, result.reason
    assert "budget of 15 evaluations" in result.reason
    assert [s.step for s in seen] == list(range(len(seen)))
    assert seen == result.steps
    assert sum(s.size for s in seen) == result.evaluations == 15
    first = SMALL.n_initial if optimizer in ("gp-ascent", "lbfgs", "turbo") else SMALL.batch_size
    assert seen[0].size == first
    assert all(s.size <= SMALL.batch_size for s in seen[1:])
    for s in seen:
        assert s.z.shape == (s.size, 2)
        assert np.isnan(s.objective[~s.valid]).all()
        assert np.isfinite(s.objective[s.valid]).all()
        assert np.isfinite(s.scales).all() and np.isfinite(s.likelihood).all()
        assert list(s.decoded) == [None] * s.size  # images are re-decoded from z
    wall = [s.wall_time for s in seen]
    assert wall == sorted(wall)
    valid_best = max(np.nanmax(np.where(s.valid, s.objective, np.nan)) for s in seen)
    assert result.best_objective == pytest.approx(valid_best)
    assert result.best_z is not None


@pytest.mark.parametrize("optimizer", ["random", "gp-ascent", "turbo", "lbfgs", "gradient"])
def test_same_seed_same_run_other_seed_other_run(digits, optimizer) -> None:  # type: ignore[no-untyped-def]
    def zs(seed: int) -> np.ndarray:
        result = run(
            digits,
            OBJECTIVE,
            optimizer=optimizer,
            budget=Budget(evaluations=13),
            seed=seed,
            settings=SMALL,
        )
        return np.concatenate([s.z for s in result.steps])

    np.testing.assert_array_equal(zs(1), zs(1))
    assert not np.array_equal(zs(1), zs(2))


def test_run_leaves_global_rng_alone(digits) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run(digits, OBJECTIVE, optimizer="turbo", budget=Budget(evaluations=9), seed=0, settings=SMALL)
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())


def test_tiny_budgets(digits) -> None:  # type: ignore[no-untyped-def]
    one = run(digits, OBJECTIVE, optimizer="gp-ascent", budget=Budget(evaluations=1), seed=0)
    assert one.status is RunStatus.COMPLETED
    assert [s.size for s in one.steps] == [1]
    initial_only = run(
        digits, OBJECTIVE, optimizer="lbfgs", budget=Budget(evaluations=5), seed=0, settings=SMALL
    )
    assert [s.size for s in initial_only.steps] == [5]


def test_stop_rules(digits) -> None:  # type: ignore[no-untyped-def]
    by_callback = run(
        digits,
        OBJECTIVE,
        optimizer="random",
        budget=Budget(evaluations=100),
        seed=0,
        settings=SMALL,
        callback=lambda step: step.step == 1,
    )
    assert by_callback.status is RunStatus.STOPPED
    assert by_callback.reason == "stopped by the callback"
    assert len(by_callback.steps) == 2

    by_steps = run(
        digits,
        OBJECTIVE,
        optimizer="random",
        budget=Budget(evaluations=100, max_steps=3),
        seed=0,
        settings=SMALL,
    )
    assert by_steps.status is RunStatus.STOPPED
    assert len(by_steps.steps) == 3 and "max_steps=3" in by_steps.reason

    by_time = run(
        digits,
        OBJECTIVE,
        optimizer="random",
        budget=Budget(evaluations=10_000, time_limit=1e-9),
        seed=0,
        settings=SMALL,
    )
    assert by_time.status is RunStatus.STOPPED and len(by_time.steps) == 1
    assert "time limit" in by_time.reason


def test_patience_counts_steps_without_improvement(digits, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Everything valid; the first step scores 0.9, every later one 0.1 (never better).
    constant = opt.Settings(batch_size=2)
    values = iter([0.9] + [0.1] * 100)

    def fake(self, objects, name):  # type: ignore[no-untyped-def]
        return np.full(len(objects), next(values))

    monkeypatch.setattr(type(digits), "objective_values", fake)
    monkeypatch.setattr(type(digits), "validity", lambda self, objs: np.ones(len(objs), bool))
    result = run(
        digits,
        OBJECTIVE,
        optimizer="random",
        budget=Budget(evaluations=100, patience=3),
        seed=0,
        settings=constant,
    )
    assert result.status is RunStatus.STOPPED
    assert len(result.steps) == 4  # the improving step, then 3 without improvement
    assert result.best_objective == 0.9


def test_invalid_points_never_reach_the_gp(digits, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    fitted: list[tuple[torch.Tensor, torch.Tensor]] = []
    real_fit = opt._fit_gp

    def spy(x, y, bounds):  # type: ignore[no-untyped-def]
        fitted.append((x.clone(), y.clone()))
        return real_fit(x, y, bounds)

    monkeypatch.setattr(opt, "_fit_gp", spy)
    result = run(
        digits,
        OBJECTIVE,
        optimizer="gp-ascent",
        budget=Budget(evaluations=20),
        seed=4,
        settings=Settings(batch_size=5, n_initial=10, initial="prior", ascent_steps=2),
    )
    assert fitted
    invalid = np.concatenate([s.z[~s.valid] for s in result.steps])
    assert invalid.size, "the test needs some invalid proposals (digits-2d prior has ~20%)"
    for x, y in fitted:
        assert torch.isfinite(y).all()
        for row in invalid:
            assert not (x.numpy() == row).all(axis=1).any()


def test_bad_arguments_raise_before_running(digits) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputValueError, match="optimizer must be one of"):
        run(digits, OBJECTIVE, optimizer="adam", budget=Budget(evaluations=5), seed=0)
    with pytest.raises(InputValueError, match="no objective 'qed'"):
        run(digits, "qed", optimizer="random", budget=Budget(evaluations=5), seed=0)
    with pytest.raises(InputValueError, match="takes no penalty"):
        run(
            digits,
            OBJECTIVE,
            optimizer="lbfgs",
            budget=Budget(evaluations=5),
            seed=0,
            settings=Settings(penalty="scales"),
        )
    with pytest.raises(InputValueError, match=r"budget\.evaluations"):
        Budget(evaluations=0)
    with pytest.raises(InputValueError, match=r"settings\.penalty"):
        Settings(penalty="entropy")  # type: ignore[arg-type]
    with pytest.raises(InputValueError, match=r"settings\.start must be"):
        run(
            digits,
            OBJECTIVE,
            optimizer="gradient",
            budget=Budget(evaluations=5),
            seed=0,
            settings=Settings(batch_size=2, start=((0.0, 0.0, 0.0),)),
        )


def test_gradient_needs_a_differentiable_objective() -> None:
    expressions = load_model("expressions")
    with pytest.raises(InputValueError, match="needs a differentiable objective"):
        run(expressions, "fit_target", optimizer="gradient", budget=Budget(evaluations=4), seed=0)


def test_errors_inside_a_run_end_it_as_failed_with_steps_kept(digits, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    calls = {"n": 0}
    real = type(digits).decode

    def flaky(self, z):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("decoder exploded")
        return real(self, z)

    monkeypatch.setattr(type(digits), "decode", flaky)
    result = run(
        digits, OBJECTIVE, optimizer="random", budget=Budget(evaluations=40), seed=0, settings=SMALL
    )
    assert result.status is RunStatus.FAILED
    assert "RuntimeError at step 2: decoder exploded" in result.reason
    assert len(result.steps) == 2


def test_gradient_ascent_follows_the_objective_and_start_points(digits) -> None:  # type: ignore[no-untyped-def]
    start = ((0.3, -0.2), (-1.0, 0.5))
    result = run(
        digits,
        "looks_like_3",
        optimizer="gradient",
        budget=Budget(evaluations=2 * 6),
        seed=0,
        settings=Settings(batch_size=2, start=start, step_size=0.05),
    )
    np.testing.assert_allclose(result.steps[0].z, np.array(start))
    # each step moves every chain by exactly step_size * prior_scale (unit gradient)
    for a, b in zip(result.steps, result.steps[1:], strict=False):
        np.testing.assert_allclose(np.linalg.norm(b.z - a.z, axis=1), 0.05, rtol=1e-6)
    objective = digits.objectives["looks_like_3"].latent
    with torch.no_grad():
        first = objective(torch.tensor(result.steps[0].z, dtype=torch.float32))
        last = objective(torch.tensor(result.steps[-1].z, dtype=torch.float32))
    assert (last > first).all()


def test_penalty_directions_are_unit_gradients(digits) -> None:  # type: ignore[no-untyped-def]
    z = torch.tensor([[0.5, -1.0], [2.0, 0.3], [0.0, 0.0]], dtype=torch.float64)
    prior = opt.penalty_direction(digits, "prior", z)
    np.testing.assert_allclose(prior[:2].numpy(), (-z[:2] / z[:2].norm(dim=1, keepdim=True)))
    assert (prior[2] == 0).all()  # zero gradient stays zero, not NaN
    assert (opt.penalty_direction(digits, "none", z) == 0).all()
    direction = opt.penalty_direction(digits, "scales", z[:2])
    np.testing.assert_allclose(direction.norm(dim=1).numpy(), 1.0, rtol=1e-12)
    # against central differences of the ScaLES value itself
    h = 1e-5
    for i in range(2):
        grad = []
        for j in range(2):
            e = torch.zeros(1, 2, dtype=torch.float64)
            e[0, j] = h
            up = digits.scales(z[i : i + 1] + e)
            down = digits.scales(z[i : i + 1] - e)
            grad.append(float((up - down) / (2 * h)))
        numeric = np.array(grad) / np.linalg.norm(grad)
        np.testing.assert_allclose(direction[i].numpy(), numeric, atol=1e-5)


def test_unit_rows() -> None:
    g = torch.tensor([[3.0, 4.0], [0.0, 0.0], [math.nan, 1.0]], dtype=torch.float64)
    out = opt._unit(g)
    np.testing.assert_allclose(out.numpy(), [[0.6, 0.8], [0.0, 0.0], [0.0, 0.0]])


def test_settings_record_is_json_and_names_what_the_optimizer_uses() -> None:
    import json

    record = Settings(penalty="scales", alpha=0.25).record("gp-ascent")
    assert record["penalty"] == "scales" and record["alpha"] == 0.25
    assert "n_candidates" not in record
    json.dumps(record)
    assert "alpha" not in Settings().record("gp-ascent")
    assert opt.optimizer_label("gp-ascent", "scales") == "gp-ascent+scales"
    assert opt.optimizer_label("lbfgs") == "lbfgs"


def test_ascent_start_points_are_the_best_plus_distinct_random_valid_ones() -> None:
    history = opt._History()
    z = np.arange(12, dtype=float).reshape(6, 2)
    z[5] = z[4]  # a repeated latent counts once
    history.add(
        Step(
            step=0,
            z=z,
            objective=[1.0, 5.0, math.nan, 3.0, 2.0, 2.0],
            valid=[True, True, False, True, True, True],
            decoded=[None] * 6,
            scales=np.zeros(6),
            likelihood=np.zeros(6),
            wall_time=0.0,
        )
    )
    np.testing.assert_array_equal(history.best_valid(2).numpy(), z[[1, 3]])
    draws = set()
    for seed in range(20):
        starts = history.start_points(3, torch.Generator().manual_seed(seed)).numpy()
        np.testing.assert_array_equal(starts[0], z[1])  # the best always starts
        assert len({tuple(r) for r in starts}) == 3
        assert not any((starts == z[2]).all(axis=1))  # never the invalid point
        draws.add(tuple(map(tuple, starts[1:])))
    assert len(draws) > 1  # the others vary with the generator
    assert len(history.start_points(10, torch.Generator())) == 4  # 4 distinct valid latents
