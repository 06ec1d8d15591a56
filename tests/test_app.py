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


def test_the_first_screen_orients_a_new_user() -> None:
    at = _app("expressions")
    at.run()
    clean(at)
    assert at.title[0].value.startswith("scales-viz")
    text = " ".join(m.value for m in at.markdown)
    assert "high ScaLES marks a region where the decoder's outputs are realistic" in text
    links = [link.proto.label for link in at.get("page_link")]
    assert {"Open Learn", "Open Optimisers", "Model", "Slices", "Learn"} <= set(links)


def test_the_toolbar_hides_the_deploy_chrome() -> None:
    import tomllib
    from apptest import REPO

    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["client"]["toolbarMode"] == "minimal"


def test_model_view_shows_card_facts_samples_and_aurocs() -> None:
    at = _app()
    at.run()
    at.switch_page("views/model.py")
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
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)  # nothing picked yet
    at.run()
    picker = at.sidebar.selectbox(key="model_name")
    assert picker.options == ["expressions", "expressions-ar", "molecules", "digits-2d", "digits"]
    assert picker.value == "expressions"  # the flagship is the default
    assert at.sidebar.selectbox(key="device_choice").value == "auto"
    assert any("Computing on" in c.value for c in at.sidebar.caption)


def test_switching_model_in_the_sidebar_reloads_the_view() -> None:
    at = _app()
    at.run()
    at.switch_page("views/model.py")
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


def test_a_clicked_cell_opens_the_decode_panel() -> None:
    at = _slices(slice_picked_points=[(0.0, 0.0, [8, 8])])
    clean(at)
    assert "Decoded cell" in [h.value for h in at.subheader]
    (table,) = at.table
    assert "(8, 8)" in table.value.to_string()


def test_box_selection_lists_the_cells() -> None:
    axis = [-3.0, -2.625]
    at = _slices(
        slice_picked_points=[(axis[0], axis[0], []), (axis[1], axis[0], []), (axis[0], axis[1], [])]
    )
    clean(at)
    assert "3 selected cells" in [h.value for h in at.subheader]
    (cells,) = at.dataframe
    assert len(cells.value) == 3 and {"row", "col", "scales", "valid"} <= set(cells.value.columns)


def test_picks_belong_to_their_model_and_grid() -> None:
    at = _slices(slice_picked_points=[(0.0, 0.0, [8, 8])])
    assert "Decoded cell" in [h.value for h in at.subheader]
    at.sidebar.selectbox(key="model_name").set_value("digits").run()
    clean(at)
    assert "Decoded cell" not in [h.value for h in at.subheader]  # nothing the user never clicked
    at.sidebar.selectbox(key="model_name").set_value("digits-2d").run()
    at.session_state["slice_resolution"] = 33
    at.run()
    clean(at)
    assert "Decoded cell" not in [h.value for h in at.subheader]


def _run(name: str, model: str, z: list[list[float]]) -> dict[str, object]:
    return {
        "name": name,
        "model": model,
        "z": z,
        "best": 1,
        "steps": len(z),
        "step": list(range(len(z))),
        "objective": [0.1, 0.9, 0.5][: len(z)],
        "valid": [True] * len(z),
        "scales": [1.0, 2.0, 3.0][: len(z)],
    }


def test_clicking_a_run_point_decodes_its_stored_latent_not_the_cell() -> None:
    z = [[0.1, 0.2], [1.234, -0.5], [2.0, 2.0]]
    runs = [_run("mine", "digits-2d", z), _run("elsewhere", "expressions", [[0.0] * 25] * 3)]
    # Overlay 0 is the data latents near the plane; the run is overlay 1 (customdata -2).
    at = _slices(trajectories=runs, slice_picked_points=[(1.23, -0.5, [-2, 1])])
    clean(at)
    assert "Decoded point" in [h.value for h in at.subheader]
    (table,) = at.table
    assert "mine: step 1: objective 0.9, valid, ScaLES 2" in table.value.to_string()
    assert at.session_state["selection"]["z"][0] == [1.234, -0.5]
    # Only this model's runs are offered for "through a run".
    assert at.selectbox(key="slice_run").options == ["mine"]


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


def test_a_long_grid_says_how_long_and_waits_for_a_click() -> None:
    at = _app("molecules")
    at.session_state["slice_resolution"] = 129
    at.run()
    at.switch_page("views/slices.py")
    at.run()
    clean(at)
    (note,) = [i.value for i in at.info if "will take about" in i.value]
    assert "129x129 grid (16,641 latents)" in note and "ms per latent" in note
    assert not at.get("plotly_chart")  # nothing computed yet
    assert [b.label for b in at.button if b.key == "slice_go"] == ["Compute it"]


def test_model_view_compares_decoder_families_and_says_when_scales_is_weak() -> None:
    at = _app("expressions")
    at.run()
    at.switch_page("views/model.py")
    at.run()
    clean(at)
    assert any("does not separate valid from invalid" in w.value for w in at.warning)
    assert "Decoder families: does ScaLES apply to my decoder?" in [h.value for h in at.subheader]
    (table,) = [d.value for d in at.dataframe if "decoder" in getattr(d.value, "columns", [])]
    assert list(table.index) == ["expressions", "expressions-ar"]
    assert table.loc["expressions-ar", "decoder"].startswith("autoregressive")


def test_model_view_shows_decodings_near_the_data_when_the_prior_decodes_invalid() -> None:
    at = _app("molecules")
    at.run()
    at.switch_page("views/model.py")
    at.run()
    clean(at)
    (caption,) = [c.value for c in at.caption if "valid (argmax / mean decoding)" in c.value]
    assert int(caption.split()[0]) <= 3  # 2% of its prior decodes valid (card)
    assert any("Few prior samples of this model decode valid" in i.value for i in at.info)
    at.radio(key="model_decode_source").set_value("near the data")
    at.run()
    clean(at)
    (caption,) = [c.value for c in at.caption if "valid (argmax / mean decoding)" in c.value]
    assert int(caption.split()[0]) >= 8  # ~89% at a spread of 0.1
    assert not any("Few prior samples" in i.value for i in at.info)


def test_slices_open_through_data_on_a_model_whose_prior_decodes_invalid() -> None:
    at = _app("molecules")
    at.session_state["slice_resolution"] = 17
    at.run()
    at.switch_page("views/slices.py")
    at.run()
    clean(at)
    assert at.selectbox(key="slice_plane").value == "through three points"
    at = _slices()  # digits-2d: most of its prior decodes valid
    assert at.selectbox(key="slice_plane").value == "random"


def test_cancel_is_offered_only_while_a_grid_computes() -> None:
    at = _slices()  # this run computed the grid
    clean(at)
    assert len(at.get("plotly_chart")) == 1
    assert "Cancel" not in [b.label for b in at.button]
