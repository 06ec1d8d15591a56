"""A real browser (Playwright driving Debian's chromium) against `streamlit run app.py`.

``make test`` installs chromium with apt when it is missing. Set SCALES_VIZ_SKIP_BROWSER=1 to
skip these tests on a machine without it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scales_viz.browser import CHROMIUM as BROWSER_PATH
from scales_viz.browser import CHROMIUM_FLAGS

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path(BROWSER_PATH)
START_TIMEOUT = 90.0
STEP_TIMEOUT_MS = 90_000
HOVER_TRIES = 60

pytestmark = pytest.mark.skipif(
    os.environ.get("SCALES_VIZ_SKIP_BROWSER") == "1", reason="SCALES_VIZ_SKIP_BROWSER=1"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test` (it installs chromium with apt).")
    port = _free_port()
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    log = (tmp_path_factory.mktemp("streamlit") / "server.log").open("wb")
    # A log file, not a pipe: nobody reads a pipe here, and a full one would block the server.
    env = {**os.environ, "SCALES_VIZ_STORE": str(tmp_path_factory.mktemp("store") / "r.sqlite")}
    proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"streamlit did not start within {START_TIMEOUT:.0f} s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@contextlib.contextmanager
def _page(server: str) -> Iterator[Any]:
    """A chromium page opened at the app's root."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.goto(server, timeout=STEP_TIMEOUT_MS)
            yield page
        finally:
            browser.close()


@contextlib.contextmanager
def _view(server: str, link: str) -> Iterator[Any]:
    """A chromium page on the app, navigated to the view `link` like a user would.

    It opens the app at its root and navigates like a user: on a fresh server a deep link can
    land before st.navigation has registered the views ("Page not found").
    """
    from playwright.sync_api import expect

    with _page(server) as page:
        nav = page.get_by_test_id("stSidebarNav").get_by_role("link", name=link, exact=True)
        expect(nav).to_be_visible(timeout=STEP_TIMEOUT_MS)
        nav.click()
        yield page


def test_click_a_slice_cell_and_see_its_decoding(server: str) -> None:
    from playwright.sync_api import expect

    with _view(server, "Slices") as page:
        plot = page.locator(".js-plotly-plot").first
        ask = page.get_by_role("button", name="Compute it")
        expect(plot.or_(ask).first).to_be_visible(timeout=STEP_TIMEOUT_MS)
        if ask.count():  # a loaded machine can estimate the default grid over 10 s
            ask.click()
        expect(plot).to_be_visible(timeout=STEP_TIMEOUT_MS)
        drag = plot.locator(".nsewdrag").first
        expect(drag).to_be_visible(timeout=STEP_TIMEOUT_MS)
        # Hover until plotly shows a cell's label (the layout has settled and the plot is
        # wired for events), re-reading the plot's position each time.
        hover = page.locator(".hoverlayer text").first
        for _ in range(HOVER_TRIES):
            box = drag.bounding_box()
            assert box is not None
            # Near a corner: far from the data latents drawn (above the cells) near the centre.
            x, y = box["x"] + box["width"] * 0.92, box["y"] + box["height"] * 0.08
            page.mouse.move(x - 7, y - 7)
            page.mouse.move(x, y)
            page.wait_for_timeout(500)
            if hover.count():
                break
        expect(hover).to_contain_text("a=", timeout=STEP_TIMEOUT_MS)
        page.mouse.click(x, y)
        expect(page.get_by_text("Decoded cell")).to_be_visible(timeout=STEP_TIMEOUT_MS)
        expect(page.get_by_text("cell (row, col)")).to_be_visible(timeout=STEP_TIMEOUT_MS)


def test_lasso_on_projection_and_see_the_points_on_inspect(server: str) -> None:
    from playwright.sync_api import expect

    with _view(server, "Projection") as page:
        expect(page.get_by_text("Lasso or box-select points")).to_be_visible(
            timeout=STEP_TIMEOUT_MS
        )
        plot = page.locator(".js-plotly-plot").first
        drag = plot.locator(".nsewdrag").first
        expect(drag).to_be_visible(timeout=STEP_TIMEOUT_MS)
        page.wait_for_timeout(1000)
        box = drag.bounding_box()
        assert box is not None
        # A lasso round most of the plot: a closed polygon drawn with the mouse held down.
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        rx, ry = box["width"] * 0.45, box["height"] * 0.45
        corners = [
            (cx - rx, cy - ry),
            (cx + rx, cy - ry),
            (cx + rx, cy + ry),
            (cx - rx, cy + ry),
        ]
        page.mouse.move(*corners[0])
        page.mouse.down()
        for x, y in [*corners[1:], corners[0]]:
            page.mouse.move(x, y, steps=12)
        page.mouse.up()
        expect(page.get_by_text("point(s) selected")).to_be_visible(timeout=STEP_TIMEOUT_MS)
        page.get_by_role("link", name="Inspect", exact=True).first.click()
        expect(page.get_by_text("point(s) from projection")).to_be_visible(timeout=STEP_TIMEOUT_MS)
        expect(page.get_by_text("Decoded (first")).to_be_visible(timeout=STEP_TIMEOUT_MS)


def test_walk_the_learn_page_end_to_end(server: str) -> None:
    from playwright.sync_api import expect

    with _view(server, "Learn") as page:
        expect(page.get_by_text("What the decoder emits over the plane")).to_be_visible(
            timeout=STEP_TIMEOUT_MS
        )
        page.get_by_text("2. The ScaLES field and the validity map").click()
        expect(page.get_by_text("How far to trust it")).to_be_visible(timeout=STEP_TIMEOUT_MS)
        page.get_by_text("3. Optimisers with and without a penalty").click()
        expect(page.get_by_role("button", name="Run both")).to_be_visible(timeout=STEP_TIMEOUT_MS)
        page.get_by_text("4. Over 20 starts").click()
        expect(page.get_by_text("Mean ± standard deviation over the starts")).to_be_visible(
            timeout=STEP_TIMEOUT_MS
        )
        page.get_by_text("5. How to read the views").click()
        expect(page.get_by_text("Projection maps many latents")).to_be_visible(
            timeout=STEP_TIMEOUT_MS
        )


def test_the_first_screen_orients_and_links_to_the_views(server: str) -> None:
    from playwright.sync_api import expect

    with _page(server) as page:
        expect(page.get_by_text("where is a VAE's latent space realistic?")).to_be_visible(
            timeout=STEP_TIMEOUT_MS
        )
        expect(page.get_by_text("Deploy")).to_have_count(0)  # no deploy chrome
        page.get_by_role("link", name="Open Learn").click()
        expect(page.get_by_text("Learn: exploring a latent space")).to_be_visible(
            timeout=STEP_TIMEOUT_MS
        )


def test_model_page_shows_the_card_and_its_measured_aurocs(server: str) -> None:
    from playwright.sync_api import expect

    with _view(server, "Model") as page:
        expect(page.get_by_text("Model: expressions")).to_be_visible(timeout=STEP_TIMEOUT_MS)
        expect(page.get_by_text("Decodings of prior samples")).to_be_visible(
            timeout=STEP_TIMEOUT_MS
        )
        # The metric (the family table below also says "AUROC ScaLES").
        expect(page.get_by_text("AUROC scales", exact=True).first).to_be_visible(
            timeout=STEP_TIMEOUT_MS
        )
        expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=STEP_TIMEOUT_MS)


def test_launch_a_tiny_run_on_optimisers_and_compare_it(server: str) -> None:
    from playwright.sync_api import expect

    with _view(server, "Optimisers") as page:
        budget = page.get_by_label("Budget (evaluations)")
        expect(budget).to_be_visible(timeout=STEP_TIMEOUT_MS)
        budget.fill("8")
        page.get_by_label("Batch per step").fill("4")
        page.get_by_label("Initial design").fill("4")
        page.get_by_role("button", name="Launch").click()
        expect(page.get_by_text("Finished 1 run(s).")).to_be_visible(timeout=STEP_TIMEOUT_MS)
        expect(page.get_by_text("Runs on expressions (1)")).to_be_visible(timeout=STEP_TIMEOUT_MS)
        expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=STEP_TIMEOUT_MS)


def test_uploads_without_the_xsrf_token_are_refused(server: str) -> None:
    """XSRF protection is on: a cross-site upload (no token cookie/header) gets 403."""
    request = urllib.request.Request(
        f"{server}/_stcore/upload_file/some-session/some-file",
        data=b"--x\r\nContent-Disposition: form-data; name=file; filename=a.csv\r\n\r\n1\r\n--x--",
        method="PUT",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403


#: The issue's bound on Cancel (a click stops a grid at the next chunk); the measured time is
#: printed.
CANCEL_WITHIN_S = 2.0


def test_cancel_stops_a_long_grid_and_keeps_the_previous_figure(server: str) -> None:
    from playwright.sync_api import expect

    with _view(server, "Slices") as page:
        plot = page.locator(".js-plotly-plot").first
        ask = page.get_by_role("button", name="Compute it")
        expect(plot.or_(ask).first).to_be_visible(timeout=STEP_TIMEOUT_MS)
        if ask.count():
            ask.click()
        expect(plot).to_be_visible(timeout=STEP_TIMEOUT_MS)
        page.get_by_label("Resolution").click()
        page.get_by_role("option", name="255").click()
        page.get_by_role("button", name="Compute slice").click()
        # 65,025 latents: the page says how long first and waits for a click.
        expect(ask).to_be_visible(timeout=STEP_TIMEOUT_MS)
        expect(
            page.get_by_text("This 255x255 grid (65,025 latents) will take about")
        ).to_be_visible()
        ask.click()
        expect(page.get_by_text("Scoring 255x255 latents")).to_be_visible(timeout=STEP_TIMEOUT_MS)
        expect(plot).to_be_visible()  # the previous figure stays while the new one computes
        start = time.monotonic()
        page.get_by_role("button", name="Cancel").click()
        expect(page.get_by_text("Cancelled. Nothing was kept")).to_be_visible(
            timeout=STEP_TIMEOUT_MS
        )
        took = time.monotonic() - start
        print(f"Cancel took {took:.2f} s")
        assert took < CANCEL_WITHIN_S
        expect(page.get_by_text("Scoring 255x255 latents")).to_have_count(0)
        expect(page.get_by_role("button", name="Compute the 255x255 grid")).to_be_visible()
