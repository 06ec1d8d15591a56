"""Security: loopback binding, XSRF, upload caps, no code loaders from the page, no escapes.

The XSRF check against a live server is in ``tests/test_browser.py`` (it needs the server).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tomllib
from apptest import new_app

from scales_viz.errors import InputValueError
from scales_viz.lso.io import MAX_IMPORT_BYTES
from scales_viz.models import DEFAULT_MODEL
from scales_viz.paths import child_path, safe_file_name

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "scales_viz_app"
CONFIG = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())


def test_the_server_binds_loopback_with_xsrf_on_and_capped_uploads() -> None:
    server = CONFIG["server"]
    assert server["address"] == "127.0.0.1"
    assert server["enableXsrfProtection"] is True
    assert server["maxUploadSize"] * 2**20 == MAX_IMPORT_BYTES
    assert server.get("enableCORS", True) is True  # CORS protection left on
    makefile = (REPO / "Makefile").read_text()
    assert "--server.address 127.0.0.1" in makefile


def test_serve_binds_loopback_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    import scales_viz.cli as cli

    commands: list[list[str]] = []
    monkeypatch.setattr(cli.subprocess, "call", lambda command, **_: commands.append(command) or 0)
    assert cli.main(["serve"]) == 0
    assert cli.main(["serve", "--host", "0.0.0.0"]) == 0
    first, second = commands
    assert first[first.index("--server.address") + 1] == "127.0.0.1"
    assert second[second.index("--server.address") + 1] == "0.0.0.0"


# --------------------------------------------------------------------------------------------
# Code-executing loaders are unreachable from the page
# --------------------------------------------------------------------------------------------

CODE_LOADERS = {
    "load_model",
    "parse_spec",
    "load_user_model",
    "load_user_manifest",
    "load_paper_model",
    "import_module",
    "__import__",
    "exec",
    "eval",
    "torch.jit.load",
    "torch.export.load",
    "pickle.loads",
    "pickle.load",
}


def _calls(path: Path) -> set[str]:
    """Names of everything called in a Python file (``a.b.c(...)`` gives ``a.b.c`` and ``c``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            parts = []
            target: Any = node.func
            while isinstance(target, ast.Attribute):
                parts.append(target.attr)
                target = target.value
            if isinstance(target, ast.Name):
                parts.append(target.id)
            dotted = ".".join(reversed(parts))
            names |= {dotted, parts[0]} if parts else set()
    return names


@pytest.mark.parametrize(
    "path",
    [REPO / "app.py", APP_DIR / "app.py", *sorted((APP_DIR / "views").glob("*.py"))],
    ids=lambda p: p.name,
)
def test_pages_call_no_code_loader(path: Path) -> None:
    assert not _calls(path) & CODE_LOADERS


def test_only_the_state_module_loads_registered_models() -> None:
    """``ui/state.py`` loads models registered at server start (command line or env)."""
    ui_calls = {p.name: _calls(p) & CODE_LOADERS for p in (APP_DIR / "ui").glob("*.py")}
    assert ui_calls.pop("state.py") == {"load_user_model"}
    assert not any(ui_calls.values()), ui_calls


@pytest.mark.parametrize(
    "name",
    ["python:tripwire_factory:boom", "python:os:getcwd", "../../etc", "/etc/passwd"],
)
def test_a_model_name_forced_into_the_session_loads_nothing(name: str) -> None:
    sys.modules.pop("tripwire_factory", None)
    at = new_app(name)
    at.run()
    assert not at.exception
    assert at.session_state["model_name"] == DEFAULT_MODEL  # reset to the default
    assert "tripwire_factory" not in sys.modules  # tests/tripwire_factory.py never imported


# --------------------------------------------------------------------------------------------
# Files are written only under the data folders; names cannot escape them
# --------------------------------------------------------------------------------------------

HOSTILE_NAMES = [
    "../../etc/passwd",
    "/etc/passwd",
    "..",
    ".",
    "",
    "a/../../b",
    "..\\..\\windows",
    "name\x00.npz",
    "~root",
    "x" * 1000,
    "scales-paper:expressions_gru_1",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_names_from_data_stay_inside_their_folder(name: str, tmp_path: Path) -> None:
    path = child_path(tmp_path, name)
    assert path.parent == tmp_path
    assert path.name not in ("", ".", "..")
    assert "/" not in path.name and "\x00" not in path.name
    assert safe_file_name(name) == path.name


@pytest.mark.parametrize("name", HOSTILE_NAMES[:8])
def test_built_in_model_names_cannot_point_elsewhere(name: str) -> None:
    from scales_viz.models.registry import load_builtin, model_dir

    with pytest.raises(InputValueError):
        model_dir(name)
    with pytest.raises(InputValueError):
        load_builtin(name)


def test_a_code_spec_loads_only_when_code_is_allowed() -> None:
    """load_model is the one loader for every spec; python:module:factory runs code, so it
    needs allow_code=True (the command line, the environment), which the page never passes."""
    from scales_viz.models import load_model

    with pytest.raises(InputValueError, match="runs Python code"):
        load_model("python:os:getcwd")


def test_a_hostile_model_name_caches_its_map_inside_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scales_viz.models import load_model
    from scales_viz.projection import CACHE_ENV, MapSettings, cached_map_path

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    model = load_model("digits-2d")
    model.name = "../../../outside/evil"
    path = cached_map_path(model, MapSettings())
    assert path.parent == tmp_path / "cache"
    assert path.resolve().is_relative_to((tmp_path / "cache").resolve())


def test_run_names_are_data_not_paths(tmp_path: Path) -> None:
    """A run renamed to a path is stored as text; nothing is created on disk."""
    from scales_viz.lso.records import Step
    from scales_viz.lso.store import RunStore

    store = RunStore(tmp_path / "runs.sqlite")
    info = store.create_run(
        model="digits-2d",
        task="looks_like_3",
        optimizer="random",
        seed=0,
        latent_dim=2,
        settings={},
    )
    store.add_step(
        info.id,
        Step(
            step=0,
            z=np.zeros((1, 2)),
            objective=np.zeros(1),
            valid=np.ones(1, dtype=bool),
            decoded=["x"],
            scales=np.zeros(1),
            likelihood=np.zeros(1),
            wall_time=0.0,
        ),
    )
    before = sorted(p.name for p in tmp_path.iterdir())
    store.rename_run(info.id, "../../../etc/evil")
    assert store.run(info.id).name == "../../../etc/evil"
    assert sorted(p.name for p in tmp_path.iterdir()) == before
