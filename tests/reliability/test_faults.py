"""Faults: killed optimisers, concurrent writers under a reading app, a decoder that raises.

- 20 ``scales-viz optimize`` processes (two at a time, on one store) are SIGKILLed at random
  moments: from before the run exists to mid-step. Every step a reader saw committed is kept,
  only whole steps are stored, the runs read ``interrupted`` and SQLite's integrity check
  passes.
- Two optimisers write to one store while the Optimisers page reads it over and over: no lost
  rows and no "database is locked" reaching the page.
- A model whose decoder raises: each view shows the error and the app keeps working.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from apptest import clean, new_app

from scales_viz.lso.store import RunStore

KILL_TRIALS = 20
BATCH = 4
START_TIMEOUT_S = 120.0


def _optimize(db: Path, seed: int, budget: int) -> subprocess.Popen[bytes]:
    args = [
        "optimize", "digits-2d", "--objective", "looks_like_7", "--optimizer", "random",
        "--budget", str(budget), "--batch-size", str(BATCH), "--seeds", str(seed),
        "--store", str(db),
    ]  # fmt: skip
    code = f"import sys; from scales_viz.cli import main; sys.exit(main({args!r}))"
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _committed(store: RunStore, seeds: tuple[int, ...]) -> dict[int, int]:
    """Steps stored per seed of `seeds` (what a reader sees now)."""
    runs = [run for run in store.runs() if run.seed in seeds]
    if not runs:
        return {}
    points = store.points([run.id for run in runs])
    seeds = {run.id: run.seed for run in runs}
    out = {run.seed: 0 for run in runs}
    for run_id, group in points.groupby("run"):
        out[seeds[str(run_id)]] = int(group["step"].nunique())
    return out


def _wait_for_a_step(
    store: RunStore, procs: list[subprocess.Popen[bytes]], seeds: tuple[int, ...]
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(n > 0 for n in _committed(store, seeds).values()):
            return
        if all(p.poll() is not None for p in procs):
            errors = [p.stderr.read().decode() if p.stderr else "" for p in procs]
            pytest.fail(f"the optimisers ended before writing a step: {errors}")
        time.sleep(0.05)
    pytest.fail(f"no step was written within {START_TIMEOUT_S:.0f} s")


def test_killed_optimisers_keep_every_committed_step(tmp_path: Path) -> None:
    rng = random.Random(20261124)
    db = tmp_path / "runs.sqlite"
    store = RunStore(db)
    seen_runs = 0
    for trial in range(KILL_TRIALS // 2):
        seeds = (2 * trial, 2 * trial + 1)
        procs = [_optimize(db, seed, budget=100_000) for seed in seeds]
        try:
            if trial < 2:
                # Kill at a raw random moment: often before the run exists, or mid start-up.
                time.sleep(rng.uniform(0.1, 4.0))
            else:
                _wait_for_a_step(store, procs, seeds)
                time.sleep(rng.uniform(0.0, 1.5))
            seen = _committed(store, seeds)  # what a reader saw just before the kill
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGKILL)
            for proc in procs:
                proc.wait()
                if proc.stderr:
                    proc.stderr.close()
        runs = {run.seed: run for run in store.runs() if run.seed in seeds}
        if trial >= 2:
            assert runs, "a run that wrote steps is gone"
        for seed, run in runs.items():
            assert run.status == "interrupted", (trial, seed, run.status)
            points = store.points([run.id])
            sizes = points.groupby("step").size()
            assert (sizes == BATCH).all(), f"trial {trial}: a partial step {sizes.to_dict()}"
            assert list(sizes.index) == list(range(len(sizes)))
            assert len(sizes) >= seen.get(seed, 0), (trial, seed, len(sizes), seen)
        seen_runs += len(runs)
        assert store.integrity_check() == "ok"
    assert seen_runs >= KILL_TRIALS - 4


def test_two_optimisers_and_a_reading_app_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    budget = 48
    procs = [_optimize(db, seed, budget=budget) for seed in (0, 1)]
    store = RunStore(db)
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        reader = RunStore(db)
        while not stop.is_set():
            try:
                runs = reader.runs()
                if runs:
                    reader.points([run.id for run in runs])
            except BaseException as exc:
                errors.append(exc)
                return

    thread = threading.Thread(target=read)
    thread.start()
    pages = 0
    try:
        while any(p.poll() is None for p in procs) or pages == 0:
            runs = store.runs()
            at = new_app("digits-2d", opt_selected_runs=[run.id for run in runs])
            at.switch_page("views/optimizers.py")
            at.run()
            clean(at)
            pages += 1
    finally:
        stop.set()
        thread.join()
        for proc in procs:
            proc.wait(timeout=300)
    outs = [p.stderr.read().decode() if p.stderr else "" for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert not errors, errors
    runs = store.runs()
    assert sorted(run.seed for run in runs) == [0, 1]
    for run in runs:
        assert run.status == "completed"
        assert len(store.points([run.id])) == budget
    assert "locked" not in " ".join(outs).lower()
    assert pages >= 1


BROKEN = "python:user_factory:broken_decoder"
#: Views and whether they decode as soon as they open (Optimisers decodes on a launch only).
VIEWS = {"model": True, "slices": True, "projection": True, "optimizers": False,
         "inspect": True, "learn": False}  # fmt: skip


@pytest.fixture
def broken_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    from scales_viz.models.user import USER_MODELS_ENV

    monkeypatch.setenv(USER_MODELS_ENV, json.dumps([BROKEN]))


@pytest.mark.parametrize("view", VIEWS)
def test_a_decoder_that_raises_stops_one_view_not_the_app(
    view: str, broken_registered: Any
) -> None:
    from scales_viz.selection import Selection

    picked = Selection("broken_decoder", "slices", np.zeros((2, 2)), ("a", "b")).to_state()
    at = new_app("broken_decoder", selection={**picked, "indices": None})
    at.switch_page(f"views/{view}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if VIEWS[view]:  # Learn always teaches on digits-2d
        shown = " ".join(e.value for e in at.error)
        assert "decoder exploded" in shown, shown
    # Same session: pick a working model and the view works again.
    at.session_state["model_name"] = "digits-2d"
    at.run()
    clean(at)
