"""The LSO command line: optimize into a store, list/export/import runs, and a killed run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scales_viz.cli import OPTIMIZER_CHOICES, PENALTY_CHOICES, main
from scales_viz.lso.optimizers import OPTIMIZERS, PENALTIES
from scales_viz.lso.store import RunStore


def test_cli_choices_follow_the_library() -> None:
    assert OPTIMIZER_CHOICES == OPTIMIZERS and PENALTY_CHOICES == PENALTIES


def test_optimize_list_export_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "runs.sqlite"
    common = ["--store", str(db)]
    code = main(
        [
            "optimize",
            "digits-2d",
            "--objective",
            "looks_like_3",
            "--optimizer",
            "random",
            "--budget",
            "9",
            "--batch-size",
            "4",
            "--seeds",
            "0,1",
            *common,
        ]
    )
    assert code == 0
    runs = RunStore(db).runs()
    assert sorted(r.seed for r in runs) == [0, 1] and {r.status for r in runs} == {"completed"}
    assert main(["runs", *common, "list"]) == 0
    listed = capsys.readouterr().out
    assert all(r.id in listed for r in runs)
    out = tmp_path / "runs.json"
    assert main(["runs", *common, "export", runs[0].id, "--format", "json", "--out", str(out)]) == 0
    code = main(
        [
            "runs",
            *common,
            "import",
            str(out),
            "--model",
            "digits-2d",
            "--objective",
            "looks_like_3",
        ]
    )
    assert code == 0
    imported = [r for r in RunStore(db).runs() if r.status == "imported"]
    assert [r.name for r in imported] == [f"{runs[0].name} [{runs[0].id[:8]}]"]
    assert len(RunStore(db).points([imported[0].id])) == 9
    # a bad file is refused with the reason and stores nothing
    bad = tmp_path / "bad.csv"
    bad.write_text("step,z_0,objective\n0,0.1,1.0\n")
    assert main(["runs", *common, "import", str(bad), "--model", "digits-2d",
                 "--objective", "looks_like_3"]) == 2  # fmt: skip
    assert "latent size is d=2" in capsys.readouterr().err
    assert len(RunStore(db).runs()) == 3


def test_killed_optimize_keeps_completed_steps_and_reads_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    args = [
        "optimize", "digits-2d", "--objective", "looks_like_7", "--optimizer", "random",
        "--budget", "100000", "--batch-size", "5", "--store", str(db),
    ]  # fmt: skip
    code = f"import sys; from scales_viz.cli import main; sys.exit(main({args!r}))"
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    store = RunStore(db)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            runs = store.runs()
            if runs and len(store.points([runs[0].id])) >= 5 * 4:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the optimiser wrote no steps within 120 s")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (run,) = store.runs()
    assert run.status == "interrupted"
    points = store.points([run.id])
    sizes = points.groupby("step").size()
    assert (sizes == 5).all()  # only whole steps
    assert list(sizes.index) == list(range(len(sizes)))
    assert store.integrity_check() == "ok"
