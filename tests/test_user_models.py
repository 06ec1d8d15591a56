"""Registering models users bring (serve --model), and the paper checkpoints in every view."""

from __future__ import annotations

import json

import pytest
from apptest import clean, new_app

from scales_viz.cli import main
from scales_viz.errors import InputValueError
from scales_viz.models.paper import paper_dir
from scales_viz.models.registry import model_dir
from scales_viz.models.user import (
    USER_MODELS_ENV,
    load_user_model,
    parse_spec,
    user_models,
)

PAPER = paper_dir()
VIEWS = ["views/model.py", "views/slices.py", "views/projection.py", "views/optimizers.py"]


def test_specs_parse_into_kinds() -> None:
    paper = parse_spec(f"scales-paper:expressions_gru_1={PAPER}")
    assert (paper.name, paper.kind, paper.path) == (
        "scales-paper:expressions_gru_1",
        "paper",
        str(PAPER),
    )
    directory = parse_spec(str(model_dir("digits")))
    assert (directory.name, directory.kind) == ("digits", "directory")
    python = parse_spec("python:user_factory:digits_copy")
    assert (python.name, python.kind, python.target) == (
        "digits_copy",
        "python",
        "user_factory:digits_copy",
    )
    for bad in ("python:nomodule", "/no/such/folder", "python:pkg:not an identifier"):
        with pytest.raises(InputValueError):
            parse_spec(bad)


def test_environment_registration_and_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(USER_MODELS_ENV, json.dumps([str(model_dir("digits-2d"))]))
    (registered,) = user_models()
    model = load_user_model(registered)
    assert model.latent_dim == 2
    made = load_user_model(parse_spec("python:user_factory:digits_copy"))
    assert made.name == "my-digits"
    with pytest.raises(InputValueError, match="returned str"):
        load_user_model(parse_spec("python:user_factory:not_a_model"))
    monkeypatch.setenv(USER_MODELS_ENV, "not json")
    with pytest.raises(InputValueError, match="JSON list"):
        user_models()


def test_serve_refuses_a_bad_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--model", "/no/such/model"]) == 2
    assert "is neither a built-in model" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["directory", "manifest", "python"])
def test_every_command_takes_any_model_spec(  # type: ignore[no-untyped-def]
    kind: str, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    """optimize, runs import, map and evaluate load a model directory, a user manifest and a
    Python factory alike (the command line may run code)."""
    from test_user_manifest import _write

    if kind == "directory":
        spec, objective = str(model_dir("digits-2d")), "looks_like_7"
    elif kind == "manifest":
        spec, objective = str(_write(tmp_path)), "length"
    else:
        spec, objective = "python:user_factory:digits_copy", "looks_like_7"
    store = str(tmp_path / "runs.sqlite")
    common = ["--objective", objective, "--store", store]
    assert main(["optimize", spec, *common, "--optimizer", "random", "--budget", "4"]) == 0
    run_id = capsys.readouterr().out.split()[0]
    assert main(["runs", "--store", store, "export", run_id, "--out", str(tmp_path / "r.csv")]) == 0
    imported = ["runs", "--store", store, "import", str(tmp_path / "r.csv"), "--model", spec]
    assert main([*imported, "--objective", objective]) == 0
    assert "imported" in capsys.readouterr().out
    mapped = tmp_path / "map.npz"
    small = ["--n-data", "40", "--n-prior", "20", "--n-far", "20"]
    assert main(["map", spec, *small, "--out", str(mapped)]) == 0
    assert mapped.is_file()
    assert main(["evaluate", spec, "--group-size", "12", "--out", str(tmp_path / "card")]) == 0
    assert (tmp_path / "card" / "README.md").is_file()
    if kind != "directory":  # no folder of its own to write into: --out is required
        assert main(["map", spec, *small]) == 2
        assert "give --out" in capsys.readouterr().err


@pytest.mark.skipif(not (PAPER / "expressions_gru_1.pth").exists(), reason="no checkpoints")
@pytest.mark.parametrize("view", VIEWS)
def test_a_paper_checkpoint_works_in_every_view(
    view: str, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    monkeypatch.setenv(USER_MODELS_ENV, json.dumps([f"scales-paper:expressions_gru_1={PAPER}"]))
    monkeypatch.setenv("SCALES_VIZ_CACHE", str(tmp_path_factory.getbasetemp() / "maps"))
    at = new_app("scales-paper:expressions_gru_1", model_group_size=100, slice_resolution=17)
    at.run()
    picker = at.sidebar.selectbox(key="model_name")
    assert "scales-paper:expressions_gru_1" in picker.options
    at.switch_page(view)
    at.run()
    clean(at)
    assert at.title[0].value.endswith("scales-paper:expressions_gru_1")


def test_a_manifest_model_works_in_the_views(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from test_user_manifest import _write

    path = _write(tmp_path)
    monkeypatch.setenv(USER_MODELS_ENV, json.dumps([str(path)]))
    monkeypatch.setenv("SCALES_VIZ_CACHE", str(tmp_path / "maps"))
    at = new_app("my-vae", model_group_size=100, slice_resolution=17)
    at.run()
    assert "my-vae" in at.sidebar.selectbox(key="model_name").options
    for view in ("views/model.py", "views/slices.py", "views/projection.py"):
        at.switch_page(view)
        at.run()
        clean(at)
        assert at.title[0].value.endswith("my-vae")


def test_serve_reads_a_config_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from test_user_manifest import _write

    import scales_viz.cli as cli

    _write(tmp_path)
    config = tmp_path / "scales-viz.toml"
    config.write_text('models = ["model.toml", "scales-paper:expressions_gru_1"]\n')
    seen = {}
    monkeypatch.setattr(cli.subprocess, "call", lambda command, cwd=None: seen.setdefault("c", 0))
    monkeypatch.setenv(USER_MODELS_ENV, "")  # restored after the test; main() overwrites it
    assert main(["serve", "--config", str(config)]) == 0
    import os

    specs = json.loads(os.environ[USER_MODELS_ENV])
    assert specs == [str(tmp_path / "model.toml"), "scales-paper:expressions_gru_1"]
    config.write_text("models = 3\n")
    assert main(["serve", "--config", str(config)]) == 2
    config.write_text("models = []\nport = 1\n")
    assert main(["serve", "--config", str(config)]) == 2


def test_a_factory_model_goes_by_its_picker_name_in_the_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The factory names its model "my-digits"; the picker lists it as "digits_copy", and
    the views (titles, runs, caches) use that one name."""
    monkeypatch.setenv(USER_MODELS_ENV, json.dumps(["python:user_factory:digits_copy"]))
    at = new_app("digits_copy")
    at.switch_page("views/optimizers.py")
    at.run()
    clean(at)
    assert at.title[0].value == "Optimisers: digits_copy"
