"""Sweeps: the grid, one writer of the run store, the same runs as one process, dead workers."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scales_viz.cli import main
from scales_viz.errors import InputValueError
from scales_viz.lso.optimizers import Budget, run
from scales_viz.lso.records import RunStatus
from scales_viz.lso.store import RunStore
from scales_viz.lso.sweep import SweepConfig, load_sweep_file, run_sweep
from scales_viz.models import load_model

#: A small grid on the fastest built-in: 2 GP runs and 1 random run of 3 steps each.
SMALL = SweepConfig(
    model="digits-2d",
    objectives=("looks_like_7",),
    optimizers=("gp-ascent", "random"),
    penalties=("none", "scales"),
    seeds=(3,),
    budget=16,
    batch_size=4,
    n_initial=8,
)


def test_the_grid_runs_unpenalised_optimisers_once() -> None:
    config = SweepConfig(
        model="expressions",
        objectives=("fit_target",),
        optimizers=("gp-ascent", "lbfgs"),
        penalties=("none", "scales", "prior"),
        seeds=(0, 1),
    )
    trials = config.trials()
    assert [(t.label, t.seed) for t in trials] == [
        ("gp-ascent", 0),
        ("gp-ascent+scales", 0),
        ("gp-ascent+prior", 0),
        ("lbfgs", 0),
        ("gp-ascent", 1),
        ("gp-ascent+scales", 1),
        ("gp-ascent+prior", 1),
        ("lbfgs", 1),
    ]
    assert [t.index for t in trials] == list(range(8))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"optimizers": ("gp-ascent", "adam")}, r"unknown optimizers \['adam'\]"),
        ({"penalties": ("entropy",)}, r"unknown penalties \['entropy'\]"),
        ({"seeds": (-1,)}, "non-negative"),
        ({"objectives": ()}, "at least one objective"),
        ({"budget": 0}, "budget|evaluations"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_a_bad_grid_is_refused_before_any_work(changes: dict[str, Any], message: str) -> None:
    fields = {**SMALL.__dict__, **changes}
    with pytest.raises(InputValueError, match=message):
        SweepConfig(**fields)


def test_a_sweep_file_is_read_checked_and_overridden(tmp_path: Path) -> None:
    path = tmp_path / "sweep.toml"
    path.write_text(
        'model = "digits-2d"\nobjectives = "looks_like_7"\noptimizers = ["random"]\n'
        "seeds = [0, 1]\nbudget = 12\n"
    )
    config = load_sweep_file(path, budget=20, seeds=None)
    assert config.objectives == ("looks_like_7",)
    assert config.seeds == (0, 1) and config.budget == 20
    path.write_text('model = "digits-2d"\nobjectives = ["x"]\nlearning_rate = 3\n')
    with pytest.raises(InputValueError, match=r"unknown keys \['learning_rate'\]"):
        load_sweep_file(path)
    path.write_text("model = [")
    with pytest.raises(InputValueError, match="cannot read sweep file"):
        load_sweep_file(path)


def test_an_unknown_objective_is_refused_before_any_worker_starts() -> None:
    config = SweepConfig(**{**SMALL.__dict__, "objectives": ("solubility",)})
    with pytest.raises(InputValueError, match=r"no objective \['solubility'\]"):
        run_sweep(config, RunStore())


def _check_against_one_process(store: RunStore, result: Any) -> None:
    """Every run of the sweep is in the store once, with the points a plain run gives."""
    model = load_model("digits-2d")
    for outcome in result.outcomes:
        trial = outcome.trial
        assert outcome.status is RunStatus.COMPLETED, outcome.reason
        stored = store.run(outcome.run_id)
        assert stored.status == RunStatus.COMPLETED
        assert (stored.optimizer, stored.seed) == (trial.label, trial.seed)
        points = store.points([outcome.run_id])
        plain = run(
            model,
            trial.objective,
            optimizer=trial.optimizer,
            budget=Budget(evaluations=SMALL.budget),
            seed=trial.seed,
            settings=SMALL.settings(trial.penalty),
        )
        z = np.concatenate([step.z for step in plain.steps])
        assert len(points) == len(z) == SMALL.budget  # every step recorded once
        assert sorted(points["step"].unique()) == [s.step for s in plain.steps]
        stored_z = points[[c for c in points.columns if c.startswith("z_")]].to_numpy()
        np.testing.assert_allclose(stored_z, z, atol=1e-6)


@pytest.mark.slow
def test_local_workers_record_every_step_once_with_the_numbers_of_one_process() -> None:
    store = RunStore()
    seen: list[str] = []
    result = run_sweep(SMALL, store, workers=2, on_message=lambda m, o: seen.append(m[0]))
    assert len(result.outcomes) == 3
    assert seen.count("start") == seen.count("end") == 3
    _check_against_one_process(store, result)


def _kill_after_first_step(index: int) -> Any:
    def on_message(message: tuple[Any, ...], outcome: Any) -> None:
        if message[0] == "step" and outcome.trial.index == index and outcome.n_steps == 1:
            os.kill(outcome.pid, signal.SIGKILL)

    return on_message


@pytest.mark.slow
def test_a_killed_local_worker_leaves_its_run_interrupted_with_its_steps() -> None:
    store = RunStore()
    result = run_sweep(SMALL, store, workers=1, on_message=_kill_after_first_step(0))
    killed, *rest = result.outcomes
    assert killed.status is RunStatus.INTERRUPTED
    assert "worker died" in killed.reason and "-9" in killed.reason
    stored = store.run(killed.run_id)
    assert stored.status == RunStatus.INTERRUPTED
    assert len(store.points([killed.run_id])) >= SMALL.n_initial  # the steps it sent are kept
    assert [o.status for o in rest] == [RunStatus.COMPLETED] * 2  # a new worker ran the rest


@pytest.mark.slow
def test_ray_tasks_record_every_step_once_with_the_numbers_of_one_process(ray_cluster) -> None:  # type: ignore[no-untyped-def]
    store = RunStore()
    result = run_sweep(SMALL, store, ray="local")
    _check_against_one_process(store, result)
    assert ray_cluster.is_initialized()  # the shared cluster is left running


@pytest.mark.slow
def test_a_killed_ray_worker_leaves_its_run_interrupted_with_its_steps(ray_cluster) -> None:  # type: ignore[no-untyped-def]
    store = RunStore()
    result = run_sweep(SMALL, store, ray="local", on_message=_kill_after_first_step(1))
    statuses = [o.status for o in result.outcomes]
    assert statuses == [RunStatus.COMPLETED, RunStatus.INTERRUPTED, RunStatus.COMPLETED]
    killed = result.outcomes[1]
    assert "worker died" in killed.reason
    assert store.run(killed.run_id).status == RunStatus.INTERRUPTED
    assert len(store.points([killed.run_id])) >= SMALL.n_initial


@pytest.mark.slow
def test_the_sweep_command_runs_a_file_into_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sweep.toml"
    path.write_text(
        'model = "digits-2d"\nobjectives = ["looks_like_7"]\noptimizers = ["random"]\n'
        "seeds = [0, 1]\nbudget = 8\nbatch_size = 4\n"
    )
    store_path = tmp_path / "runs.sqlite"
    assert main(["sweep", "--file", str(path), "--workers", "2", "--store", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert "2 runs of 8 evaluations" in out and "2/2 runs ended normally" in out
    runs = RunStore(store_path).runs()
    assert sorted(r.seed for r in runs) == [0, 1]
    assert all(r.status == RunStatus.COMPLETED and r.settings["sweep"] for r in runs)
    assert main(["sweep", "digits-2d", "--objectives", "looks_like_7", "--optimizers", "sgd"]) == 2
    assert "unknown optimizers ['sgd']" in capsys.readouterr().err


@pytest.mark.slow
def test_reproduce_as_a_sweep_gives_the_points_of_the_serial_comparison() -> None:
    from scales_viz.lso.reproduce import ReproduceConfig, reproduce, reproduce_sweep

    config = ReproduceConfig(seeds=1, rounds=1, batch_size=4, n_initial=8)
    model = load_model("digits-2d")
    serial = reproduce(model, objective="looks_like_7", config=config)
    parallel = reproduce_sweep(
        "digits-2d", objective="looks_like_7", config=config, store=RunStore(), ray=None, workers=2
    )
    assert list(parallel["run"].unique()) == list(serial["run"].unique())
    numbers = [c for c in serial.columns if c.startswith("z_")] + ["objective", "valid"]
    np.testing.assert_allclose(
        parallel[numbers].to_numpy(float), serial[numbers].to_numpy(float), atol=1e-6
    )
