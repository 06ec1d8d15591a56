"""Load time of each built-in model (in a fresh Python process, and again in a warm one),
and the Model view's live measurement of each.

The load target (issue 3) is under 3 s per built-in. "Model view" is what that view computes
when it opens (``evaluate_model`` at its default of 200 points per group: ScaLES and the
baselines of data, prior and far latents, their decodings and AUROCs), on all threads; the
target (issue 16) is under 20 s. "cold" runs
``python -c "from scales_viz.models import load_model; load_model(NAME)"`` in a new process
(imports of torch, RDKit and the package included); "warm" is ``load_model(NAME)`` in this
process after one load. Writes a section of bench/RESULTS.md unless --no-write.

Usage: ``python bench/bench_models.py [--repeats 5] [--no-write]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import subprocess
import sys
import time

from results import machine, write_section

from scales_viz.models import list_models, load_model

TARGET_SECONDS = 3.0
VIEW_TARGET_SECONDS = 20.0
VIEW_GROUP_SIZE = 200  # the Model view's default (scales_viz_app/views/model.py)


def cold_seconds(name: str) -> float:
    """Wall time of a new process that imports the package and loads `name`."""
    code = f"from scales_viz.models import load_model; load_model({name!r})"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def warm_seconds(name: str) -> float:
    """Wall time of one load_model call in this process."""
    start = time.perf_counter()
    load_model(name)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    from scales_viz.evaluation import evaluate_model

    lines = [
        "| model | cold process (s) | warm load (s) | under 3 s | Model view (s) | under 20 s |",
        "|---|---|---|---|---|---|",
    ]
    for info in list_models():
        if not info.available:
            lines.append(f"| {info.name} | unavailable: {info.reason} | | |")
            continue
        cold = statistics.median(cold_seconds(info.name) for _ in range(args.repeats))
        load_model(info.name)
        warm = statistics.median(warm_seconds(info.name) for _ in range(args.repeats))
        verdict = "yes" if cold < TARGET_SECONDS else "**no**"
        model = load_model(info.name)
        start = time.perf_counter()
        evaluate_model(model, group_size=VIEW_GROUP_SIZE, reconstruction=False)
        view = time.perf_counter() - start
        view_verdict = "yes" if view < VIEW_TARGET_SECONDS else "**no**"
        lines.append(
            f"| {info.name} | {cold:.2f} | {warm:.3f} | {verdict} | {view:.1f} | {view_verdict} |"
        )
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    if not args.no_write:
        body = (
            "## Built-in model load time and the Model view\n\n"
            f"`python bench/bench_models.py --repeats {args.repeats}` on "
            f"{dt.date.today().isoformat()}; {machine()}; median of {args.repeats}.\n\n{table}\n"
        )
        write_section("bench_models", body)


if __name__ == "__main__":
    main()
