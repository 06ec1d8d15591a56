"""The Optimisers view under AppTest: launch short runs, compare, manage, send to Slices."""

from __future__ import annotations

import os

from apptest import APP, TIMEOUT, clean
from streamlit.testing.v1 import AppTest

from scales_viz.lso.store import STORE_ENV, RunStore


def _launched(optimizer: str = "random", seeds: str = "0, 1", **extra: object) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["model_name"] = "digits-2d"
    at.run()
    at.switch_page("views/optimizers.py")
    at.run()
    clean(at)
    at.selectbox(key="opt_objective").set_value("looks_like_7")
    at.selectbox(key="opt_optimizer").set_value(optimizer)
    at.number_input(key="opt_budget").set_value(12)
    at.number_input(key="opt_batch").set_value(4)
    at.number_input(key="opt_initial").set_value(4)
    at.text_input(key="opt_seeds").set_value(seeds)
    for key, value in extra.items():
        at.session_state[key] = value
    next(b for b in at.button if b.label == "Launch").click()
    at.run()
    clean(at)
    return at


def test_launch_records_every_seed_and_compares_them() -> None:
    at = _launched()
    store = RunStore(os.environ[STORE_ENV])
    runs = store.runs(model="digits-2d")
    assert sorted(r.seed for r in runs) == [0, 1]
    assert {r.status for r in runs} == {"completed"}
    assert {r.optimizer for r in runs} == {"random"}
    points = store.points([r.id for r in runs])
    assert len(points) == 24
    assert sorted(at.multiselect(key="opt_selected_runs").value) == sorted(r.id for r in runs)
    assert any("Finished 2 run(s)" in s.value for s in at.success)
    # four comparison figures (best so far, valid share, ScaLES along, realism vs objective)
    assert len(at.get("plotly_chart")) == 4
    assert any("Best valid objective over the selection" in c.value for c in at.caption)


def test_penalised_gp_run_and_send_to_slices() -> None:
    at = _launched("gp-ascent", seeds="3", opt_penalty="scales")
    (run,) = RunStore(os.environ[STORE_ENV]).runs(model="digits-2d")
    assert run.optimizer == "gp-ascent+scales" and run.settings["penalty"] == "scales"
    at.session_state["slice_resolution"] = 17
    next(b for b in at.button if b.label == "Show on Slices").click()
    at.run()
    clean(at)
    # The button opens Slices on the plane through the run: no manual steps.
    assert at.title[0].value == "Slices: digits-2d"
    (sent,) = at.session_state["trajectories"]
    assert sent["name"] == run.name and sent["model"] == "digits-2d"
    assert len(sent["z"]) == sent["steps"] == 3  # one point per step: initial + 2 rounds
    assert at.session_state["slice_plane"] == "through a run"
    assert at.session_state["slice_run"] == run.name
    (chart,) = [c for c in at.get("plotly_chart") if "start" in c.proto.spec]
    assert f"{run.name} start" in chart.proto.spec
    assert "through three points" in chart.proto.spec  # the plane through the run


def test_a_second_launch_adds_to_the_comparison() -> None:
    at = _launched(seeds="0")
    first = list(at.multiselect(key="opt_selected_runs").value)
    at.text_input(key="opt_seeds").set_value("5")
    next(b for b in at.button if b.label == "Launch").click()
    at.run()
    clean(at)
    chosen = at.multiselect(key="opt_selected_runs").value
    assert len(chosen) == 2 and chosen[0] == first[0]


def test_rename_and_delete_runs() -> None:
    at = _launched(seeds="0, 1")
    store = RunStore(os.environ[STORE_ENV])
    first, second = store.runs(model="digits-2d")
    at.selectbox(key="opt_target").set_value(first.id)
    at.text_input(key="opt_new_name").set_value("my favourite run")
    at.button(key="opt_rename").click()
    at.run()
    clean(at)
    assert store.run(first.id).name == "my favourite run"
    at.selectbox(key="opt_target").set_value(second.id)
    at.checkbox(key="opt_confirm_delete").check()
    at.run()
    at.button(key="opt_delete").click()
    at.run()
    clean(at)
    assert [r.id for r in store.runs(model="digits-2d")] == [first.id]
    assert at.multiselect(key="opt_selected_runs").value == [first.id]


def test_bad_seeds_are_reported_not_raised() -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["model_name"] = "digits-2d"
    at.run()
    at.switch_page("views/optimizers.py")
    at.run()
    at.text_input(key="opt_seeds").set_value("zero")
    next(b for b in at.button if b.label == "Launch").click()
    at.run()
    assert not at.exception
    assert any("seeds must be integers" in e.value for e in at.error)


def test_a_launch_replayed_after_an_interrupting_rerun_leaves_no_stray_stopped_run(
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    """A rerun that interrupts a launch makes Streamlit replay the Launch click: the launch
    starts again. Before the fix the interrupted copy stayed as an extra 'stopped' run
    (3 runs listed for 2 seeds launched)."""
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException

    import scales_viz.lso.recorded as recorded

    real_run = recorded.run
    interrupted: list[bool] = []

    def interrupted_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not interrupted:
            callback = kwargs["callback"]

            def stop_after_first(step):  # type: ignore[no-untyped-def]
                callback(step)
                interrupted.append(True)
                raise StopException  # what a rerun request does to the running script

            kwargs["callback"] = stop_after_first
        return real_run(*args, **kwargs)

    monkeypatch.setattr(recorded, "run", interrupted_once)
    at = _launched()  # interrupted in seed 0's first step
    store = RunStore(os.environ[STORE_ENV])
    (stopped,) = store.runs(model="digits-2d")
    assert stopped.status == "stopped"
    next(b for b in at.button if b.label == "Launch").click()  # Streamlit's replay
    at.run()
    clean(at)
    runs = store.runs(model="digits-2d")
    assert sorted(r.seed for r in runs) == [0, 1]
    assert {r.status for r in runs} == {"completed"}
