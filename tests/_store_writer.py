"""Write steps into a run store from another process (for tests/test_store.py).

Usage: ``python tests/_store_writer.py DB_PATH [--steps N] [--points P] [--sleep S]``

Creates one run (d = 3), prints ``run <id>``, then writes steps 0, 1, ... (each one
transaction) and prints each step's number once it is committed. With ``--steps`` it stops
after N steps, marks the run completed and prints ``done``; without, it runs until killed.
Point `i` of step `s` has ``z = (s, i, s * 1000 + i)`` and objective ``s + i / 1000``, so a
reader can check every stored value.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from scales_viz.lso.records import RunStatus, Step
from scales_viz.lso.store import RunStore

LATENT_DIM = 3


def make_step(step: int, points: int) -> Step:
    """The deterministic step `step` with `points` points."""
    i = np.arange(points, dtype=np.float64)
    z = np.column_stack([np.full(points, float(step)), i, step * 1000.0 + i])
    objective = step + i / 1000.0
    objective[::7] = np.nan
    return Step(
        step=step,
        z=z,
        objective=objective,
        valid=np.isfinite(objective),
        decoded=[f"s{step}p{k}" for k in range(points)],
        scales=-i,
        likelihood=-2.0 * i,
        wall_time=0.1 * step,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--sleep", type=float, default=0.01)
    args = parser.parse_args(argv)
    store = RunStore(args.db)
    run = store.create_run(
        model="writer-model",
        task="writer-task",
        optimizer="writer",
        settings={"points": args.points},
        seed=0,
        latent_dim=LATENT_DIM,
    )
    print(f"run {run.id}", flush=True)
    step = 0
    while args.steps is None or step < args.steps:
        store.add_step(run.id, make_step(step, args.points))
        print(step, flush=True)
        step += 1
        if args.sleep:
            time.sleep(args.sleep)
    store.finish_run(run.id, RunStatus.COMPLETED, "budget spent")
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
