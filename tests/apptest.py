"""Shared pieces of the AppTest suites."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[1]
# AppTest resolves a relative path against the calling file, so pass the app's full path.
APP = str(REPO / "scales_viz_app" / "app.py")
# The molecules views score hundreds of points on a 2-core CPU.
TIMEOUT = 300


def new_app(model: str = "digits-2d", **state: object) -> AppTest:
    """The app with `model` picked and session `state` set (not yet run)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["model_name"] = model
    for key, value in state.items():
        at.session_state[key] = value
    return at


def clean(at: AppTest) -> None:
    """No exception and no error element on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
