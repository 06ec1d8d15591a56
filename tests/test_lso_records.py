"""Run records: Step checks, the points table round trip, and a run's drawable path."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scales_viz.errors import InputValueError
from scales_viz.lso.records import Step, best_path, points_frame, steps_from_points


def _step(k: int, objective: list[float], valid: list[bool]) -> Step:
    n = len(objective)
    return Step(
        step=k,
        z=np.arange(2 * n, dtype=float).reshape(n, 2) + 10 * k,
        objective=[v if ok else math.nan for v, ok in zip(objective, valid, strict=True)],
        valid=valid,
        decoded=[f"s{k}{i}" for i in range(n)],
        scales=np.zeros(n),
        likelihood=np.zeros(n),
        wall_time=float(k),
    )


def test_step_checks_lengths_and_numbers() -> None:
    with pytest.raises(InputValueError, match="one entry per point"):
        Step(0, np.zeros((2, 3)), [1.0], [True, True], ["a", "b"], [0, 0], [0, 0], 0.0)
    with pytest.raises(InputValueError, match="n x d"):
        Step(0, np.zeros(3), [1.0], [True], ["a"], [0], [0], 0.0)
    with pytest.raises(InputValueError, match="non-negative int"):
        Step(-1, np.zeros((1, 3)), [1.0], [True], ["a"], [0], [0], 0.0)
    assert _step(0, [1.0, 5.0], [True, False]).best_valid() == 1.0
    assert math.isnan(_step(0, [1.0], [False]).best_valid())


def test_points_table_round_trips_steps() -> None:
    steps = [_step(0, [1.0, 2.0], [True, False]), _step(1, [3.0], [True])]
    frame = points_frame(steps, run="r", optimizer="opt", seed=4)
    assert list(frame["step"]) == [0, 0, 1] and list(frame["index"]) == [0, 1, 0]
    back = steps_from_points(frame)
    for a, b in zip(steps, back, strict=True):
        np.testing.assert_array_equal(a.z, b.z)
        np.testing.assert_array_equal(a.objective, b.objective)
        assert list(a.decoded) == list(b.decoded)


def test_best_path_takes_each_steps_best_valid_point_and_marks_the_best() -> None:
    steps = [
        _step(0, [1.0, 4.0, 2.0], [True, False, True]),  # 4.0 is invalid: 2.0 is the step best
        _step(1, [0.5, 9.0], [False, False]),  # nothing valid: its first proposal
        _step(2, [3.0, 7.0], [True, True]),
    ]
    frame = points_frame(steps, run="r", optimizer="opt", seed=0).sample(frac=1, random_state=0)
    z, best = best_path(frame)
    np.testing.assert_array_equal(z, [steps[0].z[2], steps[1].z[0], steps[2].z[1]])
    assert best == 2
    none_valid = points_frame([_step(0, [1.0], [False])], run="r", optimizer="o", seed=0)
    assert best_path(none_valid)[1] is None
