"""The paper-comparison report: metrics from hand-built runs, the verdict, and a tiny real run."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from scales_viz.lso.reproduce import (
    Method,
    ReproduceConfig,
    per_run_metrics,
    reproduce,
    summarise,
    verdict,
    write_report,
)
from scales_viz.models import load_model


def _points(optimizer: str, seed: int, steps: list[list[tuple[float, bool]]]) -> pd.DataFrame:
    rows = []
    for step, points in enumerate(steps):
        for index, (value, valid) in enumerate(points):
            rows.append(
                {
                    "run": f"{optimizer}/{seed}",
                    "optimizer": optimizer,
                    "seed": seed,
                    "step": step,
                    "index": index,
                    "z_0": 0.0,
                    "objective": value if valid else math.nan,
                    "scales": float(step),
                    "likelihood": 0.0,
                    "valid": valid,
                    "decoded": "x",
                    "wall_time": float(step),
                }
            )
    return pd.DataFrame(rows)


def test_metrics_count_proposals_only_and_summarise_over_seeds() -> None:
    initial = [(9.0, True), (8.0, True)]  # step 0 is the shared initial design: not counted
    a0 = _points("a", 0, [initial, [(1.0, True), (0.0, False)], [(3.0, True), (2.0, True)]])
    a1 = _points("a", 1, [initial, [(5.0, True), (0.0, False)], [(0.0, False), (0.0, False)]])
    points = pd.concat([a0, a1], ignore_index=True)
    runs = per_run_metrics(points, top=2).set_index("run")
    assert runs.loc["a/0", "best"] == 3.0
    assert runs.loc["a/0", "top_mean"] == 2.5
    assert runs.loc["a/0", "valid_pct"] == 75.0
    assert runs.loc["a/0", "best_overall"] == 9.0
    assert runs.loc["a/1", "best"] == 5.0
    assert math.isnan(runs.loc["a/1", "top_mean"])  # fewer than top=2 valid proposals
    assert runs.loc["a/1", "valid_pct"] == 25.0
    assert runs.loc["a/0", "scales_mean"] == pytest.approx(1.5)
    summary = summarise(points, top=2).set_index("method")
    assert summary.loc["a", "best_mean"] == 4.0
    assert summary.loc["a", "best_sem"] == pytest.approx(np.std([3.0, 5.0], ddof=1) / np.sqrt(2))
    assert summary.loc["a", "valid_pct_mean"] == 50.0
    assert summary.loc["a", "top_mean_n"] == 1  # one seed has a top-2 mean


def _summary(valid: tuple[float, float], best: tuple[float, float]) -> pd.DataFrame:
    rows = []
    for method, v, b in (("gp-ascent", valid[0], best[0]), ("gp-ascent+scales", valid[1], best[1])):
        rows.append(
            {
                "method": method,
                "valid_pct_mean": v,
                "valid_pct_sem": 1.0,
                "best_mean": b,
                "best_sem": 0.01,
                "top_mean_mean": b - 0.5,
                "top_mean_sem": 0.01,
            }
        )
    return pd.DataFrame(rows)


def test_verdict_says_what_the_numbers_say() -> None:
    assert "raised validity without losing objective" in verdict(
        _summary((40.0, 70.0), (-0.5, -0.5))
    )
    assert "raised validity but lost objective" in verdict(_summary((40.0, 70.0), (-0.5, -0.9)))
    assert "did not measurably raise validity; nor did it lose" in verdict(
        _summary((40.0, 41.0), (-0.5, -0.5))
    )
    assert "did not measurably raise validity and lost" in verdict(
        _summary((40.0, 30.0), (-0.5, -0.9))
    )


def test_tiny_real_comparison_writes_a_report(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = load_model("digits-2d")
    config = ReproduceConfig(seeds=2, rounds=2, batch_size=3, n_initial=4, top=2)
    methods = (Method("gp-ascent"), Method("gp-ascent", "scales"), Method("lbfgs"))
    points = reproduce(model, objective="looks_like_7", config=config, methods=methods)
    assert set(points["run"]) == {f"{m.label}/{s}" for m in methods for s in (0, 1)}
    assert len(points) == 2 * 3 * config.budget
    # every method starts from the same initial design for a seed
    first = points[(points["step"] == 0) & (points["seed"] == 0)]
    assert first.groupby("optimizer")["z_0"].apply(tuple).nunique() == 1
    path = write_report(
        points,
        model=model,
        objective="looks_like_7",
        config=config,
        out=tmp_path,
        seconds=1.0,
        command="scales-viz reproduce digits-2d",
    )
    text = path.read_text()
    assert "| `gp-ascent+scales` |" in text and "## Verdict" in text
    assert (tmp_path / "results-runs.parquet").exists()
    back = pd.read_parquet(tmp_path / "results-runs.parquet")
    assert len(back) == len(points)
