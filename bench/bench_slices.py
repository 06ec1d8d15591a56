"""Slice speed: a ScaLES slice of the expressions model, and redrawing a cached slice view.

"compute" times ``compute_slice`` (ScaLES, baselines, validity and objectives of every cell)
at the given resolution; "ScaLES only" times the ScaLES part alone; their ratio is what the
rest of the slice costs on top (one decoder pass per chunk: decodings and likelihood come
from the logits of the ScaLES pass). "redraw" is what the
server does on a rerun that hits the cache: build the figure (``plot_slice``) and serialise
it to JSON (what Streamlit sends); target under 300 ms. Writes a section of
bench/RESULTS.md unless --no-write.

Usage: ``python bench/bench_slices.py [--model expressions] [--resolution 64] [--device cpu]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

import numpy as np
import torch
from results import machine, write_section

from scales_viz.figures.slices import plot_slice
from scales_viz.models import load_model
from scales_viz.slices import SliceSpec, compute_slice, random_plane

REDRAW_TARGET_MS = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="expressions")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    model = load_model(args.model)
    device = torch.device(args.device)
    spec = SliceSpec(random_plane(np.zeros(model.latent_dim), seed=0), 3.0, args.resolution)
    z = torch.as_tensor(spec.latents(), device=device)
    model.scales(z[:8])  # warm-up
    start = time.perf_counter()
    model.scales(z)
    if device.type == "cuda":
        torch.cuda.synchronize()
    scales_seconds = time.perf_counter() - start
    start = time.perf_counter()
    grid = compute_slice(model, spec, objectives=tuple(model.objectives), device=device)
    compute_seconds = time.perf_counter() - start
    threshold = float(np.percentile(grid.scores["scales"], 5))
    objective = next(iter(model.objectives))
    redraws = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        fig = plot_slice(grid, objective=objective, threshold=threshold)
        payload = fig.to_json()
        redraws.append(time.perf_counter() - start)
    redraw_ms = 1000 * statistics.median(redraws)
    cells = args.resolution**2
    table = "\n".join(
        [
            "| model | grid | device | ScaLES only (s) | full compute (s) | full / ScaLES only "
            "| cells/s (full) | redraw of cached view (ms) | figure JSON (kB) "
            "| redraw under 300 ms |",
            "|---|---|---|---|---|---|---|---|---|---|",
            f"| {args.model} | {args.resolution}x{args.resolution} | {device.type} "
            f"| {scales_seconds:.2f} | {compute_seconds:.2f} "
            f"| **{compute_seconds / scales_seconds:.2f}** | {cells / compute_seconds:.0f} "
            f"| {redraw_ms:.0f} | {len(payload) / 1024:.0f} "
            f"| {'yes' if redraw_ms < REDRAW_TARGET_MS else '**no**'} |",
        ]
    )
    print(table)
    if not args.no_write:
        body = (
            f"## Slice speed ({args.model}, {args.resolution}x{args.resolution}, {device.type})\n\n"
            f"`python bench/bench_slices.py --model {args.model} --resolution {args.resolution} "
            f"--device {device.type}` on {dt.date.today().isoformat()}; {machine()}; "
            f"redraw is the median of {args.repeats}.\n\n{table}\n"
        )
        write_section(f"bench_slices-{args.model}-{args.resolution}-{device.type}", body)


if __name__ == "__main__":
    main()
