"""GPU numbers for bench/gpu_check.sh: a 256x256 ScaLES slice of the expressions model and
the throughput of scoring many prior latents.

Needs only torch, numpy and the library (no Streamlit, no Plotly), so it runs on a bare GPU
machine with ``PYTHONPATH=.``. Writes ``gpu_numbers.json`` and ``gpu_numbers.md`` to --out.

Usage: ``python bench/bench_gpu.py --out DIR [--device cuda] [--resolution 256] [--n 1000000]``
(``--device cpu --resolution 17 --n 2000`` is a dry run on any machine).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from scales_viz.models import load_model
from scales_viz.slices import SliceSpec, compute_slice, random_plane

TARGET_SLICE_S = 1.0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_slice(model: object, device: torch.device, resolution: int, repeats: int) -> dict:
    """Median seconds of a full slice (ScaLES, baselines, decodings, validity)."""
    plane = random_plane(torch.zeros(model.latent_dim), seed=0)  # type: ignore[attr-defined]
    spec = SliceSpec(plane, 3.0 * model.prior_scale, resolution)  # type: ignore[attr-defined]
    compute_slice(model, SliceSpec(plane, 3.0, 9), device=device)  # warm-up (kernels, caches)
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        grid = compute_slice(model, spec, device=device)
        _sync(device)
        times.append(time.perf_counter() - start)
    scales = grid.scores["scales"]
    return {
        "resolution": resolution,
        "cells": resolution * resolution,
        "median_s": statistics.median(times),
        "times_s": [round(t, 4) for t in times],
        "finite_share": float(np.isfinite(scales).mean()),
    }


def time_throughput(model: object, device: torch.device, n: int, chunk: int) -> dict:
    """Latents per second of ScaLES alone (float64, exact) over `n` prior samples."""
    decoder = model.decoder_for(torch.zeros(1, dtype=torch.float64, device=device))  # type: ignore[attr-defined]
    z_all = model.sample_prior(n, seed=0).to(device=device, dtype=torch.float64)  # type: ignore[attr-defined]
    from scales_viz.score import scales

    scales(decoder, z_all[:64])  # warm-up
    _sync(device)
    start = time.perf_counter()
    finite = 0
    for i in range(0, n, chunk):
        values = scales(decoder, z_all[i : i + chunk], chunk_size=chunk)
        finite += int(values.isfinite().sum())
    _sync(device)
    seconds = time.perf_counter() - start
    return {"n": n, "seconds": seconds, "per_second": n / seconds, "finite": finite}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--model", default="expressions")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=8192)
    args = parser.parse_args()
    device = torch.device(args.device)
    model = load_model(args.model)
    record = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "model": args.model,
        "slice": time_slice(model, device, args.resolution, args.repeats),
        "throughput": time_throughput(model, device, args.n, args.chunk),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_numbers.json").write_text(json.dumps(record, indent=1) + "\n")
    s, t = record["slice"], record["throughput"]
    verdict = "meets" if s["median_s"] <= TARGET_SLICE_S else "misses"
    lines = [
        f"- {record['device']}, torch {record['torch']}, model `{args.model}`.",
        f"- {s['resolution']}x{s['resolution']} slice (ScaLES, baselines, decodings, validity): "
        f"**{s['median_s']:.3f} s** median of {args.repeats} ({verdict} the "
        f"{TARGET_SLICE_S:g} s goal).",
        f"- ScaLES of {t['n']:,} prior latents (float64, exact): {t['seconds']:.1f} s, "
        f"**{t['per_second']:,.0f} latents/s**.",
    ]
    (args.out / "gpu_numbers.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
