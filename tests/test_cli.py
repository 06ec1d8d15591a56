from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from scales_viz import __version__
from scales_viz.cli import build_parser, main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_serve_binds_loopback_by_default() -> None:
    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1" and args.port == 8501


def test_a_command_is_required() -> None:
    with pytest.raises(SystemExit):
        main([])


def test_train_defaults_to_seed_zero_and_the_assets_directory() -> None:
    args = build_parser().parse_args(["train", "expressions"])
    assert args.seed == 0 and args.out is None and args.name == "expressions"


def test_evaluate_writes_a_card(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["evaluate", "digits-2d", "--group-size", "12", "--out", str(tmp_path)])
    assert code == 0
    card = (tmp_path / "README.md").read_text()
    assert "# Model card: digits-2d" in card
    assert "Valid-generation AUROC" in card
    assert json.loads((tmp_path / "evaluation.json").read_text())["group_size"] == 12
    assert "AUROC" in capsys.readouterr().out


def test_serve_starts_the_warm_launcher_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    import scales_viz.cli as cli

    seen: dict[str, object] = {}

    def fake_call(command: list[str], cwd: object = None) -> int:
        seen["command"], seen["cwd"] = command, cwd
        return 0

    monkeypatch.setattr(cli.subprocess, "call", fake_call)
    assert main(["serve", "--port", "8600"]) == 0
    command = seen["command"]
    assert isinstance(command, list) and command[1:3] == ["-m", "scales_viz_app.ui.launch"]
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    assert command[command.index("--server.port") + 1] == "8600"
    assert seen["cwd"] is None  # the user's folder: relative paths mean what they typed


def test_launcher_preloads_the_default_model() -> None:
    from scales_viz.models import DEFAULT_MODEL
    from scales_viz_app.ui.launch import warm
    from scales_viz_app.ui.state import PRELOADED

    warm()
    assert PRELOADED[DEFAULT_MODEL].name == DEFAULT_MODEL


def test_launcher_freezes_the_warm_heap_before_starting_streamlit(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Streamlit collects garbage after every script run; the warm-up's heap is frozen first
    so that collection does not walk torch's and the model's objects each time."""
    import gc

    from streamlit.web import cli as streamlit_cli

    from scales_viz_app.ui import launch

    seen: dict[str, Any] = {}

    def fake_streamlit_main() -> None:
        seen["frozen"] = gc.get_freeze_count()
        seen["argv"] = list(sys.argv)

    monkeypatch.setattr(streamlit_cli, "main", fake_streamlit_main)
    monkeypatch.setattr(sys, "argv", ["launch"])
    try:
        launch.main(["--server.port", "8601"])
    finally:
        gc.unfreeze()
    assert seen["frozen"] > 100_000
    assert seen["argv"][:3] == ["streamlit", "run", str(launch.APP)]
    assert seen["argv"][3:5] == ["--server.port", "8601"]
    # The packaged settings follow as flags (the caller's port wins over the file's).
    flags = seen["argv"][5:]
    assert flags[flags.index("--client.toolbarMode") + 1] == "minimal"
    assert flags[flags.index("--server.fileWatcherType") + 1] == "none"
    assert "--server.port" not in flags


def test_the_server_runs_on_httptools_and_uvloop() -> None:
    """Streamlit's uvicorn picks the C HTTP parser and event loop when they are installed
    (the Projection view's first paint: 2.59 -> 2.27 s); the set-up path installs them."""
    import importlib.util

    from uvicorn.config import Config

    config = Config(app=lambda scope, receive, send: None)
    config.load()
    assert config.http_protocol_class.__name__ == "HttpToolsProtocol"
    if sys.platform != "win32":
        assert importlib.util.find_spec("uvloop") is not None
