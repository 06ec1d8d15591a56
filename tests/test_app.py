"""The Streamlit app, run headless with AppTest on the built-in digits-2d model."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from scales_viz.models import load_model

REPO = Path(__file__).resolve().parents[1]
# AppTest resolves a relative path against the calling file, so pass the app's full path.
APP = str(REPO / "app.py")
TIMEOUT = 60
EDITOR_KEY = "points"


def _run(edits: dict[str, object] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if edits is not None:
        at.session_state[EDITOR_KEY] = {
            "edited_rows": {},
            "added_rows": [],
            "deleted_rows": [],
            **edits,
        }
    return at.run()


def _results(at: AppTest) -> list[pd.DataFrame]:
    return [df.value for df in at.dataframe if df.editing_mode == "read_only"]


def test_app_runs_and_shows_finite_scales() -> None:
    at = _run()
    assert not at.exception
    assert not at.error
    (table,) = _results(at)
    assert len(table) == 6
    assert np.isfinite(table["ScaLES"].to_numpy(dtype=float)).all()
    assert np.isfinite(table["log p(argmax decode)"].to_numpy(dtype=float)).all()
    assert len(at.get("image")) == 1


def test_app_prior_column_matches_formula() -> None:
    (table,) = _results(_run())
    expected = -0.5 * table["|z|"] ** 2 - math.log(2 * math.pi)
    np.testing.assert_allclose(table["log N(z; 0, I)"], expected, rtol=1e-12)


def test_app_metrics_come_from_the_manifest() -> None:
    at = _run()
    held = load_model("digits-2d").manifest["metrics"]["held_out"]
    shown = {metric.label: metric.value for metric in at.metric}
    assert shown["Held-out ELBO"] == f"{held['elbo']:.2f}"
    assert shown["Held-out reconstruction BCE"] == f"{held['bce']:.2f}"


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        ({"edited_rows": {0: {"z1": None}}}, "row(s) 1 hold"),
        ({"edited_rows": {2: {"z2": "abc"}}}, "row(s) 3 hold"),
        ({"added_rows": [{"z1": 1.0}]}, "row(s) 7 hold"),
        ({"deleted_rows": [0, 1, 2, 3, 4, 5]}, "table is empty"),
    ],
)
def test_bad_table_input_shows_error(edits: dict[str, object], message: str) -> None:
    at = _run(edits)
    assert not at.exception
    assert len(at.error) == 1
    assert message in at.error[0].value
    assert not _results(at)
