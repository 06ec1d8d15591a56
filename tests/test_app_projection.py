"""Projection and Inspect under AppTest, and the linked selection between the views."""

from __future__ import annotations

import json

import pytest
from apptest import APP, TIMEOUT, clean
from streamlit.testing.v1 import AppTest


def _at(view: str, model: str = "digits-2d", **state: object) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["model_name"] = model
    at.session_state["slice_resolution"] = 17
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    at.switch_page(view)
    at.run()
    clean(at)
    return at


@pytest.mark.parametrize("model", ["digits-2d", "expressions"])
def test_projection_draws_the_shipped_map_coloured_by_each_score(model: str) -> None:
    at = _at("views/projection.py", model)
    assert at.title[0].value == f"Projection: {model}"
    colour = at.selectbox(key="projection_colour")
    assert {"ScaLES", "validity", "source"} <= set(colour.options)
    for option in colour.options:
        colour.set_value(option)
        at.run()
        clean(at)
        assert len(at.get("plotly_chart")) == 1


def test_lasso_on_projection_reaches_inspect_and_makes_a_slice() -> None:
    at = _at("views/projection.py")
    at.session_state["projection_picked"] = [3, 1, 1200, 700]  # as the lasso callback stores
    at.run()
    clean(at)
    assert any("4 point(s) selected" in s.value for s in at.success)
    state = at.session_state["selection"]
    assert state["source"] == "projection" and state["indices"] == [1, 3, 700, 1200]
    at.switch_page("views/inspect.py")
    at.run()
    clean(at)
    (table,) = at.dataframe
    frame = table.value
    assert len(frame) == 4
    assert {"label", "valid", "scales", "likelihood", "prior", "distance_to_data"} <= set(
        frame.columns
    )
    assert list(frame["label"]) == ["data #1", "data #3", "data #700", "prior #1200"]
    assert len(at.get("download_button")) == 2
    at.button(key="inspect_make_slice").click()
    at.run()
    clean(at)
    assert at.session_state["slice_plane"] == "through three points"
    assert at.session_state["slice_points"].count(";") == 2
    at.switch_page("views/slices.py")
    at.run()
    clean(at)
    assert at.title[0].value == "Slices: digits-2d"


def test_slice_clicks_are_the_selection_on_inspect() -> None:
    at = _at("views/slices.py", slice_picked_points=[(0.0, 0.0, []), (1.0, -1.0, [])])
    state = at.session_state["selection"]
    assert state["source"] == "slices" and len(state["z"]) == 2
    at.switch_page("views/inspect.py")
    at.run()
    clean(at)
    assert list(at.dataframe[0].value["label"]) == ["cell (8, 8)", "cell (5, 11)"]


def test_inspect_without_a_selection_says_how_to_make_one() -> None:
    at = _at("views/inspect.py")
    assert any("Nothing selected" in i.value for i in at.info)


def test_expressions_selection_plots_each_expression_against_the_target() -> None:
    at = _at("views/projection.py", "expressions", projection_picked=[0, 1])
    at.switch_page("views/inspect.py")
    at.run()
    clean(at)
    charts = at.get("plotly_chart")
    assert len(charts) == 3  # two expression fits and the realism-objective scatter
    assert json.loads(charts[0].proto.spec)["data"][0]["name"] == "target 1/3+x+sin(x*x)"


def test_a_slices_selection_is_drawn_on_the_projection_once_the_reducer_is_warm() -> None:
    import time

    at = _at("views/slices.py", slice_picked_points=[(0.0, 0.0, []), (1.0, -1.0, [])])
    at.switch_page("views/projection.py")
    at.run()
    clean(at)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        specs = [c.proto.spec for c in at.get("plotly_chart")]
        if any("selection (slices)" in spec for spec in specs):
            break
        assert any("will be drawn once" in i.value for i in at.info)
        time.sleep(5)
        at.run()
        clean(at)
    else:
        pytest.fail("the reducer was not warm within 240 s")
