"""The dashboard under AppTest: every view on every built-in model, widgets by key."""

from __future__ import annotations

import pytest
from apptest import APP, TIMEOUT, clean
from streamlit.testing.v1 import AppTest

from scales_viz.models import list_models

MODELS = [info.name for info in list_models() if info.available]
VIEWS = [
    "views/model.py",
    "views/slices.py",
    "views/projection.py",
    "views/optimizers.py",
    "views/inspect.py",
]


def _app(model: str = "digits-2d") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["model_name"] = model
    # Small, fast settings; the defaults are exercised by the digits-2d runs.
    at.session_state["model_group_size"] = 100
    return at


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("view", VIEWS)
def test_every_view_runs_on_every_builtin_model(model: str, view: str) -> None:
    at = _app(model)
    at.session_state["slice_resolution"] = 17
    at.run()
    at.switch_page(view)
    at.run()
    clean(at)
    assert at.title[0].value.endswith(model)


def test_model_view_shows_card_facts_samples_and_aurocs() -> None:
    at = _app()
    at.run()
    clean(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Latent dimension"] == "2"
    assert {"AUROC scales", "AUROC likelihood", "AUROC prior", "AUROC distance_to_data"} <= set(
        metrics
    )
    assert len(at.get("plotly_chart")) == 1
    assert any("valid" in c.value for c in at.caption)


def test_sidebar_lists_the_builtins_and_the_device() -> None:
    at = _app()
    at.run()
    picker = at.sidebar.selectbox(key="model_name")
    assert picker.options == ["digits-2d", "digits", "expressions", "molecules"]
    assert at.sidebar.selectbox(key="device_choice").value == "auto"
    assert any("Computing on" in c.value for c in at.sidebar.caption)


def test_switching_model_in_the_sidebar_reloads_the_view() -> None:
    at = _app()
    at.run()
    at.sidebar.selectbox(key="model_name").set_value("digits").run()
    clean(at)
    assert at.title[0].value == "Model: digits"


def _slices(**state: object) -> AppTest:
    at = _app()
    at.session_state["slice_resolution"] = 17
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    at.switch_page("views/slices.py")
    return at.run()


def test_slices_view_draws_the_heatmap_and_the_mosaic() -> None:
    at = _slices()
    clean(at)
    assert len(at.get("plotly_chart")) == 1
    assert any("Decoded images over the plane" in str(img.proto) for img in at.get("image"))


def test_injected_selection_opens_the_decode_panel() -> None:
    at = _slices(slice_selection=[(8, 8)])
    clean(at)
    assert "Decoded cell" in [h.value for h in at.subheader]
    (table,) = at.table
    assert "(8, 8)" in table.value.to_string()


def test_box_selection_lists_the_cells() -> None:
    at = _slices(slice_selection=[(0, 0), (0, 1), (1, 0)])
    clean(at)
    assert "3 selected cells" in [h.value for h in at.subheader]
    (cells,) = at.dataframe
    assert len(cells.value) == 3 and {"row", "col", "scales", "valid"} <= set(cells.value.columns)


def test_a_bad_typed_origin_is_an_error_message_not_a_crash() -> None:
    at = _slices(slice_origin="1, 2, 3")
    assert not at.exception
    assert "needs 2 finite numbers" in at.error[0].value


def test_plane_through_collinear_points_is_explained() -> None:
    at = _slices(slice_plane="through three points", slice_points="zero; 1, 1; 2, 2")
    assert not at.exception
    assert "collinear" in at.error[0].value


def test_static_export_prepares_png_and_svg() -> None:
    at = _slices()
    at.button(key="slice_prepare_images").click().run()
    clean(at)
    assert at.session_state["slice_png"][:4] == b"\x89PNG"
    assert b"<svg" in at.session_state["slice_svg"][:200]
    labels = [b.label for b in at.get("download_button")]
    assert {"Grid CSV", "Grid NPZ", "Figure HTML", "Figure PNG", "Figure SVG"} <= set(labels)
