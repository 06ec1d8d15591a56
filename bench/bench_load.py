"""Concurrent users: N browser sessions at once against one dashboard server.

One fresh server (``python -m scales_viz_app.ui.launch``, as ``make run`` starts it, on
127.0.0.1 with an empty run store in a temporary directory) and one headless chromium (Debian's,
driven by Playwright's async API) with N browser contexts, that is N independent Streamlit sessions,
all started together (``asyncio.gather``). Each session does the main interactions in turn,
each timed from the user's action to its visible result:

1. open the app at its root: the Model view drawn (title, AUROC metrics, score chart);
2. click "Slices": the default slice computed and its heatmap drawn (plot and drag layer);
3. click a heatmap cell (after hovering until plotly shows a label): "Decoded cell" shown;
4. click "Projection": the map drawn ("Lasso or box-select points", plot and drag layer);
5. click "Optimisers": the launch form shown;
6. launch a tiny run (random optimiser, 10 evaluations in batches of 5): "Finished 1 run(s)."

An interaction that times out, or after which the page shows a Streamlit exception or an error
box, counts as an error (dependent steps are then skipped: no decoding without a slice, no run
without the form). Also measured: the server's resident memory (its process tree, from /proc)
before the sessions, at its peak while they run, and after; Python tracebacks in the server
log; and the run store afterwards (one completed run of 10 points per session expected).

The browser and the server share this machine's cores, so the times include the browser's
own work (rendering N plotly pages) competing with the server.

--snapshot serves a copy of the app (app.py, ui/, views/, scales_viz/, assets/, pages/,
.streamlit/) taken at the start instead of the checkout, so that edits made to the checkout
while the benchmark runs (a shared machine) cannot reach the server. The project's
``.streamlit/config.toml`` turns Streamlit's file watcher off for the same reason: with it on,
an edit made Streamlit evict the app's modules from ``sys.modules`` at each session's next
rerun, which raced with other sessions importing them (seen once under 10 sessions:
``KeyError: 'scales_viz'`` from importlib in ``app.py``'s imports).

Writes the section "Concurrent users (N browser sessions)" of bench/RESULTS.md unless
--no-write; --json PATH also writes the raw timings.

Usage: ``python bench/bench_load.py [--sessions 10] [--timeout 180] [--port 0] [--snapshot]
[--json PATH] [--no-write]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from results import machine, write_section
from server import REPO, start_server, stop_server

from scales_viz.browser import CHROMIUM, CHROMIUM_FLAGS

MODEL = "digits-2d"  # the app's default model
VIEWPORT_WIDTH, VIEWPORT_HEIGHT = 1500, 1100
HOVER_PAUSE_MS = 500
#: The tiny run launched from the Optimisers form.
RUN_OPTIMIZER, RUN_BUDGET, RUN_BATCH = "random", 10, 5

#: What --snapshot copies: the app, its package and the built-in models.
SNAPSHOT = ("app.py", "scales_viz_app", "scales_viz", ".streamlit")

#: (key, label in the table) of each interaction, in the order a session does them.
INTERACTIONS = (
    ("open", "open app -> Model view drawn"),
    ("slices", "click Slices -> slice computed and drawn"),
    ("decode", "click a cell -> decoded cell shown"),
    ("projection", "click Projection -> map drawn"),
    ("optimisers", "click Optimisers -> launch form shown"),
    ("launch", f"launch {RUN_OPTIMIZER} run ({RUN_BUDGET} evals) -> finished"),
)
#: An interaction is skipped when the one it needs failed.
NEEDS = {"decode": "slices", "launch": "optimisers"}


@dataclass
class Outcome:
    """One interaction of one session: its time, or why it failed (or both: an error shown
    on the page after the result appeared)."""

    seconds: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.seconds is not None


# --------------------------------------------------------------------------------------------
# Server and its memory
# --------------------------------------------------------------------------------------------


def snapshot(into: Path) -> Path:
    """A copy of the app's source and assets (:data:`SNAPSHOT`) in `into`/app; run from
    there, ``python -m scales_viz_app.ui.launch`` imports this copy of ``scales_viz`` (the
    working directory comes first on ``sys.path``, before the editable install)."""
    root = into / "app"
    root.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SNAPSHOT:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, root / name)
    return root


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after "pid (comm)" (comm may hold spaces and parentheses):
    state, ppid, ..., utime (index 11), stime (12)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def process_tree(pid: int) -> list[int]:
    """Process `pid` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and len(fields := _stat(int(entry.name))) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mib(pid: int) -> float:
    """Resident memory of process `pid` and all its descendants, in MiB."""
    return sum(_rss_kib(p) for p in process_tree(pid)) / 1024


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of the living processes `pids`, in seconds."""
    ticks = 0
    for pid in pids:
        fields = _stat(pid)
        if len(fields) > 12:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def sample_peak(pid: int, stop: asyncio.Event, peak: list[float]) -> None:
    """Keep the largest `tree_rss_mib(pid)` seen in `peak[0]` until `stop` is set."""
    while not stop.is_set():
        peak[0] = max(peak[0], await asyncio.to_thread(tree_rss_mib, pid))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)


def tracebacks(log: Path) -> list[str]:
    """The Python tracebacks in the server log (each up to its exception line)."""
    found, lines = [], log.read_text(errors="replace").splitlines()
    for i, line in enumerate(lines):
        if "Traceback (most recent call last)" in line:
            end = i + 1
            while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end]):
                end += 1
            found.append("\n".join(lines[i : end + 1]))
    return found


# --------------------------------------------------------------------------------------------
# One browser session
# --------------------------------------------------------------------------------------------


class Session:
    """One browser context (one Streamlit session) doing the interactions in turn."""

    def __init__(self, page: Any, url: str, timeout_s: float) -> None:
        self.page = page
        self.url = url
        self.timeout_s = timeout_s
        self.deadline = 0.0

    def left(self) -> float:
        """Milliseconds left of the current interaction's timeout (at least 1)."""
        return max(1.0, (self.deadline - time.monotonic()) * 1000)

    async def visible(self, locator: Any) -> None:
        from playwright.async_api import expect

        await expect(locator).to_be_visible(timeout=self.left())

    async def text(self, text: str) -> None:
        await self.visible(self.page.get_by_text(text).first)

    async def plot_drawn(self) -> Any:
        """The first plotly chart's drag layer, once visible (the chart is drawn)."""
        drag = self.page.locator(".js-plotly-plot").first.locator(".nsewdrag").first
        await self.visible(drag)
        return drag

    async def navigate(self, link: str) -> float:
        """Wait for the sidebar link (not timed), click it; the click's time."""
        nav = self.page.get_by_role("link", name=link, exact=True).first
        await self.visible(nav)
        start = time.perf_counter()
        await nav.click(timeout=self.left())
        return start

    async def open(self) -> float:
        start = time.perf_counter()
        await self.page.goto(self.url, timeout=self.left())
        await self.text(f"Model: {MODEL}")
        await self.text("AUROC scales")
        await self.plot_drawn()
        return time.perf_counter() - start

    async def chart_view(self, link: str, caption: str) -> float:
        """Click view `link`; the time until its title, `caption` and chart are shown."""
        start = await self.navigate(link)
        await self.text(f"{link}: {MODEL}")
        await self.text(caption)
        await self.plot_drawn()
        return time.perf_counter() - start

    async def slices(self) -> float:
        return await self.chart_view("Slices", "cells decode to valid objects")

    async def decode(self) -> float:
        page = self.page
        drag = await self.plot_drawn()
        # Hover until plotly shows a cell's label (the layout has settled and the plot is
        # wired for events), re-reading the plot's position each time; not timed.
        hover = page.locator(".hoverlayer text").first
        x = y = 0.0
        while True:
            box = await drag.bounding_box(timeout=self.left())
            if box is None:
                raise RuntimeError("the slice chart has no bounding box")
            x, y = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5
            await page.mouse.move(x - 7, y - 7)
            await page.mouse.move(x, y)
            await page.wait_for_timeout(HOVER_PAUSE_MS)
            if await hover.count():
                break
            if self.left() <= HOVER_PAUSE_MS:
                raise TimeoutError("no hover label on the slice chart before the timeout")
        start = time.perf_counter()
        await page.mouse.click(x, y)
        await self.text("Decoded cell")
        await self.text("cell (row, col)")
        return time.perf_counter() - start

    async def projection(self) -> float:
        return await self.chart_view("Projection", "Lasso or box-select points")

    async def optimisers(self) -> float:
        start = await self.navigate("Optimisers")
        await self.text(f"Optimisers: {MODEL}")
        await self.visible(self.page.get_by_role("button", name="Launch", exact=True))
        return time.perf_counter() - start

    async def launch(self) -> float:
        from playwright.async_api import expect

        page = self.page
        # Fill the form (not timed): the random optimiser, the smallest sensible budget.
        picker = page.get_by_role("combobox", name="Optimizer", exact=True)
        await picker.click(timeout=self.left())
        await page.get_by_role("option", name=RUN_OPTIMIZER, exact=True).click(timeout=self.left())
        await expect(picker).to_have_value(RUN_OPTIMIZER, timeout=self.left())
        for label, value in (("Budget (evaluations)", RUN_BUDGET), ("Batch per step", RUN_BATCH)):
            field = page.get_by_label(label, exact=True)
            await field.fill(str(value), timeout=self.left())
            await field.press("Tab", timeout=self.left())
        start = time.perf_counter()
        await page.get_by_role("button", name="Launch", exact=True).click(timeout=self.left())
        await self.text("Finished 1 run(s).")
        return time.perf_counter() - start

    async def page_errors(self) -> str | None:
        """The text of Streamlit exceptions or error boxes now on the page, if any."""
        texts = []
        for test_id in ("stException", "stAlertContentError"):
            boxes = self.page.get_by_test_id(test_id)
            for i in range(await boxes.count()):
                texts.append((await boxes.nth(i).inner_text(timeout=5000)).strip())
        return " | ".join(t.replace("\n", " ")[:300] for t in texts) or None

    async def run(self) -> dict[str, Outcome]:
        steps: dict[str, Callable[[], Awaitable[float]]] = {
            "open": self.open,
            "slices": self.slices,
            "decode": self.decode,
            "projection": self.projection,
            "optimisers": self.optimisers,
            "launch": self.launch,
        }
        out: dict[str, Outcome] = {}
        for key, _ in INTERACTIONS:
            needed = NEEDS.get(key)
            if needed is not None and not out[needed].ok:
                out[key] = Outcome(error=f"skipped: {needed} failed")
                continue
            self.deadline = time.monotonic() + self.timeout_s
            outcome = Outcome()
            try:
                outcome.seconds = await steps[key]()
            except Exception as exc:
                first = (str(exc).strip().splitlines() or [""])[0]
                outcome.error = f"{type(exc).__name__}: {first}"[:300]
            try:
                shown = await self.page_errors()
            except Exception:
                shown = None
            if shown:
                outcome.error = f"{outcome.error}; page shows: {shown}" if outcome.error else shown
            out[key] = outcome
        return out


async def run_sessions(
    url: str, sessions: int, timeout_s: float, server: int
) -> tuple[list[dict[str, Outcome]], float]:
    """`sessions` browser contexts of one chromium, all doing the interactions at once; their
    outcomes, and the CPU seconds used by the browser (chromium and Playwright's driver: this
    process's descendants other than the `server` pid's tree)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
        )
        try:
            contexts = [
                await browser.new_context(
                    viewport={"width": VIEWPORT_WIDTH, "height": VIEWPORT_HEIGHT}
                )
                for _ in range(sessions)
            ]
            pages = [await context.new_page() for context in contexts]
            results = await asyncio.gather(*(Session(page, url, timeout_s).run() for page in pages))
            own, served = os.getpid(), set(process_tree(server))
            browser_cpu = cpu_seconds(
                [p for p in process_tree(own) if p != own and p not in served]
            )
            for context in contexts:
                await context.close()
        finally:
            await browser.close()
    return list(results), browser_cpu


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def store_check(store: Path, sessions: int) -> str:
    """What the run store holds after the sessions (one completed 10-point run each)."""
    from scales_viz.lso.store import RunStore

    runs = RunStore(store).runs(model=MODEL)
    statuses: dict[str, int] = {}
    for run in runs:
        key = f"{run.optimizer} {run.status}"
        statuses[key] = statuses.get(key, 0) + 1
    points = RunStore(store).points([r.id for r in runs]) if runs else None
    sizes = sorted({int(n) for n in points.groupby("run").size()}) if points is not None else []
    return (
        f"{len(runs)} run(s) for {sessions} session(s) ("
        + (", ".join(f"{s} {n}" for s, n in sorted(statuses.items())) or "none")
        + f"), points per run {sizes or 'none'}"
    )


def table(results: list[dict[str, Outcome]]) -> list[str]:
    lines = [
        "| interaction | n ok | p50 (s) | p95 (s) | max (s) | errors |",
        "|---|---|---|---|---|---|",
    ]
    for key, label in INTERACTIONS:
        outcomes = [r[key] for r in results]
        times = np.array([o.seconds for o in outcomes if o.ok])
        errors = sum(not o.ok for o in outcomes)
        if len(times):
            p50, p95 = np.percentile(times, [50, 95])
            stats = f"{p50:.2f} | {p95:.2f} | {times.max():.2f}"
        else:
            stats = "- | - | -"
        lines.append(f"| {label} | {len(times)} | {stats} | {errors} |")
    return lines


def error_lines(results: list[dict[str, Outcome]]) -> list[str]:
    lines = []
    for index, result in enumerate(results):
        for key, _ in INTERACTIONS:
            outcome = result[key]
            if outcome.error is not None:
                took = "" if outcome.seconds is None else f" (after {outcome.seconds:.2f} s)"
                lines.append(f"- session {index}, {key}{took}: {outcome.error}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=10, help="browser sessions at once")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per interaction")
    parser.add_argument("--port", type=int, default=0, help="server port (0: a free one)")
    parser.add_argument(
        "--snapshot", action="store_true", help="serve a copy of the app taken at the start"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the raw timings here")
    parser.add_argument("--no-write", action="store_true", help="leave bench/RESULTS.md alone")
    args = parser.parse_args()
    if args.sessions < 1:
        parser.error("--sessions must be at least 1")

    command = "python bench/bench_load.py" + "".join(f" {a}" for a in sys.argv[1:])
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="scales-viz-load-"))
    store, log = work / "runs.sqlite", work / "server.log"
    cwd = snapshot(work) if args.snapshot else REPO
    started = time.perf_counter()
    proc, url = start_server(store, port=args.port, log=log, cwd=cwd)
    startup = time.perf_counter() - started
    try:
        rss_before = tree_rss_mib(proc.pid)
        stop, peak = asyncio.Event(), [rss_before]

        async def measured() -> tuple[list[dict[str, Outcome]], float]:
            sampler = asyncio.create_task(sample_peak(proc.pid, stop, peak))
            try:
                return await run_sessions(url, args.sessions, args.timeout, proc.pid)
            finally:
                stop.set()
                await sampler

        server_cpu = cpu_seconds(process_tree(proc.pid))
        began = time.perf_counter()
        results, browser_cpu = asyncio.run(measured())
        wall = time.perf_counter() - began
        server_cpu = cpu_seconds(process_tree(proc.pid)) - server_cpu
        time.sleep(2.0)  # let the server drop the closed sessions
        rss_after = tree_rss_mib(proc.pid)
        load_after = os.getloadavg()
        stored = store_check(store, args.sessions)
    finally:
        stop_server(proc)
        if args.snapshot:
            shutil.rmtree(cwd, ignore_errors=True)
    traces = tracebacks(log)

    title = f"Concurrent users ({args.sessions} browser session{'s' * (args.sessions != 1)})"
    errors = error_lines(results)
    lines = [
        f"## {title}",
        "",
        f"`{command}` on {dt.date.today().isoformat()}; {machine()}.",
        "",
        "One server (`python -m scales_viz_app.ui.launch`, fresh run store, "
        f"{MODEL}, the default model"
        + (", serving a copy of the app taken at the start" if args.snapshot else "")
        + ") and "
        f"one headless chromium (Playwright, {args.sessions} browser context(s) started together) "
        f"on the same {os.cpu_count()} cores, so the times include the browser's own rendering "
        "work competing with the server. Each session: open the app, Slices (default slice), "
        "click a cell, Projection, Optimisers, launch a random run of 10 evaluations; each time "
        "is from the user action to the visible result; timeout "
        f"{args.timeout:.0f} s per interaction. p50 and p95 are linear-interpolated percentiles "
        f"over the sessions. 1-minute load average before the run {load_before[0]:.2f}"
        + (" (other work was running on the machine)" if load_before[0] >= 0.5 else "")
        + f", after it {load_after[0]:.2f}. Server start to healthy {startup:.1f} s; all "
        f"sessions done in {wall:.1f} s.",
        "",
        *table(results),
        "",
        f"Server memory (RSS of its process tree): {rss_before:.0f} MiB before the sessions, "
        f"{peak[0]:.0f} MiB at peak, {rss_after:.0f} MiB after. Tracebacks in the server log: "
        f"{len(traces)}. Run store afterwards: {stored}. CPU time while the sessions ran: "
        f"server {server_cpu:.0f} s, browser (chromium and Playwright) {browser_cpu:.0f} s, "
        f"of the {wall * (os.cpu_count() or 1):.0f} core-seconds of the machine (shared with "
        "anything else running on it).",
        "",
        f"Errors: {len(errors)}." if not errors else f"Errors ({len(errors)}):",
        *errors,
    ]
    text = "\n".join(lines).rstrip()
    print(text)
    for trace in traces[:5]:
        print(f"\n--- traceback in {log}:\n{trace}")
    print(f"\nserver log: {log}")
    if args.json is not None:
        raw = {
            "command": command,
            "date": dt.datetime.now().isoformat(timespec="seconds"),
            "machine": machine(),
            "sessions": args.sessions,
            "timeout_s": args.timeout,
            "load_average_before": load_before,
            "load_average_after": load_after,
            "server_start_s": startup,
            "wall_s": wall,
            "rss_mib": {"before": rss_before, "peak": peak[0], "after": rss_after},
            "cpu_s": {"server": server_cpu, "browser": browser_cpu},
            "store": stored,
            "tracebacks": traces,
            "results": [{k: asdict(o) for k, o in r.items()} for r in results],
        }
        args.json.write_text(json.dumps(raw, indent=2))
    if not args.no_write:
        write_section(title, text)


if __name__ == "__main__":
    main()
