"""Run comparison maths and figures, on hand-built points tables (no browser)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scales_viz.errors import InputValueError
from scales_viz.figures.runs import (
    INVALID_LEGEND,
    PALETTE,
    PARETO_NAME,
    optimizer_colours,
    plot_best_curves,
    plot_realism_objective,
    plot_scales_along,
    plot_valid_share,
)
from scales_viz.lso.analysis import (
    BEST_COLUMNS,
    BEST_SUMMARY_COLUMNS,
    VALID_SHARE_COLUMNS,
    VALID_SHARE_SUMMARY_COLUMNS,
    best_so_far,
    pareto_front,
    summarise_best,
    summarise_valid_share,
    valid_share_per_step,
)
from scales_viz.lso.records import empty_points_frame

NAN = math.nan
#: run -> (optimizer, seed, [(objective, valid), ...] in step/index order); two points a step.
#: Invalid points have a NaN objective, except r_a1's third point: finite but invalid (ignored).
RUNS: dict[str, tuple[str, int, list[tuple[float, bool]]]] = {
    "r_a0": (
        "alpha",
        0,
        [(NAN, False), (1.0, True), (0.5, True), (3.0, True), (NAN, False), (2.0, True)],
    ),
    "r_a1": (
        "alpha",
        1,
        [(2.0, True), (NAN, False), (5.0, False), (1.0, True), (4.0, True), (NAN, False)],
    ),
    "r_a2": (
        "alpha",
        2,
        [(NAN, False), (NAN, False), (NAN, False), (0.0, True), (-1.0, True), (6.0, True)],
    ),
    "r_b0": (
        "beta",
        0,
        [(1.5, True), (1.5, True), (2.5, True), (NAN, False), (0.5, True), (7.0, True)],
    ),
    "r_b1": ("beta", 1, [(NAN, False), (3.0, True), (1.0, True), (NAN, False)]),
    "r_b2": (
        "beta",
        2,
        [(0.0, True), (NAN, False), (NAN, False), (NAN, False), (9.0, True), (1.0, True)],
    ),
}
#: Best valid objective so far, by hand.
BEST = {
    "r_a0": [NAN, 1, 1, 3, 3, 3],
    "r_a1": [2, 2, 2, 2, 4, 4],
    "r_a2": [NAN, NAN, NAN, 0, 0, 6],
    "r_b0": [1.5, 1.5, 2.5, 2.5, 2.5, 7],
    "r_b1": [NAN, 3, 3, 3],
    "r_b2": [0, 0, 0, 0, 9, 9],
}
#: Valid share per step, by hand.
SHARES = {
    "r_a0": [0.5, 1.0, 0.5],
    "r_a1": [0.5, 0.5, 0.5],
    "r_a2": [0.0, 0.5, 1.0],
    "r_b0": [1.0, 0.5, 1.0],
    "r_b1": [0.5, 0.5],
    "r_b2": [0.5, 0.0, 1.0],
}


def _points(shuffle: bool = True) -> pd.DataFrame:
    rows = []
    for run, (optimizer, seed, values) in RUNS.items():
        for k, (objective, valid) in enumerate(values):
            step, index = divmod(k, 2)
            rows.append(
                {
                    "run": run,
                    "optimizer": optimizer,
                    "seed": seed,
                    "step": step,
                    "index": index,
                    "z_0": 0.1 * k,
                    "z_1": -0.1 * k,
                    "objective": objective,
                    # ScaLES: distinct per point; one NaN to leave a gap.
                    "scales": NAN if (run, k) == ("r_b0", 3) else -(10 * seed + k) / 10,
                    "likelihood": -float(k),
                    "valid": valid,
                    "decoded": f"{run}-{k}",
                    "wall_time": float(step),
                }
            )
    frame = pd.DataFrame(rows)
    if shuffle:
        order = np.random.default_rng(7).permutation(len(frame))
        frame = frame.iloc[order].reset_index(drop=True)
    return frame


def _row(points: pd.DataFrame, run: str, step: int, index: int) -> pd.Series:
    hit = points[(points["run"] == run) & (points["step"] == step) & (points["index"] == index)]
    assert len(hit) == 1
    return hit.iloc[0]


def _trace(fig: go.Figure, name: str) -> go.BaseTraceType:
    (trace,) = [t for t in fig.data if t.name == name]
    return trace


# --------------------------------------------------------------------------------------------
# best so far
# --------------------------------------------------------------------------------------------


def test_best_so_far_is_the_hand_computed_cumulative_max_over_valid_points() -> None:
    best = best_so_far(_points())
    assert tuple(best.columns) == BEST_COLUMNS
    assert best["run"].tolist() == [r for r in RUNS for _ in RUNS[r][2]]
    for run, expected in BEST.items():
        part = best[best["run"] == run]
        assert part["evaluations"].tolist() == list(range(1, len(expected) + 1))
        np.testing.assert_array_equal(part["best"].to_numpy(), np.array(expected, dtype=float))
        assert set(part["optimizer"]) == {RUNS[run][0]} and set(part["seed"]) == {RUNS[run][1]}
        defined = part["best"].dropna().to_numpy()
        assert (np.diff(defined) >= 0).all()


def test_best_so_far_against_a_reference_on_random_tables() -> None:
    rng = np.random.default_rng(1)
    n = 200
    points = pd.DataFrame(
        {
            "run": rng.choice(["x", "y", "z"], n),
            "step": rng.integers(0, 10, n),
            "index": rng.permutation(n),
            "objective": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
            "valid": rng.random(n) < 0.7,
        }
    )
    points["optimizer"] = points["run"].map({"x": "o1", "y": "o1", "z": "o2"})
    points["seed"] = points["run"].map({"x": 0, "y": 1, "z": 0})
    best = best_so_far(points)
    for run, part in best.groupby("run"):
        raw = points[points["run"] == run].sort_values(["step", "index"])
        counted = raw["objective"].where(raw["valid"] & np.isfinite(raw["objective"]))
        expected, current = [], -np.inf
        for value in counted:
            if not np.isnan(value):
                current = max(current, value)
            expected.append(np.nan if current == -np.inf else current)
        np.testing.assert_array_equal(part["best"].to_numpy(), np.array(expected))


def test_best_so_far_rejects_a_run_with_two_optimizers() -> None:
    points = _points()
    points.loc[points["run"] == "r_a0", "optimizer"] = ["alpha", "beta"] * 3
    with pytest.raises(InputValueError, match="r_a0"):
        best_so_far(points)


def test_best_so_far_does_not_depend_on_row_order() -> None:
    pd.testing.assert_frame_equal(best_so_far(_points(True)), best_so_far(_points(False)))


# --------------------------------------------------------------------------------------------
# summaries
# --------------------------------------------------------------------------------------------


def _numpy_mean_sem(values: list[float]) -> tuple[float, float, int]:
    kept = np.array([v for v in values if not np.isnan(v)])
    if kept.size == 0:
        return NAN, NAN, 0
    sem = float(np.std(kept, ddof=1) / np.sqrt(kept.size)) if kept.size > 1 else NAN
    return float(np.mean(kept)), sem, int(kept.size)


def test_summarise_best_is_mean_and_sem_over_common_counts() -> None:
    summary = summarise_best(_points())
    assert tuple(summary.columns) == BEST_SUMMARY_COLUMNS
    assert summary["optimizer"].tolist() == ["alpha"] * 6 + ["beta"] * 4  # beta: shortest run 4
    assert (summary["runs"] == 3).all()
    for optimizer in ("alpha", "beta"):
        part = summary[summary["optimizer"] == optimizer]
        runs = [r for r in RUNS if RUNS[r][0] == optimizer]
        for _, row in part.iterrows():
            count = int(row["evaluations"])
            mean, sem, n = _numpy_mean_sem([BEST[r][count - 1] for r in runs])
            assert row["n"] == n
            np.testing.assert_allclose(row["mean"], mean, rtol=1e-12)
            np.testing.assert_allclose(row["sem"], sem, rtol=1e-12)  # NaN == NaN here
    alpha = summary[summary["optimizer"] == "alpha"]
    # By hand: count 1 -> only r_a1 valid (n=1, SEM NaN); count 2 -> [1, 2] -> 1.5 ± 0.5.
    assert alpha["n"].tolist() == [1, 2, 2, 3, 3, 3]
    assert alpha["mean"].iloc[0] == 2.0 and np.isnan(alpha["sem"].iloc[0])
    assert alpha["mean"].iloc[1] == 1.5 and alpha["sem"].iloc[1] == pytest.approx(0.5)


def test_summarise_best_grid_thins_the_counts_keeping_both_ends() -> None:
    summary = summarise_best(_points(), grid=3)
    assert summary[summary["optimizer"] == "alpha"]["evaluations"].tolist() == [1, 4, 6]
    assert summary[summary["optimizer"] == "beta"]["evaluations"].tolist() == [1, 3, 4]
    full = summarise_best(_points()).set_index(["optimizer", "evaluations"])
    thinned = summary.set_index(["optimizer", "evaluations"])
    pd.testing.assert_frame_equal(thinned, full.loc[thinned.index])
    last = summarise_best(_points(), grid=1)
    assert last["evaluations"].tolist() == [6, 4]
    with pytest.raises(InputValueError, match="grid"):
        summarise_best(_points(), grid=0)


def test_valid_share_per_step_and_its_summary() -> None:
    shares = valid_share_per_step(_points())
    assert tuple(shares.columns) == VALID_SHARE_COLUMNS
    for run, expected in SHARES.items():
        part = shares[shares["run"] == run]
        assert part["step"].tolist() == list(range(len(expected)))
        assert part["share"].tolist() == expected
        assert (part["proposals"] == 2).all()
    summary = summarise_valid_share(_points())
    assert tuple(summary.columns) == VALID_SHARE_SUMMARY_COLUMNS
    beta = summary[summary["optimizer"] == "beta"]
    assert beta["step"].tolist() == [0, 1, 2]
    assert beta["n"].tolist() == [3, 3, 2]  # r_b1 has no step 2: averaged over the others
    for optimizer in ("alpha", "beta"):
        part = summary[summary["optimizer"] == optimizer]
        runs = [r for r in RUNS if RUNS[r][0] == optimizer]
        for _, row in part.iterrows():
            values = [SHARES[r][row["step"]] for r in runs if row["step"] < len(SHARES[r])]
            mean, sem, n = _numpy_mean_sem(values)
            assert row["n"] == n and row["runs"] == 3
            np.testing.assert_allclose([row["mean"], row["sem"]], [mean, sem], rtol=1e-12)


def test_helpers_on_empty_tables() -> None:
    for table in (empty_points_frame(2), pd.DataFrame()):
        assert tuple(best_so_far(table).columns) == BEST_COLUMNS and best_so_far(table).empty
        assert tuple(summarise_best(table).columns) == BEST_SUMMARY_COLUMNS
        assert tuple(valid_share_per_step(table).columns) == VALID_SHARE_COLUMNS
        assert tuple(summarise_valid_share(table).columns) == VALID_SHARE_SUMMARY_COLUMNS
    assert pareto_front(np.zeros(0), np.zeros(0)).shape == (0,)


def test_points_frame_output_is_accepted() -> None:
    from scales_viz.lso.records import Step, points_frame

    step = Step(
        step=0,
        z=np.zeros((2, 3)),
        objective=np.array([1.0, np.nan]),
        valid=np.array([True, False]),
        decoded=["a", None],
        scales=np.array([0.1, 0.2]),
        likelihood=np.array([-1.0, -2.0]),
        wall_time=1.0,
    )
    points = points_frame([step], run="r", optimizer="o", seed=3)
    assert best_so_far(points)["best"].tolist() == [1.0, 1.0]
    assert valid_share_per_step(points)["share"].tolist() == [0.5]


# --------------------------------------------------------------------------------------------
# Pareto front
# --------------------------------------------------------------------------------------------


def _brute_force_front(r: np.ndarray, o: np.ndarray) -> set[int]:
    ok = [i for i in range(r.size) if not (np.isnan(r[i]) or np.isnan(o[i]))]
    front = set()
    for i in ok:
        dominated = any(
            r[j] >= r[i] and o[j] >= o[i] and (r[j] > r[i] or o[j] > o[i]) for j in ok if j != i
        )
        if not dominated:
            front.add(i)
    return front


def test_pareto_front_by_hand_with_ties() -> None:
    r = np.array([0.0, 1.0, 1.0, 2.0, 2.0, np.nan, 0.5, 3.0, 1.0])
    o = np.array([5.0, 4.0, 4.0, 1.0, 0.5, 9.0, 4.0, 1.0, 3.0])
    # 0: top objective; 1 and 2 equal (both kept); 3 dominated by 7 (same objective, more r);
    # 4 dominated by 3; 5 NaN; 6 dominated by 1; 7: most realistic; 8 dominated by 1.
    assert pareto_front(r, o).tolist() == [0, 1, 2, 7]
    assert pareto_front(np.array([1.0]), np.array([-np.inf])).tolist() == [0]
    with pytest.raises(InputValueError):
        pareto_front(np.zeros(3), np.zeros(2))


VALUES = st.sampled_from([np.nan, -np.inf, -1.0, 0.0, 0.5, 1.0, 2.0, np.inf])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(VALUES, VALUES), max_size=25))
def test_pareto_front_matches_brute_force(pairs: list[tuple[float, float]]) -> None:
    r = np.array([p[0] for p in pairs], dtype=float)
    o = np.array([p[1] for p in pairs], dtype=float)
    front = pareto_front(r, o)
    assert front.dtype == np.int64
    assert set(front.tolist()) == _brute_force_front(r, o)
    assert len(set(front.tolist())) == front.size
    keys = list(zip(r[front].tolist(), front.tolist(), strict=True))
    assert keys == sorted(keys)  # realism ascending, then index
    assert (o[front][1:] <= o[front][:-1]).all()  # so objective descends along the front


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(-5, 5), st.floats(-5, 5)), min_size=1, max_size=40))
def test_pareto_front_matches_brute_force_on_continuous_values(
    pairs: list[tuple[float, float]],
) -> None:
    r = np.array([p[0] for p in pairs])
    o = np.array([p[1] for p in pairs])
    assert set(pareto_front(r, o).tolist()) == _brute_force_front(r, o)


# --------------------------------------------------------------------------------------------
# Colours
# --------------------------------------------------------------------------------------------


def test_optimizer_colours_are_deterministic_by_sorted_name() -> None:
    colours = optimizer_colours(["beta", "alpha", "beta"])
    assert colours == {"alpha": PALETTE[0], "beta": PALETTE[1]}
    assert optimizer_colours(["alpha", "beta"]) == colours
    many = optimizer_colours([f"o{i:02d}" for i in range(12)])
    assert many["o10"] == PALETTE[0] and many["o11"] == PALETTE[1]


def _line_colours(fig: go.Figure, names: list[str]) -> dict[str, str]:
    return {n: _trace(fig, n).line.color or _trace(fig, n).marker.color for n in names}


def test_colours_are_the_same_in_all_four_figures() -> None:
    points = _points()
    expected = optimizer_colours(points["optimizer"])
    assert _line_colours(plot_best_curves(points), ["alpha", "beta"]) == expected
    assert _line_colours(plot_valid_share(points), ["alpha", "beta"]) == expected
    realism = plot_realism_objective(points)
    assert {n: _trace(realism, n).marker.color for n in ("alpha", "beta")} == expected
    along = plot_scales_along(points)
    for trace in along.data:
        if trace.name != INVALID_LEGEND:
            assert trace.line.color == expected[trace.legendgroup]
    # An app can pin the colours while filtering runs.
    only_beta = points[points["optimizer"] == "beta"]
    assert _trace(plot_best_curves(only_beta), "beta").line.color == PALETTE[0]
    pinned = plot_best_curves(only_beta, colours=expected)
    assert _trace(pinned, "beta").line.color == expected["beta"]


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def test_best_curves_figure() -> None:
    points = _points()
    fig = plot_best_curves(points, title="T")
    assert [t.name for t in fig.data] == ["alpha ±1 SEM", "alpha", "beta ±1 SEM", "beta"]
    assert fig.layout.title.text == "T"
    assert fig.layout.xaxis.title.text == "evaluations"
    assert fig.layout.yaxis.title.text == "best valid objective"
    summary = summarise_best(points)
    alpha = summary[summary["optimizer"] == "alpha"]
    line = _trace(fig, "alpha")
    np.testing.assert_array_equal(np.asarray(line.x), alpha["evaluations"].to_numpy())
    np.testing.assert_array_equal(np.asarray(line.y), alpha["mean"].to_numpy())
    assert np.asarray(line.customdata)[:, 0].tolist() == alpha["n"].tolist()
    assert "n = 1 of 3 runs" in line.text[0] and "n = 3 of 3 runs" in line.text[-1]
    assert "%{text}" in line.hovertemplate
    band = _trace(fig, "alpha ±1 SEM")
    assert band.fill == "toself" and band.showlegend is False and band.legendgroup == "alpha"
    mean, half = alpha["mean"].to_numpy(), np.nan_to_num(alpha["sem"].to_numpy())
    np.testing.assert_allclose(np.asarray(band.y), np.r_[mean + half, (mean - half)[::-1]])
    np.testing.assert_array_equal(np.asarray(band.x), np.r_[1:7, 6:0:-1])


def test_best_curves_skip_counts_before_any_valid_point_in_the_band() -> None:
    points = _points()
    points.loc[(points["run"] != "r_a2") & (points["optimizer"] == "alpha"), "valid"] = False
    fig = plot_best_curves(points)
    band = _trace(fig, "alpha ±1 SEM")
    assert np.asarray(band.x).tolist() == [4, 5, 6, 6, 5, 4]  # r_a2's first valid point: 4
    assert np.isnan(np.asarray(_trace(fig, "alpha").y)[:3]).all()


def test_valid_share_figure() -> None:
    points = _points()
    fig = plot_valid_share(points)
    assert [t.name for t in fig.data] == ["alpha ±1 SEM", "alpha", "beta ±1 SEM", "beta"]
    assert tuple(fig.layout.yaxis.range) == (0.0, 1.0) and fig.layout.yaxis.tickformat == ".0%"
    summary = summarise_valid_share(points)
    beta = summary[summary["optimizer"] == "beta"]
    np.testing.assert_array_equal(np.asarray(_trace(fig, "beta").y), beta["mean"].to_numpy())
    band_y = np.asarray(_trace(fig, "beta ±1 SEM").y)
    assert band_y.min() >= 0.0 and band_y.max() <= 1.0
    assert _trace(fig, "beta").mode == "lines+markers"
    assert "n = 2 of 3 runs" in _trace(fig, "beta").text[2]


def test_scales_along_figure() -> None:
    points = _points()
    fig = plot_scales_along(points, threshold=-0.25)
    names = [t.name for t in fig.data]
    assert names == [f"{RUNS[r][0]} (seed {RUNS[r][1]})" for r in RUNS] + [INVALID_LEGEND]
    trace = _trace(fig, "alpha (seed 0)")
    assert trace.mode == "lines+markers"
    assert list(trace.x) == [1, 2, 3, 4, 5, 6]
    symbols = list(trace.marker.symbol)
    assert symbols == ["x" if not v else "circle" for _, v in RUNS["r_a0"][2]]
    for (run, step, index), y in zip(trace.customdata.tolist(), trace.y, strict=True):
        assert _row(points, run, step, index)["scales"] == y
    assert np.isnan(np.asarray(_trace(fig, "beta (seed 0)").y)[3])  # the NaN gap
    (shape,) = fig.layout.shapes
    assert shape.y0 == shape.y1 == -0.25
    assert any("ScaLES threshold = -0.25" in a.text for a in fig.layout.annotations)
    assert len(plot_scales_along(points).layout.shapes) == 0


def test_scales_along_names_repeated_optimizer_and_seed_with_the_run_id() -> None:
    points = _points()
    points.loc[points["run"] == "r_a1", "seed"] = 0
    names = [t.name for t in plot_scales_along(points).data]
    assert "alpha (seed 0) [r_a0]" in names and "alpha (seed 0) [r_a1]" in names


def test_realism_objective_figure() -> None:
    points = _points()
    fig = plot_realism_objective(points)
    assert [t.name for t in fig.data] == ["alpha", "beta", PARETO_NAME]
    counted = points["valid"] & np.isfinite(points["objective"])
    drawn = counted & np.isfinite(points["scales"])
    invalid, unscored = int((~counted).sum()), int((counted & ~drawn).sum())
    assert (invalid, unscored) == (14, 0)  # r_b0's NaN ScaLES point is invalid
    assert f"({invalid} invalid not shown)" in fig.layout.title.text
    assert fig.layout.xaxis.title.text == "ScaLES" and fig.layout.yaxis.title.text == "objective"
    assert sum(len(t.x) for t in fig.data[:2]) == int(drawn.sum())
    for trace in fig.data:
        for (run, step, index), x, y in zip(
            trace.customdata.tolist(), trace.x, trace.y, strict=True
        ):
            row = _row(points, run, step, index)
            assert row["scales"] == x and row["objective"] == y and bool(row["valid"])
            if trace.name != PARETO_NAME:
                assert row["optimizer"] == trace.name
    front = _trace(fig, PARETO_NAME)
    assert front.line.shape == "vh"
    shown = points[drawn].reset_index(drop=True)
    expected = _brute_force_front(shown["scales"].to_numpy(), shown["objective"].to_numpy())
    assert sorted(zip(front.x, front.y, strict=True)) == sorted(
        (shown["scales"][i], shown["objective"][i]) for i in expected
    )
    assert isinstance(front, go.Scatter)
    sent = json.loads(fig.to_json())["data"][0]["customdata"]  # what a click hands back
    assert sent[0] == list(fig.data[0].customdata[0]) and isinstance(sent[0][1], int)


def test_realism_objective_with_likelihood_and_unscored_points() -> None:
    points = _points()
    points.loc[points["run"] == "r_b2", "likelihood"] = np.nan
    fig = plot_realism_objective(points, realism="likelihood")
    assert fig.layout.xaxis.title.text == "log p(argmax decoding)"
    assert "14 invalid, 3 without log p(argmax decoding) not shown" in fig.layout.title.text
    with pytest.raises(KeyError, match="qed"):
        plot_realism_objective(points, realism="qed")


def test_realism_objective_uses_webgl_for_many_points() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    points = pd.DataFrame(
        {
            "run": np.repeat(["a", "b"], n // 2),
            "optimizer": np.repeat(["o1", "o2"], n // 2),
            "seed": 0,
            "step": np.tile(np.arange(n // 2) // 10, 2),
            "index": np.tile(np.arange(n // 2) % 10, 2),
            "objective": rng.normal(size=n),
            "scales": rng.normal(size=n),
            "likelihood": rng.normal(size=n),
            "valid": True,
        }
    )
    fig = plot_realism_objective(points)
    assert all(isinstance(t, go.Scattergl) for t in fig.data)
    front = _trace(fig, PARETO_NAME)
    expected = pareto_front(points["scales"].to_numpy(), points["objective"].to_numpy())
    np.testing.assert_array_equal(np.asarray(front.x), points["scales"].to_numpy()[expected])
    assert all(isinstance(t, go.Scattergl) for t in plot_scales_along(points).data)


def _annotations(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


@pytest.mark.parametrize("table", [empty_points_frame(2), pd.DataFrame()])
def test_empty_input_gives_a_message_not_an_error(table: pd.DataFrame) -> None:
    for fig in (
        plot_best_curves(table),
        plot_valid_share(table),
        plot_scales_along(table, threshold=0.0),
        plot_realism_objective(table),
    ):
        assert len(fig.data) == 0
        assert _annotations(fig) == ["no runs selected"]


def test_no_valid_points_gives_a_message() -> None:
    points = _points().assign(valid=False)
    assert _annotations(plot_best_curves(points)) == ["no valid points"]
    fig = plot_realism_objective(points)
    assert _annotations(fig) == ["no valid points"] and "34 invalid" in fig.layout.title.text
    share = plot_valid_share(points)  # still meaningful: 0 % everywhere
    assert (np.asarray(_trace(share, "alpha").y) == 0.0).all()
    assert _annotations(plot_scales_along(points.assign(scales=np.nan))) == ["no ScaLES values"]


def test_scales_by_step_is_the_median_and_quartiles_per_optimizer_and_step() -> None:
    from scales_viz.figures.runs import plot_scales_by_step

    table = pd.DataFrame(
        {
            "optimizer": ["a"] * 6 + ["b"] * 2,
            "step": [0, 0, 0, 1, 1, 1, 0, 1],
            "scales": [1.0, 2.0, 9.0, 4.0, np.nan, 6.0, -1.0, -2.0],
        }
    )
    fig = plot_scales_by_step(table)
    median = {t.name: t for t in fig.data if t.mode == "lines+markers"}
    assert list(median) == ["a", "b"]
    assert list(median["a"].y) == [2.0, 5.0]  # NaN ignored
    band = next(t for t in fig.data if t.name == "a 25-75%")
    assert list(band.y) == [5.5, 5.5, 4.5, 1.5] and band.showlegend is False
    assert "no ScaLES values" in str(plot_scales_by_step(table.assign(scales=np.nan)).layout)
