"""Projection speed: UMAP fit and transform, and the first Projection view on a fresh server.

* UMAP fit of 5k and 20k expressions latents (encoded data plus prior samples), after a
  warm-up fit that pays umap-learn's numba compilation (reported separately), and transform
  of 1000 new latents into the fitted map.
* First paint (target: under 3 s, issue 6): a server started as ``make run`` starts it
  (``scales_viz_app.ui.launch``), and Debian's chromium (Playwright) opening ``/projection`` in
  a new browser
  once the server answers, until the map is drawn. The headline is the median of ``--repeats``
  fresh servers, interleaved with as many fresh servers of a floor page (one Plotly scatter,
  nothing else), with the milestones in between (Plotly's chunk requested, received,
  compiled) and the load average before each paint. Single runs of other paths (clicking
  Projection in a session, a returning browser) are listed too.

Writes a section of bench/RESULTS.md unless --no-write.

Usage: ``python bench/bench_projection.py [--no-write] [--skip-browser] [--skip-umap]
[--repeats N]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from results import machine, write_section
from server import start_server, stop_server

from scales_viz.browser import CHROMIUM, CHROMIUM_FLAGS
from scales_viz.models import load_model
from scales_viz.projection import LatentProjection

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


#: Stamps, in each bench page, when things first appear (ms since the navigation started):
#: the title, the chart element (Plotly's chunk compiled), and the map drawn: the chart has
#: plotted points and the caption under it is there, stamped once the next frame is painted
#: (a second animation frame).
#: Stamping in the page, rather than polling from the test driver, keeps the numbers free of
#: Playwright's polling interval (its ``expect`` backs off to 500 ms between checks).
_PAGE_MARKS = """
window.__marks = {};
new MutationObserver((_, observer) => {
  const marks = window.__marks, now = performance.now();
  if (marks.title === undefined && document.querySelector('h1')) marks.title = now;
  if (marks.chart_mounted === undefined && document.querySelector('[data-testid=stPlotlyChart]'))
    marks.chart_mounted = now;
  if (marks.drawing !== undefined) return;
  const plot = document.querySelector('.js-plotly-plot');
  const points = plot && plot.querySelector('.scatterlayer .point, canvas.gl-canvas-context');
  const caption = [...document.querySelectorAll('[data-testid=stCaptionContainer]')]
    .some(c => c.textContent.includes('Lasso or box-select points'));
  if (points && caption) {
    marks.drawing = now;
    observer.disconnect();
    requestAnimationFrame(() => requestAnimationFrame(() => { marks.drawn = performance.now(); }));
  }
}).observe(document, {subtree: true, childList: true});
"""
#: Network milestones of the page, read after the map is drawn (ms since navigation start).
_NETWORK = """() => {
  const plotly = performance.getEntriesByType('resource').find(r => r.name.includes('PlotlyChart'));
  const nav = performance.getEntriesByType('navigation')[0];
  return {
    dom_ready: nav ? nav.domContentLoadedEventEnd : null,
    chunk_requested: plotly ? plotly.startTime : null,
    chunk_received: plotly ? plotly.responseEnd : null,
  };
}"""


def _new_page(owner: Any) -> Any:
    """A page that stamps its milestones (``_PAGE_MARKS``), of a browser or of a context
    (whose viewport is set when it is made)."""
    from playwright.sync_api import Browser

    if isinstance(owner, Browser):
        page = owner.new_page(viewport={"width": 1500, "height": 1100})
    else:
        page = owner.new_page()
    page.add_init_script(_PAGE_MARKS)
    return page


def _map_drawn(page: Any) -> float:
    """Wait until the Projection map (or the floor page's chart) is drawn; return when, in
    seconds since the page's navigation started (from the page's own stamp)."""
    page.wait_for_function("() => window.__marks.drawn !== undefined", timeout=120_000)
    return float(page.evaluate("window.__marks.drawn")) / 1000


def _marks(page: Any) -> dict[str, float | None]:
    """The page's milestones in seconds since its navigation started (None: not reached)."""
    marks = {**page.evaluate(_NETWORK), **page.evaluate("window.__marks")}
    return {k: None if v is None else float(v) / 1000 for k, v in marks.items()}


def _now(page: Any) -> float:
    """The page's clock (seconds since its navigation started), to time a click against."""
    return float(page.evaluate("performance.now()")) / 1000


def first_paint() -> dict[str, float]:
    """Single runs: a deep link to /projection, and clicking Projection in a session."""
    from playwright.sync_api import expect, sync_playwright

    start = time.perf_counter()
    proc, url = _fresh_server()
    out: dict[str, float] = {}
    try:
        out["server start to healthy"] = time.perf_counter() - start
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = _new_page(browser)
            page.goto(f"{url}/projection", timeout=120_000)
            drawn = _map_drawn(page)
            marks = _marks(page)
            out["open /projection on the fresh server: page loaded (front end)"] = marks[
                "dom_ready"
            ] or float("nan")
            out["open /projection on the fresh server to its title"] = marks["title"] or float(
                "nan"
            )
            out["open /projection on the fresh server to map drawn"] = drawn
            out["fresh server start to map drawn"] = time.perf_counter() - start
            page = _new_page(browser)
            page.goto(url, timeout=120_000)
            nav = page.get_by_role("link", name="Projection")
            expect(nav).to_be_visible(timeout=120_000)
            out["root page (Model view) to navigation visible"] = time.perf_counter() - start
            clicked = _now(page)
            nav.click()
            out["click Projection at once to map drawn (Model view still computing)"] = (
                _map_drawn(page) - clicked
            )
            # Again on a new page of the same fresh server, after the Model view has finished.
            page = _new_page(browser)
            page.goto(url, timeout=120_000)
            expect(page.get_by_text("AUROC scales").first).to_be_visible(timeout=120_000)
            expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=120_000)
            page.evaluate("delete window.__marks.title")
            nav = page.get_by_role("link", name="Projection")
            clicked = _now(page)
            nav.click()
            drawn = _map_drawn(page)
            title = _marks(page)["title"]
            out["click Projection to its title (new session)"] = (
                float("nan") if title is None else title - clicked
            )
            out["click Projection to map drawn (digits-2d, new session)"] = drawn - clicked
            browser.close()
    finally:
        stop_server(proc)
    return out


def _fresh_server(app: Path | None = None) -> tuple[Any, str]:
    """A fresh server (``scales_viz_app.ui.launch``, as ``make run`` starts it, or
    ``streamlit run APP``) with an empty run store of its own; returns it and its URL once it
    answers."""
    return start_server(Path(tempfile.mkdtemp()) / "runs.sqlite", app=app)


FLOOR_APP = Path(__file__).with_name("floor_app.py")

#: The milestones of a first paint, in order, as the report names them.
_MILESTONE_NAMES = {
    "dom_ready": "Streamlit's page loaded (DOMContentLoaded)",
    "title": "page title shown",
    "chunk_requested": "first chart arrives; Plotly's chunk (4.7 MB) requested",
    "chunk_received": "Plotly's chunk received",
    "chart_mounted": "Plotly compiled, chart element mounted",
    "drawn": "map drawn (points plotted, the next frame painted)",
}


@dataclass
class Paint:
    """One fresh-server first paint: seconds to the drawn chart, where the time went, and the
    machine's 1-minute load average just before."""

    drawn: float
    milestones: dict[str, float | None]
    load: float


def fresh_paint(floor: bool) -> Paint:
    """A page opened on a freshly started server, in a new browser, until its chart is drawn:
    the Projection view (``/projection``), or the floor page (``bench/floor_app.py``: one
    2000-point Plotly scatter and nothing else)."""
    from playwright.sync_api import sync_playwright

    proc, url = _fresh_server(FLOOR_APP if floor else None)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = _new_page(browser)
            load = os.getloadavg()[0]
            page.goto(url if floor else f"{url}/projection", timeout=120_000)
            drawn = _map_drawn(page)
            marks = _marks(page)
            milestones = {k: marks.get(k) for k in _MILESTONE_NAMES if k != "drawn"}
            browser.close()
    finally:
        stop_server(proc)
    return Paint(drawn, milestones, load)


def paint_against_floor(repeats: int) -> tuple[list[Paint], list[Paint]]:
    """`repeats` fresh-server first paints of the Projection view and of the floor page,
    interleaved so that both see the same machine."""
    ours, floor = [], []
    for _ in range(repeats):
        ours.append(fresh_paint(floor=False))
        floor.append(fresh_paint(floor=True))
    return ours, floor


def _median_milestones(paints: list[Paint]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in paints[0].milestones:
        values = [v for p in paints if (v := p.milestones[key]) is not None]
        if values:
            out[key] = statistics.median(values)
    out["drawn"] = statistics.median(p.drawn for p in paints)
    return out


def paint_report(ours: list[Paint], floor: list[Paint]) -> list[str]:
    """Markdown lines: medians against the target and the floor, and where the time goes."""
    med_ours = statistics.median(p.drawn for p in ours)
    med_floor = statistics.median(p.drawn for p in floor)
    verdict = "meets" if med_ours < TARGET_SECONDS else "misses"
    loads = [p.load for p in ours + floor]
    lines = [
        f"\nFresh server, new browser, {len(ours)} times each, interleaved: the Projection view "
        f"is drawn in **{med_ours:.2f} s** (median; {', '.join(f'{p.drawn:.2f}' for p in ours)}), "
        f"which {verdict} the 3 s target. The floor, a page with nothing but one 2000-point "
        f"Plotly scatter (`bench/floor_app.py`), is drawn in {med_floor:.2f} s (median; "
        f"{', '.join(f'{p.drawn:.2f}' for p in floor)}): the view adds "
        f"{med_ours - med_floor:+.2f} s to what Streamlit and Plotly cost on this machine. "
        f"1-minute load average before each paint: {min(loads):.2f} to {max(loads):.2f}.",
        "",
        "Where the time goes (medians, seconds since the browser started the navigation):",
        "",
        "| milestone | Projection view | floor |",
        "|---|---|---|",
    ]
    a, b = _median_milestones(ours), _median_milestones(floor)
    for key, label in _MILESTONE_NAMES.items():
        if key in a and key in b:
            lines.append(f"| {label} | {a[key]:.2f} | {b[key]:.2f} |")
    return lines


def first_paint_returning_browser() -> dict[str, float]:
    """A browser that has seen the app before (its HTTP cache holds Streamlit's and Plotly's
    scripts) opens /projection on a freshly started server."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp()
    out: dict[str, float] = {}
    with sync_playwright() as playwright:
        for visit in ("first visit", "returning browser"):
            proc, url = _fresh_server()
            try:
                context = playwright.chromium.launch_persistent_context(
                    profile, executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True,
                    viewport={"width": 1500, "height": 1100},
                )  # fmt: skip
                page = _new_page(context)
                page.goto(f"{url}/projection", timeout=120_000)
                out[f"{visit}: open /projection on a fresh server to map drawn"] = _map_drawn(page)
                context.close()
            finally:
                stop_server(proc)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--skip-umap", action="store_true")
    parser.add_argument("--repeats", type=int, default=9, help="fresh-server paints each")
    args = parser.parse_args()
    rows = {} if args.skip_umap else umap_times()
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
    if not args.skip_browser:
        lines += paint_report(ours, floor)
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("projection", text)


if __name__ == "__main__":
    main()
