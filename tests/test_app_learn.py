"""The Learn walk-through under AppTest: every step, and a student's runs on the plane."""

from __future__ import annotations

import pytest
from apptest import clean, new_app

from scales_viz.lso import teaching

STEPS = (
    "1. A plane through latent space",
    "2. The ScaLES field and the validity map",
    "3. Optimisers with and without a penalty",
    "4. Over 20 starts",
    "5. How to read the views",
)


def test_every_step_renders() -> None:
    at = new_app("digits-2d")  # the walk uses the flagship whatever the sidebar says
    at.run()
    at.switch_page("views/learn.py")
    at.run()
    clean(at)
    assert at.title[0].value == "Learn: exploring a latent space"
    assert "expressions" in at.caption[0].value
    assert len(at.get("plotly_chart")) == 1  # the validity map of the plane
    for step in STEPS[1:]:
        at.radio(key="learn_step").set_value(step)
        at.run()
        clean(at)
    at.radio(key="learn_step").set_value(STEPS[1])
    at.run()
    assert len(at.get("plotly_chart")) == 2
    assert any("AUROC" in i.value for i in at.info)


def test_the_runs_respond_to_the_student(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(teaching, "EVALUATIONS", 10)
    at = new_app(learn_step=STEPS[2])
    at.run()
    at.switch_page("views/learn.py")
    at.run()
    clean(at)
    assert not at.table  # nothing runs until asked
    at.selectbox(key="learn_start_choice").set_value(
        at.selectbox(key="learn_start_choice").options[2]
    )
    at.selectbox(key="learn_penalty").set_value("prior")
    at.slider(key="learn_alpha").set_value(1.0)
    at.button(key="learn_run").click()
    at.run()
    clean(at)
    table = at.table[0].value
    assert list(table.columns) == ["no penalty", "prior penalty (alpha 1)"]
    assert "valid proposals" in table.index
    at.slider(key="learn_round").set_value(0)
    at.run()
    clean(at)
    assert any("round 0" in m.value for m in at.markdown)
