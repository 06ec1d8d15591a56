"""scales-viz score: a file of latents scored chunk by chunk (one process, or Ray)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import scales_viz.batch as batch
from scales_viz.batch import inspect_latents, score_file
from scales_viz.cli import main
from scales_viz.errors import InputValueError
from scales_viz.models import load_model
from scales_viz.score import distance_to_data, prior_logpdf


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return load_model("digits-2d")


def _latents(n: int = 37) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 2)) * 1.5


def _numbers(frame: pd.DataFrame, *, objectives: bool = True) -> np.ndarray:
    columns = [c for c in frame.columns if c not in ("decoded", "valid")]
    if not objectives:
        columns = [c for c in columns if not c.startswith("objective:")]
    return frame[columns].to_numpy(dtype=float, na_value=np.nan)


def test_scores_come_back_in_input_order_whatever_the_chunk(digits, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    z = _latents()
    np.save(tmp_path / "z.npy", z)
    info = inspect_latents(tmp_path / "z.npy", 2)
    assert (info.n, info.d, info.kind) == (37, 2, "npy")
    assert score_file(digits, info, tmp_path / "a.parquet", batch=5) == 37
    score_file(digits, info, tmp_path / "b.parquet", batch=64)
    a, b = pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet")
    # Equal to float tolerance (batched BLAS may differ in the last bits with the chunk size):
    # ScaLES and the baselines are float64, the objectives (a float32 classifier here) float32.
    np.testing.assert_allclose(
        _numbers(a, objectives=False), _numbers(b, objectives=False), rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(_numbers(a), _numbers(b), rtol=1e-5, atol=1e-6)
    assert list(a.columns[:6]) == [
        "scales",
        "likelihood",
        "prior",
        "distance_to_data",
        "valid",
        "decoded",
    ]
    assert {f"objective:looks_like_{k}" for k in range(10)} <= set(a.columns)
    # Each column is the library's own score of that row (independently recomputed).
    tensor = torch.from_numpy(z)
    np.testing.assert_allclose(a["scales"], digits.scales(tensor).numpy(), rtol=1e-10)
    np.testing.assert_allclose(a["prior"], prior_logpdf(tensor, digits.prior_scale).numpy())
    expected = distance_to_data(tensor, digits.data_latents.double(), 3).numpy()
    np.testing.assert_allclose(a["distance_to_data"], expected)
    valid = digits.validity(digits.decode(tensor.float()))
    assert a["valid"].tolist() == list(valid)


def test_every_input_format_gives_the_same_rows(digits, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    z = _latents(20)
    np.save(tmp_path / "z.npy", z)
    np.savez(tmp_path / "z.npz", z=z)
    frame = pd.DataFrame(z, columns=["z_0", "z_1"]).assign(note="kept out")
    frame.to_parquet(tmp_path / "z.parquet")
    frame.to_csv(tmp_path / "z.csv", index=False)
    results = []
    for name in ("z.npy", "z.npz", "z.parquet", "z.csv"):
        info = inspect_latents(tmp_path / name, 2)
        score_file(digits, info, tmp_path / f"{name}.out.parquet", batch=8)
        results.append(pd.read_parquet(tmp_path / f"{name}.out.parquet"))
    first = results[0]
    for other in results[1:]:  # float64 scores to 1e-9, the float32 objectives to 1e-5
        np.testing.assert_allclose(
            _numbers(other, objectives=False), _numbers(first, objectives=False), rtol=1e-9
        )
        np.testing.assert_allclose(_numbers(other), _numbers(first), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: np.save(p / "x.npy", np.zeros((4, 3))), "d=3 values each; the model takes d=2"),
        (
            lambda p: np.save(p / "x.npy", np.array([[0.0, 1.0], [np.nan, 0.0]])),
            "row 1 .* NaN or infinite",
        ),
        (lambda p: np.savez(p / "x.npz", latents=np.zeros((2, 2))), "an array named z"),
        (lambda p: (p / "x.csv").write_text("a,b\n1,2\n"), "expected columns z_0"),
        (lambda p: (p / "x.csv").write_text("z_0,z_1\n1,2\n3,inf\n"), "row 1 .* infinite"),
        (lambda p: (p / "x.npy").write_bytes(b"not numpy"), "could not read x.npy"),
        (lambda p: (p / "x.txt").write_text("1 2"), r"\.npy \(n x d\)"),
    ],
)
def test_bad_latents_are_refused_before_any_work(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    make(tmp_path)
    (path,) = [p for p in tmp_path.iterdir() if p.name.startswith("x.")]
    with pytest.raises(InputValueError, match=message):
        inspect_latents(path, 2)


def test_the_cli_names_a_bad_file_and_writes_nothing(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    np.save(tmp_path / "z.npy", np.zeros((3, 5)))
    out = tmp_path / "out.parquet"
    assert main(["score", "digits-2d", str(tmp_path / "z.npy"), "--out", str(out)]) == 2
    assert "d=5 values each; the model takes d=2" in capsys.readouterr().err
    assert main(["score", "no-such-model", str(tmp_path / "z.npy"), "--out", str(out)]) == 2
    assert "is neither a built-in model" in capsys.readouterr().err
    assert not out.exists()


def test_memory_does_not_grow_with_the_number_of_latents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """10^6 latents stream through (read, score, write) with memory bounded by the chunk:
    the scorer here is a stand-in that costs nothing, so the pipeline itself is measured."""
    n = 1_000_000
    np.save(tmp_path / "z.npy", np.random.default_rng(0).normal(size=(n, 2)))

    def cheap(model: object, z: np.ndarray, device: object = None) -> pd.DataFrame:
        return pd.DataFrame({"scales": z[:, 0] + z[:, 1], "valid": z[:, 0] > 0})

    monkeypatch.setattr(batch, "score_chunk", cheap)
    info = inspect_latents(tmp_path / "z.npy", 2)
    tracemalloc.start()
    rows = score_file(None, info, tmp_path / "out.parquet", batch=10_000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert rows == n
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB for {n:,} latents"  # input: 16 MB
    out = pd.read_parquet(tmp_path / "out.parquet")
    z = np.load(tmp_path / "z.npy", mmap_mode="r")
    np.testing.assert_allclose(out["scales"].to_numpy()[-5:], z[-5:, 0] + z[-5:, 1])


@pytest.mark.slow
def test_ray_gives_the_same_rows_in_the_same_order(ray_cluster, digits, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from scales_viz.batch import score_file_ray

    z = _latents(45)
    np.save(tmp_path / "z.npy", z)
    info = inspect_latents(tmp_path / "z.npy", 2)
    score_file(digits, info, tmp_path / "local.parquet", batch=8)
    seen: list[int] = []
    rows = score_file_ray(
        "digits-2d", info, tmp_path / "ray.parquet", batch=8, progress=lambda d, n: seen.append(d)
    )
    assert rows == 45 and seen[-1] == 45
    local, remote = (
        pd.read_parquet(tmp_path / "local.parquet"),
        pd.read_parquet(tmp_path / "ray.parquet"),
    )
    # ScaLES and the baselines in float64 to 1e-9; the digit classifier's objectives are
    # float32 (an actor's thread count may change their last bits).
    for column in ("scales", "likelihood", "prior", "distance_to_data"):
        np.testing.assert_allclose(remote[column], local[column], rtol=1e-9)
    np.testing.assert_allclose(_numbers(remote), _numbers(local), rtol=1e-5, atol=1e-6)
    assert remote["decoded"].tolist() == local["decoded"].tolist()
    assert ray_cluster.is_initialized()  # a cluster it did not start is left running
    # As many actors as the cluster has CPUs: the chunk indices need no read task, so nothing
    # waits for a CPU that an actor holds (this deadlocked when a Ray task read them).
    assert score_file_ray("digits-2d", info, tmp_path / "two.parquet", batch=8, actors=2) == 45
    np.testing.assert_allclose(pd.read_parquet(tmp_path / "two.parquet")["scales"], local["scales"])
