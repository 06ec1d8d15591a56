"""The run store: round trips, errors, atomic imports, crash durability and concurrent use."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _store_writer import LATENT_DIM, make_step

from scales_viz.errors import InputValueError
from scales_viz.lso.records import RunStatus, Step, points_frame, steps_from_points
from scales_viz.lso.store import (
    INTERRUPTED_REASON,
    STORE_ENV,
    NewRun,
    RunStore,
    StoreError,
    default_store_path,
)

WRITER = Path(__file__).parent / "_store_writer.py"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "deep" / "folder" / "runs.sqlite")


def _step(step: int, n: int = 4, d: int = 2, seed: int = 0) -> Step:
    rng = np.random.default_rng(seed + 100 * step)
    objective = rng.normal(size=n)
    objective[1 % n] = np.nan
    scales = rng.normal(size=n)
    scales[-1] = -np.inf
    return Step(
        step=step,
        z=rng.normal(size=(n, d)),
        objective=objective,
        valid=np.isfinite(objective),
        decoded=[None if k % 2 else f"obj,{k}\n'\"" for k in range(n)],
        scales=scales,
        likelihood=np.full(n, np.nan) if step == 0 else rng.normal(size=n),
        wall_time=0.25 * step,
    )


def _new_run(store: RunStore, d: int = 2, **fields: object) -> str:
    args: dict[str, object] = {
        "model": "m",
        "task": "t",
        "optimizer": "opt",
        "settings": {"batch": 4},
        "seed": 7,
        "latent_dim": d,
    }
    args.update(fields)
    return store.create_run(**args).id  # type: ignore[arg-type]


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return int(proc.stdout)


# --------------------------------------------------------------------------------------------
# Paths and opening
# --------------------------------------------------------------------------------------------


def test_default_store_path_honours_env_and_xdg(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(STORE_ENV, raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_store_path() == tmp_path / "home/.local/share/scales-viz/runs.sqlite"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_store_path() == tmp_path / "xdg/scales-viz/runs.sqlite"
    monkeypatch.setenv(STORE_ENV, str(tmp_path / "explicit.sqlite"))
    assert default_store_path() == tmp_path / "explicit.sqlite"
    assert RunStore().path == tmp_path / "explicit.sqlite"


def test_new_store_is_wal_with_schema_and_creates_folders(store: RunStore) -> None:
    assert store.path.exists()
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert store.integrity_check() == "ok"
    assert RunStore(store.path).runs() == []  # reopening keeps it


def test_not_a_store_and_newer_schema_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match="not a usable"):
        RunStore(junk)
    newer = tmp_path / "newer.sqlite"
    with sqlite3.connect(newer) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="schema version 99"):
        RunStore(newer)


# --------------------------------------------------------------------------------------------
# Round trips and edits
# --------------------------------------------------------------------------------------------


def test_steps_round_trip_through_points(store: RunStore) -> None:
    run_id = _new_run(store)
    steps = [_step(k) for k in range(3)]
    record = store.recorder(run_id)
    for step in steps:
        record(step)
    got = store.points([run_id])
    expected = points_frame(steps, run=run_id, optimizer="opt", seed=7)
    pd.testing.assert_frame_equal(got, expected)
    assert got["objective"].isna().sum() == 3  # NaN objective kept (stored as NULL)
    assert got["likelihood"].iloc[:4].isna().all()
    assert np.isneginf(got["scales"]).sum() == 3
    assert got["decoded"].iloc[1] is None
    assert got["decoded"].iloc[0] == "obj,0\n'\""
    back = steps_from_points(got)
    for a, b in zip(back, steps, strict=True):
        assert a.step == b.step
        np.testing.assert_array_equal(a.z, b.z)
        np.testing.assert_array_equal(a.objective, b.objective)
        assert list(a.decoded) == list(b.decoded)


def test_create_run_metadata(store: RunStore) -> None:
    info = store.create_run(
        model="m",
        task="t",
        optimizer="gp",
        settings={"lr": np.float64(0.5), "n": np.int64(3), "ids": np.arange(2)},
        seed=3,
        latent_dim=2,
    )
    assert info.name == "gp seed 3"
    assert info.status == "running" and info.pid == os.getpid() and info.host
    assert len(info.id) == 32 and int(info.id, 16) >= 0
    assert info.created.endswith("+00:00")
    assert info.settings == {"lr": 0.5, "n": 3, "ids": [0, 1]}
    assert store.run(info.id) == info


def test_non_json_settings_are_refused(store: RunStore) -> None:
    with pytest.raises(InputValueError, match="JSON"):
        _new_run(store, settings={"f": object()})
    assert store.runs() == []


def test_runs_newest_first_and_by_model(store: RunStore) -> None:
    ids = [_new_run(store, model="a" if k != 1 else "b") for k in range(4)]
    assert [r.id for r in store.runs()] == ids[::-1]
    assert [r.id for r in store.runs(model="a")] == [ids[3], ids[2], ids[0]]
    assert store.runs(model="zzz") == []


def test_finish_rename_delete(store: RunStore) -> None:
    run_id = _new_run(store)
    other = _new_run(store)
    store.add_step(run_id, _step(0))
    store.add_step(other, _step(0))
    store.finish_run(run_id, RunStatus.COMPLETED, "budget spent")
    assert (store.run(run_id).status, store.run(run_id).reason) == ("completed", "budget spent")
    with pytest.raises(InputValueError, match="unknown run status"):
        store.finish_run(run_id, "exploded", "?")
    store.rename_run(run_id, "  my favourite ")
    assert store.run(run_id).name == "my favourite"
    with pytest.raises(InputValueError):
        store.rename_run(run_id, "  ")
    store.delete_run(run_id)
    assert [r.id for r in store.runs()] == [other]
    with pytest.raises(InputValueError, match=f"no run '{run_id}'"):
        store.run(run_id)
    with sqlite3.connect(store.path) as conn:  # the points went with it (cascade)
        counts = dict(conn.execute("SELECT run, COUNT(*) FROM points GROUP BY run").fetchall())
    assert counts == {other: 4}
    for call in (store.delete_run, lambda i: store.rename_run(i, "x")):
        with pytest.raises(InputValueError, match="no run"):
            call(run_id)


def test_missing_runs_are_clear_errors(store: RunStore) -> None:
    with pytest.raises(InputValueError, match=r"no run 'nope' in .*runs\.sqlite"):
        store.run("nope")
    with pytest.raises(InputValueError, match="no run 'nope'"):
        store.add_step("nope", _step(0))
    with pytest.raises(InputValueError, match="no run 'nope'"):
        store.points(["nope"])
    with pytest.raises(InputValueError, match="no run 'nope'"):
        store.recorder("nope")


def test_latent_size_mismatch_names_both(store: RunStore) -> None:
    run_id = _new_run(store, d=2)
    with pytest.raises(InputValueError, match=r"latent size 3.*latent_dim 2"):
        store.add_step(run_id, _step(0, d=3))
    assert len(store.points([run_id])) == 0


def test_repeated_step_is_refused_and_leaves_the_first(store: RunStore) -> None:
    run_id = _new_run(store)
    store.add_step(run_id, _step(0, n=4))
    with pytest.raises(InputValueError, match="already has step 0"):
        store.add_step(run_id, _step(0, n=6, seed=1))
    got = store.points([run_id])
    assert len(got) == 4
    np.testing.assert_array_equal(got[["z_0", "z_1"]].to_numpy(), _step(0, n=4).z)


def test_points_of_several_runs_in_given_order(store: RunStore) -> None:
    a, b = _new_run(store, optimizer="A", seed=1), _new_run(store, optimizer="B", seed=2)
    for k in (1, 0):  # written out of order
        store.add_step(a, _step(k))
        store.add_step(b, _step(k, n=2))
    got = store.points([b, a, b])
    assert list(got["run"]) == [b] * 4 + [a] * 8
    assert list(got["optimizer"]) == ["B"] * 4 + ["A"] * 8
    assert list(got["seed"]) == [2] * 4 + [1] * 8
    assert list(got["step"]) == [0, 0, 1, 1] + [0] * 4 + [1] * 4
    assert list(got["index"]) == [0, 1, 0, 1] + [0, 1, 2, 3] * 2
    assert store.points([]).empty
    with pytest.raises(InputValueError, match="single id"):
        store.points(a)


def test_points_refuse_mixed_latent_sizes(store: RunStore) -> None:
    a, b = _new_run(store, d=2), _new_run(store, d=3)
    with pytest.raises(InputValueError, match="different latent sizes"):
        store.points([a, b])
    assert list(store.points([b]).columns[5:8]) == ["z_0", "z_1", "z_2"]


# --------------------------------------------------------------------------------------------
# Imports: one transaction
# --------------------------------------------------------------------------------------------


def _import_frame(n: int = 5, d: int = 2) -> pd.DataFrame:
    frame = points_frame([_step(0, n=n, d=d)], run="x", optimizer="o", seed=0)
    return frame.drop(columns=["run", "optimizer", "seed"])


def test_import_run_stores_points_with_status_imported(store: RunStore) -> None:
    frame = _import_frame()
    info = store.import_run(
        model="m", task="t", optimizer="bo", settings={"source": "f.csv"}, seed=4,
        latent_dim=2, points=frame, name="theirs",
    )  # fmt: skip
    assert (info.status, info.name, info.pid, info.host) == ("imported", "theirs", None, "")
    got = store.points([info.id])
    pd.testing.assert_frame_equal(
        got.drop(columns=["run", "optimizer", "seed"]), frame, check_dtype=False
    )
    assert store.runs()[0].status == "imported"


def test_failed_import_leaves_no_run(store: RunStore, monkeypatch: pytest.MonkeyPatch) -> None:
    items = [(NewRun("m", "t", "o", 0, 2, name=f"r{k}"), _import_frame()) for k in range(3)]
    calls = []
    original = RunStore._insert_points

    def failing(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
        calls.append(len(rows))
        if len(calls) == 2:  # the first run and its points are already inserted
            raise RuntimeError("disk on fire")
        original(conn, rows)

    monkeypatch.setattr(RunStore, "_insert_points", staticmethod(failing))
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.import_runs_atomic(items)
    assert calls == [5, 5]
    assert store.runs() == []
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM points").fetchone()[0] == 0
    monkeypatch.undo()
    assert [r.name for r in store.import_runs_atomic(items)] == ["r0", "r1", "r2"]


def test_import_with_bad_points_stores_nothing(store: RunStore) -> None:
    good = _import_frame()
    repeated = pd.concat([good, good.iloc[[0]]], ignore_index=True)
    wrong_d = _import_frame(d=3)
    for bad, message in ((repeated, "appears twice"), (wrong_d, "latent size 3")):
        with pytest.raises(InputValueError, match=message):
            store.import_runs_atomic(
                [(NewRun("m", "t", "o", 0, 2), good), (NewRun("m", "t", "o", 0, 2), bad)]
            )
    assert store.runs() == []


# --------------------------------------------------------------------------------------------
# Dead processes, crashes and concurrency
# --------------------------------------------------------------------------------------------


def test_runs_of_dead_processes_on_this_host_become_interrupted(store: RunStore) -> None:
    mine, dead, elsewhere = _new_run(store), _new_run(store), _new_run(store)
    finished = _new_run(store)
    store.finish_run(finished, RunStatus.FAILED, "boom")
    pid = _dead_pid()
    with sqlite3.connect(store.path) as conn:
        conn.execute(
            "UPDATE runs SET pid = ? WHERE id IN (?, ?, ?)", (pid, dead, elsewhere, finished)
        )
        conn.execute("UPDATE runs SET host = 'another-host' WHERE id = ?", (elsewhere,))
    assert store.run(dead).status == "interrupted"
    statuses = {r.id: (r.status, r.reason) for r in store.runs()}
    assert statuses[dead] == ("interrupted", INTERRUPTED_REASON)
    assert statuses[mine][0] == "running"  # this process is alive
    assert statuses[elsewhere][0] == "running"  # cannot tell for another host
    assert statuses[finished] == ("failed", "boom")


def _check_writer_steps(store: RunStore, run_id: str, points: int) -> list[int]:
    got = store.points([run_id])
    steps = sorted(set(got["step"]))
    assert steps == list(range(len(steps)))
    for step, group in got.groupby("step"):
        expected = points_frame(
            [make_step(int(str(step)), points)], run=run_id, optimizer="writer", seed=0
        )
        pd.testing.assert_frame_equal(group.reset_index(drop=True), expected)
    return steps


def test_killed_writer_keeps_every_committed_step(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    points = 2000  # a step takes some milliseconds: the kill often lands inside one
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(db), "--points", str(points), "--sleep", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("run "), first + proc.stderr.read()  # type: ignore[union-attr]
        run_id = first.split()[1]
        printed: list[int] = []
        while len(printed) < 3:
            line = proc.stdout.readline()
            assert line, "writer ended early: " + proc.stderr.read()  # type: ignore[union-attr]
            printed.append(int(line))
        time.sleep(random.uniform(0.0, 0.03))
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    printed += [int(line) for line in rest.split()]
    store = RunStore(db)
    assert store.integrity_check() == "ok"
    steps = _check_writer_steps(store, run_id, points)  # every stored step complete
    assert set(printed) <= set(steps)  # every reported commit is there
    assert len(steps) <= len(printed) + 1  # at most one committed but not yet reported
    (info,) = store.runs()
    assert (info.status, info.reason) == ("interrupted", INTERRUPTED_REASON)


def test_concurrent_thread_writer_and_reader(store: RunStore) -> None:
    run_id = _new_run(store, d=LATENT_DIM)
    errors: list[BaseException] = []
    n_steps, n_points = 50, 20

    def write() -> None:
        try:
            writer = RunStore(store.path)
            for k in range(n_steps):
                writer.add_step(run_id, make_step(k, n_points))
            writer.finish_run(run_id, RunStatus.COMPLETED, "done")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    seen: list[int] = []
    while thread.is_alive() or not seen:
        assert len(store.runs()) == 1
        count = len(store.points([run_id]))
        assert count % n_points == 0  # never a partial step
        seen.append(count)
    thread.join()
    assert errors == []
    assert seen == sorted(seen)
    assert len(store.points([run_id])) == n_steps * n_points
    assert store.run(run_id).status == "completed"
    assert len(set(seen)) > 1  # the reads really overlapped the writes


def test_concurrent_process_writer_and_reader(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    store = RunStore(db)
    n_steps, n_points = 50, 50
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(db), "--steps", str(n_steps), "--points",
         str(n_points), "--sleep", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )  # fmt: skip
    reads = 0
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        for info in store.runs():
            count = len(store.points([info.id]))
            assert count % n_points == 0
            reads += 1
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.split()[-1] == "done"
    (info,) = store.runs()
    assert info.status == "completed"
    assert _check_writer_steps(store, info.id, n_points) == list(range(n_steps))
    assert reads > 0


def test_settings_survive_as_json(store: RunStore) -> None:
    run_id = _new_run(store, settings={"nested": {"a": [1, 2.5, None]}, "nan": math.nan})
    with sqlite3.connect(store.path) as conn:
        text = conn.execute("SELECT settings FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
    assert json.loads(text)["nested"] == {"a": [1, 2.5, None]}
    assert store.run(run_id).settings["nested"] == {"a": [1, 2.5, None]}
    assert math.isnan(store.run(run_id).settings["nan"])
