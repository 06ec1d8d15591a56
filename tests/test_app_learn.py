"""The Learn walk-through under AppTest: every step, and a student's changes."""

from __future__ import annotations

import pytest
from apptest import clean, new_app

from scales_viz.errors import InputValueError
from scales_viz.lso.teaching import chase
from scales_viz.models import load_model

STEPS = (
    "1. What a latent space is",
    "2. The ScaLES field and the validity map",
    "3. An optimiser chasing a digit",
    "4. How to read the views",
)


def test_every_step_renders() -> None:
    at = new_app("expressions")  # the walk-through uses digits-2d whatever the sidebar says
    at.run()
    at.switch_page("views/learn.py")
    at.run()
    clean(at)
    assert at.title[0].value == "Learn: exploring a latent space"
    assert len(at.get("image")) == 1  # the mosaic
    for step in STEPS[1:]:
        at.radio(key="learn_step").set_value(step)
        at.run()
        clean(at)
    at.radio(key="learn_step").set_value(STEPS[1])
    at.run()
    assert len(at.get("plotly_chart")) == 2
    assert any("AUROC" in i.value for i in at.info)


def test_the_chase_responds_to_the_student() -> None:
    at = new_app(learn_step=STEPS[2])
    at.run()
    at.switch_page("views/learn.py")
    at.run()
    clean(at)
    table = at.table[0].value
    assert list(table.columns) == ["no penalty", "scales penalty (alpha 0.5)"]
    at.selectbox(key="learn_digit").set_value(3)
    at.selectbox(key="learn_penalty").set_value("prior")
    at.slider(key="learn_alpha").set_value(1.0)
    at.slider(key="learn_start_a").set_value(0.0)
    at.run()
    clean(at)
    table = at.table[0].value
    assert list(table.columns) == ["no penalty", "prior penalty (alpha 1)"]
    assert "p(looks like 3) at the end" in table.index
    at.slider(key="learn_step_slider").set_value(0)
    at.run()
    clean(at)
    assert any("step 0" in m.value for m in at.markdown)


def test_chase_runs_both_paths_from_the_same_start() -> None:
    model = load_model("digits-2d")
    found = chase(model, 7, (0.5, -0.5), penalty="scales", alpha=0.5, steps=12)
    for result in (found.plain, found.penalised):
        assert len(result.steps) == 12
        assert tuple(result.steps[0].z[0]) == (0.5, -0.5)
    assert found.summaries[0].label == "no penalty"
    with pytest.raises(InputValueError, match="2-D"):
        chase(load_model("digits"), 7, (0.0, 0.0))
    with pytest.raises(InputValueError, match="choose a penalty"):
        chase(model, 7, (0.0, 0.0), penalty="none")
