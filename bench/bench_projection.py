"""Projection speed: UMAP fit and transform, and the first Projection view on a fresh server.

* UMAP fit of 5k and 20k expressions latents (encoded data plus prior samples), after a
  warm-up fit that pays umap-learn's numba compilation (reported separately), and transform
  of 1000 new latents into the fitted map.
* First paint: a fresh ``streamlit run app.py``; Debian's chromium (Playwright) opens the root
  once the server answers, clicks "Projection" and waits for the map to be drawn. Reported:
  server start to healthy, and click to map visible (target: under 3 s, issue 6).

Writes a section of bench/RESULTS.md unless --no-write.

Usage: ``python bench/bench_projection.py [--no-write] [--skip-browser]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import torch
from results import machine, write_section

from scales_viz.browser import CHROMIUM, CHROMIUM_FLAGS
from scales_viz.models import load_model
from scales_viz.projection import LatentProjection

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 3.0


def latents(n: int) -> np.ndarray:
    model = load_model("expressions")
    data = model.data_latents.numpy()
    extra = max(0, n - len(data))
    prior = torch.randn(extra, model.latent_dim, generator=torch.Generator().manual_seed(0))
    return np.concatenate([data, prior.numpy()])[:n].astype(np.float32)


def umap_times() -> dict[str, float]:
    out: dict[str, float] = {}
    start = time.perf_counter()
    LatentProjection(random_state=0).fit(latents(5000))
    out["first fit in a new process (5000 points, with numba compilation)"] = (
        time.perf_counter() - start
    )
    for n in (5000, 20000):
        x = latents(n)
        start = time.perf_counter()
        reducer = LatentProjection(random_state=0).fit(x)
        out[f"fit {n} points"] = time.perf_counter() - start
        if n == 5000:
            new = latents(6000)[5000:] + 0.01
            reducer.transform(new[:10])  # compile transform's path
            start = time.perf_counter()
            reducer.transform(new)
            out["transform 1000 points (after warm-up)"] = time.perf_counter() - start
    return out


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _map_drawn(page: Any) -> None:
    """Wait until the Projection map (or the floor page's chart) is drawn."""
    from playwright.sync_api import expect

    expect(page.get_by_text("Lasso or box-select points")).to_be_visible(timeout=120_000)
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=120_000)


def first_paint() -> dict[str, float]:
    from playwright.sync_api import expect, sync_playwright

    proc, url, start = _start_server()
    out: dict[str, float] = {}
    try:
        out["server start to healthy"] = time.perf_counter() - start
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            opened = time.perf_counter()
            page.goto(f"{url}/projection", timeout=120_000)
            out["open /projection on the fresh server: page loaded (front end)"] = (
                time.perf_counter() - opened
            )
            expect(page.get_by_text("Projection: digits-2d")).to_be_visible(timeout=120_000)
            out["open /projection on the fresh server to its title"] = time.perf_counter() - opened
            _map_drawn(page)
            out["open /projection on the fresh server to map drawn"] = time.perf_counter() - opened
            out["fresh server start to map drawn"] = time.perf_counter() - start
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.goto(url, timeout=120_000)
            nav = page.get_by_role("link", name="Projection")
            expect(nav).to_be_visible(timeout=120_000)
            out["root page (Model view) to navigation visible"] = time.perf_counter() - start
            clicked = time.perf_counter()
            nav.click()
            _map_drawn(page)
            out["click Projection at once to map drawn (Model view still computing)"] = (
                time.perf_counter() - clicked
            )
            # Again on a new page of the same fresh server, after the Model view has finished.
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.goto(url, timeout=120_000)
            expect(page.get_by_text("AUROC scales").first).to_be_visible(timeout=120_000)
            expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=120_000)
            nav = page.get_by_role("link", name="Projection")
            clicked = time.perf_counter()
            nav.click()
            expect(page.get_by_text("Projection: digits-2d")).to_be_visible(timeout=120_000)
            out["click Projection to its title (new session)"] = time.perf_counter() - clicked
            _map_drawn(page)
            out["click Projection to map drawn (digits-2d, new session)"] = (
                time.perf_counter() - clicked
            )
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return out


def _start_server(app: Path | None = None) -> tuple[subprocess.Popen[bytes], str, float]:
    """A fresh server started as `make run` starts it (ui.launch warms imports and the
    default model first), or `streamlit run APP`; returns it, its URL and its start time."""
    port = _port()
    env = {**os.environ, "SCALES_VIZ_STORE": str(Path(tempfile.mkdtemp()) / "runs.sqlite")}
    command = [sys.executable, "-m", "ui.launch", "--server.port", str(port)]
    if app is not None:
        command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    while time.perf_counter() - start < 120:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return proc, url, start
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("streamlit did not start within 120 s")


FLOOR_APP = Path(__file__).with_name("floor_app.py")


def fresh_paint(floor: bool) -> float:
    """Seconds from opening a page on a freshly started server, in a new browser, to the
    chart drawn: the Projection view (``/projection``), or the floor page
    (``bench/floor_app.py``: one 2000-point Plotly scatter and nothing else)."""
    from playwright.sync_api import sync_playwright

    proc, url, _ = _start_server(FLOOR_APP if floor else None)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            opened = time.perf_counter()
            page.goto(url if floor else f"{url}/projection", timeout=120_000)
            _map_drawn(page)
            drawn = time.perf_counter() - opened
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return drawn


def paint_against_floor(repeats: int) -> tuple[list[float], list[float]]:
    """`repeats` fresh-server first paints of the Projection view and of the floor page,
    interleaved so that both see the same machine."""
    ours, floor = [], []
    for _ in range(repeats):
        ours.append(fresh_paint(floor=False))
        floor.append(fresh_paint(floor=True))
    return ours, floor


def first_paint_returning_browser() -> dict[str, float]:
    """A browser that has seen the app before (its HTTP cache holds Streamlit's and Plotly's
    scripts) opens /projection on a freshly started server."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp()
    out: dict[str, float] = {}
    with sync_playwright() as playwright:
        for visit in ("first visit", "returning browser"):
            proc, url, _ = _start_server()
            try:
                context = playwright.chromium.launch_persistent_context(
                    profile, executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True,
                    viewport={"width": 1500, "height": 1100},
                )  # fmt: skip
                page = context.new_page()
                opened = time.perf_counter()
                page.goto(f"{url}/projection", timeout=120_000)
                _map_drawn(page)
                out[f"{visit}: open /projection on a fresh server to map drawn"] = (
                    time.perf_counter() - opened
                )
                context.close()
            finally:
                proc.terminate()
                proc.wait(timeout=20)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--repeats", type=int, default=5, help="fresh-server paints each")
    args = parser.parse_args()
    rows = umap_times()
    if not args.skip_browser:
        rows.update(first_paint())
        rows.update(first_paint_returning_browser())
        ours, floor = paint_against_floor(args.repeats)
    lines = [
        "## Projection speed (UMAP, first paint)",
        "",
        f"{dt.date.today().isoformat()} - {machine()}. `python bench/bench_projection.py`.",
        "",
        "| measurement | seconds |",
        "|---|---|",
    ]
    for name, seconds in rows.items():
        lines.append(f"| {name} | {seconds:.2f} |")
    for label, key in (
        ("new browser", "open /projection on the fresh server to map drawn"),
        ("returning browser", "returning browser: open /projection on a fresh server to map drawn"),
    ):
        paint = rows.get(key)
        if paint is not None:
            verdict = "meets" if paint < TARGET_SECONDS else "misses"
            lines.append(
                f"\nFirst Projection view on a fresh server, {label}: {paint:.2f} s "
                f"({verdict} the 3 s target)."
            )
    if not args.skip_browser:
        med_ours, med_floor = statistics.median(ours), statistics.median(floor)
        verdict = "meets" if med_ours < TARGET_SECONDS else "misses"
        lines.append(
            f"\nFresh server, new browser, {args.repeats} times each, interleaved: the "
            f"Projection view is drawn in {med_ours:.2f} s (median; "
            f"{', '.join(f'{t:.2f}' for t in ours)}), which {verdict} the 3 s target. The "
            f"floor, a page with nothing but one 2000-point Plotly scatter "
            f"(`bench/floor_app.py`), is drawn in {med_floor:.2f} s (median; "
            f"{', '.join(f'{t:.2f}' for t in floor)}): the view adds "
            f"{med_ours - med_floor:+.2f} s to what Streamlit and Plotly cost on this machine."
        )
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("projection", text)


if __name__ == "__main__":
    main()
