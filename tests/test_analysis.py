"""Run analytics (:mod:`scales_viz.lso.analysis`) on small hand-built tables, by hand."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scales_viz.errors import InputValueError
from scales_viz.lso import analysis
from scales_viz.lso.analysis import (
    BEST_COLUMNS,
    BEST_SUMMARY_COLUMNS,
    MEAN_SEM_COLUMNS,
    SCALES_QUANTILE_COLUMNS,
    VALID_SHARE_SUMMARY_COLUMNS,
    MeanSem,
    best_so_far,
    mean_sem,
    mean_sem_by,
    pareto_front,
    realism_objective,
    scales_quantiles_per_step,
    summarise_best,
    summarise_valid_share,
    valid_share_per_step,
)

NAN = math.nan
INF = math.inf


def _table(rows: list[tuple[str, str, int, int, int, float, object]]) -> pd.DataFrame:
    """Rows of ``(run, optimizer, seed, step, index, objective, valid)``, reversed so that the
    functions have to sort them."""
    columns = ["run", "optimizer", "seed", "step", "index", "objective", "valid"]
    return pd.DataFrame(rows[::-1], columns=columns)


# --------------------------------------------------------------------------------------------
# mean ± SEM
# --------------------------------------------------------------------------------------------


def test_mean_sem_by_hand() -> None:
    # [1, 2, 3, 4]: mean 2.5, var (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3, sem = sqrt(5/3) / 2.
    stats = mean_sem([1.0, 2.0, 3.0, 4.0])
    assert stats.n == 4 and stats.mean == 2.5
    assert stats.std == pytest.approx(math.sqrt(5 / 3), rel=1e-12)
    assert stats.sem == pytest.approx(math.sqrt(5 / 3) / 2, rel=1e-12)


def test_mean_sem_of_one_value_has_an_undefined_sem() -> None:
    stats = mean_sem([7.0])
    assert (stats.mean, stats.n) == (7.0, 1)
    assert math.isnan(stats.std) and math.isnan(stats.sem)  # undefined, not zero


def test_mean_sem_leaves_out_nan_and_infinities() -> None:
    # Kept: 2 and 4 -> mean 3, std sqrt(2), sem sqrt(2) / sqrt(2) = 1.
    stats = mean_sem(np.array([NAN, 2.0, INF, 4.0, -INF]))
    assert (stats.mean, stats.n) == (3.0, 2)
    assert stats.std == pytest.approx(math.sqrt(2.0)) and stats.sem == pytest.approx(1.0)


@pytest.mark.parametrize("values", [[], [NAN, NAN], [INF]])
def test_mean_sem_of_no_finite_value_is_nan_with_n_zero(values: list[float]) -> None:
    stats = mean_sem(values)
    assert stats.n == 0
    assert all(math.isnan(v) for v in (stats.mean, stats.std, stats.sem))


def test_mean_sem_by_groups_sorted_with_the_same_rule() -> None:
    frame = pd.DataFrame({"g": ["c", "a", "b", "a", "c"], "v": [NAN, 1.0, 5.0, 3.0, INF]})
    out = mean_sem_by(frame, ["g"], "v")
    assert tuple(out.columns) == ("g", *MEAN_SEM_COLUMNS)
    assert out["g"].tolist() == ["a", "b", "c"]
    assert out["n"].tolist() == [2, 1, 0]
    np.testing.assert_allclose(out["mean"], [2.0, 5.0, NAN])
    np.testing.assert_allclose(out["std"], [math.sqrt(2.0), NAN, NAN])
    np.testing.assert_allclose(out["sem"], [1.0, NAN, NAN])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(NAN), st.just(INF)), max_size=12))
def test_mean_sem_matches_numpy_on_the_finite_values(values: list[float]) -> None:
    kept = np.array([v for v in values if math.isfinite(v)])
    stats = mean_sem(values)
    assert stats.n == kept.size
    if kept.size:
        assert stats.mean == pytest.approx(kept.mean(), rel=1e-9, abs=1e-9)
    if kept.size > 1:
        sem = kept.std(ddof=1) / math.sqrt(kept.size)
        assert stats.sem == pytest.approx(sem, rel=1e-6, abs=1e-6)
    else:
        assert math.isnan(stats.sem)


def test_mean_sem_is_a_frozen_result() -> None:
    stats = mean_sem([1.0, 2.0])
    assert isinstance(stats, MeanSem)
    with pytest.raises(AttributeError):
        stats.mean = 0.0  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# best so far
# --------------------------------------------------------------------------------------------


def test_best_so_far_ignores_invalid_and_non_finite_points() -> None:
    points = _table(
        [
            ("z", "a", 1, 0, 0, NAN, False),
            ("z", "a", 1, 0, 1, 5.0, False),  # finite but invalid: ignored
            ("z", "a", 1, 1, 0, 2.0, True),
            ("z", "a", 1, 1, 1, INF, True),  # valid but infinite: ignored
            ("z", "a", 1, 2, 0, 1.0, True),  # lower than 2: best stays
            ("z", "a", 1, 2, 1, NAN, True),  # valid but NaN: ignored
            ("z", "a", 1, 3, 0, 10.0, None),  # missing validity counts as invalid
            ("z", "a", 1, 3, 1, 3.0, True),
            ("y", "b", 0, 0, 0, -1.0, True),
        ]
    )
    best = best_so_far(points)
    assert tuple(best.columns) == BEST_COLUMNS
    # Runs by (optimizer, seed, run): z (optimizer a) before y (optimizer b).
    assert best["run"].tolist() == ["z"] * 8 + ["y"]
    assert best["evaluations"].tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 1]
    np.testing.assert_array_equal(best["best"], [NAN, NAN, 2, 2, 2, 2, 2, 3, -1])


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.one_of(st.floats(-10, 10), st.just(NAN), st.just(INF)), st.booleans()),
        min_size=1,
        max_size=15,
    )
)
def test_best_so_far_never_decreases_once_defined(points: list[tuple[float, bool]]) -> None:
    table = _table([("r", "o", 0, k, 0, o, v) for k, (o, v) in enumerate(points)])
    best = best_so_far(table)["best"].to_numpy()
    defined = best[~np.isnan(best)]
    assert (np.diff(defined) >= 0).all()
    # NaN only before the first counted point, never after it.
    counted = [v and math.isfinite(o) for o, v in points]
    first = counted.index(True) if any(counted) else len(points)
    assert np.isnan(best[:first]).all() and not np.isnan(best[first:]).any()


def test_best_so_far_rejects_missing_columns_and_a_run_with_two_seeds() -> None:
    with pytest.raises(InputValueError, match="objective"):
        best_so_far(_table([("r", "o", 0, 0, 0, 1.0, True)]).drop(columns="objective"))
    two_seeds = _table([("r", "o", 0, 0, 0, 1.0, True), ("r", "o", 1, 1, 0, 2.0, True)])
    with pytest.raises(InputValueError, match="one optimizer and one seed"):
        best_so_far(two_seeds)


# --------------------------------------------------------------------------------------------
# summaries
# --------------------------------------------------------------------------------------------


def _two_optimizers() -> pd.DataFrame:
    return _table(
        [
            ("r1", "a", 0, 0, 0, 1.0, True),
            ("r1", "a", 0, 0, 1, 3.0, True),
            ("r1", "a", 0, 1, 0, 10.0, True),  # beyond a's shortest run: left out
            ("r2", "a", 1, 0, 0, NAN, False),
            ("r2", "a", 1, 1, 0, 2.0, True),
            ("r3", "b", 0, 0, 0, 4.0, True),
            ("r3", "b", 0, 0, 1, 0.0, True),
        ]
    )


def test_summarise_best_by_hand() -> None:
    summary = summarise_best(_two_optimizers())
    assert tuple(summary.columns) == BEST_SUMMARY_COLUMNS
    # a at count 1: r1 1.0, r2 none yet -> 1.0, n 1; count 2: r1 3.0, r2 2.0 -> 2.5 ± 0.5.
    # b: one run, best 4 then 4 -> SEM undefined.
    assert summary["optimizer"].tolist() == ["a", "a", "b", "b"]
    assert summary["evaluations"].tolist() == [1, 2, 1, 2]
    assert summary["n"].tolist() == [1, 2, 1, 1]
    assert summary["runs"].tolist() == [2, 2, 1, 1]
    np.testing.assert_allclose(summary["mean"], [1.0, 2.5, 4.0, 4.0])
    np.testing.assert_allclose(summary["sem"], [NAN, 0.5, NAN, NAN])


def test_summarise_valid_share_by_hand() -> None:
    shares = valid_share_per_step(_two_optimizers())
    assert shares["share"].tolist() == [1.0, 1.0, 0.0, 1.0, 1.0]  # r1 s0, s1; r2 s0, s1; r3 s0
    summary = summarise_valid_share(_two_optimizers())
    assert tuple(summary.columns) == VALID_SHARE_SUMMARY_COLUMNS
    # a step 0: [1.0, 0.0] -> 0.5 ± 0.5; a step 1: [1.0, 1.0] -> 1.0 ± 0; b step 0: one run.
    assert list(zip(summary["optimizer"], summary["step"], strict=True)) == [
        ("a", 0),
        ("a", 1),
        ("b", 0),
    ]
    np.testing.assert_allclose(summary["mean"], [0.5, 1.0, 1.0])
    np.testing.assert_allclose(summary["sem"], [0.5, 0.0, NAN])
    assert summary["n"].tolist() == [2, 2, 1] and summary["runs"].tolist() == [2, 2, 1]


def test_scales_quartiles_per_step_by_hand() -> None:
    table = pd.DataFrame(
        {
            "optimizer": ["a", "a", "a", "a", "a", "a", "a", "b"],
            "step": [0, 0, 0, 0, 0, 1, 1, 0],
            "scales": [4.0, 1.0, NAN, 3.0, 2.0, 5.0, INF, NAN],
        }
    )
    out = scales_quantiles_per_step(table)
    assert tuple(out.columns) == SCALES_QUANTILE_COLUMNS
    # a step 0: [1, 2, 3, 4] -> 1.75, 2.5, 3.25 (linear); a step 1: [5]; b: no finite value.
    assert out["optimizer"].tolist() == ["a", "a"] and out["step"].tolist() == [0, 1]
    np.testing.assert_allclose(out[["q25", "median", "q75"]], [[1.75, 2.5, 3.25], [5, 5, 5]])
    assert scales_quantiles_per_step(table.assign(scales=NAN)).empty


def test_summaries_of_empty_tables_keep_their_columns() -> None:
    empty = _table([])
    assert tuple(summarise_best(empty).columns) == BEST_SUMMARY_COLUMNS
    assert tuple(summarise_valid_share(empty).columns) == VALID_SHARE_SUMMARY_COLUMNS
    assert tuple(scales_quantiles_per_step(pd.DataFrame()).columns) == SCALES_QUANTILE_COLUMNS


# --------------------------------------------------------------------------------------------
# Pareto front
# --------------------------------------------------------------------------------------------


def test_pareto_front_keeps_tied_copies_and_ignores_nan() -> None:
    # 0 and 1 are one point twice, so are 2 and 3: neither copy dominates the other. 4 would
    # dominate 0-3 but has a NaN realism. 7 has 6's realism and a lower objective; 8 has 0's
    # objective and a lower realism.
    realism = np.array([1.0, 1.0, 2.0, 2.0, NAN, 0.0, 3.0, 3.0, 0.5])
    objective = np.array([5.0, 5.0, 3.0, 3.0, 9.0, 6.0, 1.0, 0.0, 5.0])
    assert pareto_front(realism, objective).tolist() == [5, 0, 1, 2, 3, 6]


def test_pareto_front_of_one_point_and_of_none() -> None:
    assert pareto_front(np.array([0.5]), np.array([-INF])).tolist() == [0]
    assert pareto_front(np.array([NAN]), np.array([1.0])).tolist() == []
    with pytest.raises(InputValueError, match="one length"):
        pareto_front(np.zeros(2), np.zeros(3))


def test_realism_objective_leaves_invalid_and_unscored_points_off_the_front() -> None:
    points = _table(
        [
            ("r", "o", 0, 0, 0, 9.0, False),  # invalid: would dominate everything
            ("r", "o", 0, 0, 1, 8.0, True),  # valid, no realism score
            ("r", "o", 0, 1, 0, 1.0, True),
            ("r", "o", 0, 1, 1, 2.0, True),
            ("r", "o", 0, 2, 0, NAN, True),  # valid but no objective: counted as invalid
        ]
    ).assign(scales=[5.0, NAN, -2.0, -1.0, 0.0][::-1])  # in the rows' order (_table reverses)
    data = realism_objective(points)
    assert (data.invalid, data.unscored) == (2, 1)
    assert data.points["objective"].tolist() == [1.0, 2.0]
    assert data.points["realism"].tolist() == [-2.0, -1.0]
    assert data.front.tolist() == [1]  # (-1, 2) dominates (-2, 1)
    with pytest.raises(KeyError, match="qed"):
        realism_objective(points, "qed")


# --------------------------------------------------------------------------------------------
# layering
# --------------------------------------------------------------------------------------------


def test_analysis_imports_neither_plotly_nor_figures() -> None:
    tree = ast.parse(Path(analysis.__file__).read_text())
    names = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(n.startswith(("plotly", "streamlit", "scales_viz.figures")) for n in names)
