"""Run inside a clean virtual environment where the wheel is installed, from a folder outside
the checkout (``tests/installed/check.sh`` sets that up): the installed package alone must
load every built-in model and serve every view.

Exits non-zero, naming what failed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from streamlit.testing.v1 import AppTest

import scales_viz
import scales_viz_app
from scales_viz.models import DEFAULT_MODEL, list_models, load_model

VIEWS = ("home", "model", "slices", "projection", "optimizers", "inspect", "learn")
START_TIMEOUT = 120.0


def check_outside_checkout() -> None:
    here = Path(scales_viz.__file__).resolve()
    if "site-packages" not in here.parts:
        sys.exit(f"scales_viz was imported from {here}, not from the installed wheel.")
    if (Path.cwd() / "scales_viz").exists():
        sys.exit(f"run this from a folder outside the checkout, not {Path.cwd()}.")


def check_models() -> None:
    names = [info.name for info in list_models()]
    expected = {"expressions", "expressions-ar", "molecules", "digits", "digits-2d"}
    if not expected <= set(names):
        sys.exit(f"built-in models: expected {sorted(expected)}; the wheel lists {names}.")
    for name in names:
        model = load_model(name)
        print(f"loaded {name}: d={model.latent_dim}")


def check_views() -> None:
    app = Path(scales_viz_app.__file__).with_name("app.py")
    at = AppTest.from_file(str(app), default_timeout=300)
    at.session_state["model_name"] = "digits-2d"
    at.run()
    for view in VIEWS:
        at.switch_page(f"views/{view}.py")
        at.run()
        problems = [e.value for e in at.exception] + [e.value for e in at.error]
        if problems:
            sys.exit(f"view {view} on digits-2d: {problems}")
        print(f"view {view}: drawn")


def check_server() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    store = Path(tempfile.mkdtemp()) / "runs.sqlite"
    log = Path(tempfile.mkdtemp()) / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("scales-viz")),
                "serve",
                "--port",
                str(port),
                "--store",
                str(store),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ},
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/_stcore/health", timeout=2
                ) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"scales-viz serve did not come up:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            page = response.read().decode()
        if response.status != 200 or '<div id="root">' not in page.replace("'", '"'):
            sys.exit(f"GET / gave {response.status}, not the dashboard's page.")
        print(f"scales-viz serve: healthy on port {port}, default model {DEFAULT_MODEL}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    check_outside_checkout()
    check_models()
    check_views()
    check_server()
    print("installed wheel: every check passed")


if __name__ == "__main__":
    main()
