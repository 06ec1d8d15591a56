"""Throughput of ``scales-viz score``: one process against Ray actor pools of 1 and 2 workers.

Every configuration scores the same `n` and `4n` prior latents of one model into Parquet
(ScaLES, the baselines, validity, decodings, objectives: the whole row). Each worker, and the
one process, runs one thread (``OMP_NUM_THREADS=1``), so the workers count cores. The Ray
cluster is started once, before timing (a cluster is long-lived); each Ray timing includes
starting the actors and loading the model in each, a fixed cost that the two sizes separate
from the throughput.
Configurations are interleaved and repeated; the table gives the median seconds, the fixed
cost, the throughput beyond it and its speed-up over one process, and the per-worker
throughput that the README's plan for 10^7 latents starts from. Writes a section of
bench/RESULTS.md unless --no-write.

Usage: ``python bench/bench_ray.py [--model expressions] [--n 2000] [--repeats 3]``
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch: each worker one thread

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from results import machine, write_section

from scales_viz.batch import inspect_latents, score_file, score_file_ray
from scales_viz.models import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="expressions")
    parser.add_argument("--n", type=int, default=2000, help="latents scored per timing")
    parser.add_argument("--batch", type=int, default=250, help="latents per chunk")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    import ray
    import torch

    torch.set_num_threads(1)
    model = load_model(args.model)
    scale = float(getattr(model, "prior_scale", 1.0))
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4 * args.n, model.latent_dim)) * scale
    folder = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)

    def one_process(path: Path, n: int) -> None:
        score_file(model, info_for(path, n), folder / "one.parquet", batch=args.batch)

    def on_ray(workers: int):  # type: ignore[no-untyped-def]
        def go(path: Path, n: int) -> None:
            score_file_ray(
                args.model,
                info_for(path, n),
                folder / f"ray{workers}.parquet",
                batch=args.batch,
                actors=workers,
            )

        return go

    def info_for(path: Path, n: int):  # type: ignore[no-untyped-def]
        info = inspect_latents(path, model.latent_dim)
        assert info.n == n
        return info

    small, large = args.n, 4 * args.n
    paths = {small: folder / "small.npy", large: folder / "large.npy"}
    np.save(paths[small], z[:small])
    np.save(paths[large], z)
    configs = {
        "one process": (one_process, 1),
        "Ray, 1 worker": (on_ray(1), 1),
        "Ray, 2 workers": (on_ray(2), 2),
    }
    times: dict[tuple[str, int], list[float]] = {(c, n): [] for c in configs for n in paths}
    for repeat in range(args.repeats):
        for name, (go, _) in configs.items():
            for n, path in paths.items():
                start = time.perf_counter()
                go(path, n)
                times[name, n].append(time.perf_counter() - start)
                print(f"repeat {repeat}: {name}, n={n}: {times[name, n][-1]:.1f} s", flush=True)
    ray.shutdown()

    def marginal(name: str) -> float:
        """Latents per second beyond the fixed cost (actor start, model load): 3n latents
        more take the time difference between the two sizes."""
        extra = statistics.median(times[name, large]) - statistics.median(times[name, small])
        return (large - small) / max(extra, 1e-9)

    base = marginal("one process")
    lines = [
        f"| configuration | n={small} (s) | n={large} (s) | fixed cost (s) | latents/s beyond it "
        "| per worker | speed-up vs one process |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, (_, workers) in configs.items():
        t_small = statistics.median(times[name, small])
        t_large = statistics.median(times[name, large])
        rate = marginal(name)
        fixed = t_small - small / rate
        lines.append(
            f"| {name} | {t_small:.1f} | {t_large:.1f} | {fixed:.1f} | {rate:.0f} | "
            f"{rate / workers:.0f} | {rate / base:.2f}x |"
        )
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        body = (
            f"## `scales-viz score` on Ray ({args.model}, cpu)\n\n"
            f"`python bench/bench_ray.py --model {args.model} --n {args.n} --batch {args.batch} "
            f"--repeats {args.repeats}` on {dt.date.today().isoformat()}; {machine()}; "
            f"{small} and {large} prior latents per timing, every row complete; one thread "
            f"per worker; the local Ray cluster started before timing, so each Ray timing "
            f"includes starting its actors and loading the model in each (the fixed cost); "
            f"median of {args.repeats}, interleaved. Throughput beyond the fixed cost = "
            f"{large - small} / (time at n={large} - time at n={small}).\n\n{table}\n"
        )
        write_section("bench_ray", body)


if __name__ == "__main__":
    main()
