"""Work on a Ray cluster (serve --ray): the same slices and map scores as one process, in
order, with progress, and a cancel that leaves the actors usable."""

from __future__ import annotations

import numpy as np
import pytest

from scales_viz.models import load_model
from scales_viz.scoring import all_scores
from scales_viz.slices import SLICE_CHUNK, SliceSpec, axis_plane, compute_slice

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(ray_cluster):  # type: ignore[no-untyped-def]
    from scales_viz.cluster import Cluster

    made = Cluster("local", "digits-2d", actors=1)
    yield made
    made.close()


def test_a_slice_on_the_cluster_is_the_slice_of_one_process(cluster) -> None:  # type: ignore[no-untyped-def]
    model = load_model("digits-2d")
    spec = SliceSpec(axis_plane(np.zeros(2), 0, 1), 2.5, 33)  # 1089 cells: several chunks
    assert spec.resolution**2 > 4 * SLICE_CHUNK
    seen: list[tuple[int, int]] = []
    remote = compute_slice(
        model,
        spec,
        objectives=("looks_like_7",),
        cluster=cluster,
        progress=lambda d, t: seen.append((d, t)),
    )
    local = compute_slice(model, spec, objectives=("looks_like_7",))
    for name, values in local.scores.items():
        np.testing.assert_allclose(remote.scores[name], values, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(remote.valid, local.valid)
    np.testing.assert_allclose(
        remote.objectives["looks_like_7"], local.objectives["looks_like_7"], atol=1e-5
    )
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1] == (1089, 1089)
    assert "1 CPU workers" in cluster.describe()


def test_map_scores_on_the_cluster_are_those_of_one_process(cluster) -> None:  # type: ignore[no-untyped-def]
    model = load_model("digits-2d")
    z = np.random.default_rng(1).normal(size=(600, 2)).astype(np.float32) * 2
    remote, remote_text = all_scores(model, z, cluster=cluster)
    local, local_text = all_scores(model, z)
    assert remote.keys() == local.keys() and remote_text == local_text
    np.testing.assert_allclose(remote["scales"], local["scales"], rtol=1e-9)
    np.testing.assert_array_equal(remote["valid"], local["valid"])


def test_a_cancelled_grid_stops_and_the_actors_still_work(cluster) -> None:  # type: ignore[no-untyped-def]
    model = load_model("digits-2d")
    spec = SliceSpec(axis_plane(np.zeros(2), 0, 1), 2.0, 65)
    calls: list[int] = []

    def cancel_after_first(done: int, total: int) -> None:
        calls.append(done)
        raise KeyboardInterrupt  # what the page's Cancel does inside the progress callback

    with pytest.raises(KeyboardInterrupt):
        compute_slice(model, spec, cluster=cluster, progress=cancel_after_first)
    assert len(calls) == 1
    small = SliceSpec(axis_plane(np.zeros(2), 0, 1), 1.0, 9)
    again = compute_slice(model, small, cluster=cluster)
    np.testing.assert_allclose(
        again.scores["scales"], compute_slice(model, small).scores["scales"], rtol=1e-9
    )


def test_serve_ray_hands_the_address_to_the_dashboard(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import scales_viz.cli as cli
    from scales_viz.cluster import RAY_ENV

    seen: dict[str, str | None] = {}

    def fake_call(command: list[str], cwd: object = None) -> int:
        seen["address"] = os.environ.get(RAY_ENV)
        return 0

    monkeypatch.delenv(RAY_ENV, raising=False)
    monkeypatch.setattr(cli.subprocess, "call", fake_call)
    assert cli.main(["serve", "--port", "8601", "--ray", "ray://head:10001"]) == 0
    assert seen["address"] == "ray://head:10001"


def test_the_slices_view_sends_a_large_grid_to_the_cluster(
    ray_cluster, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from apptest import APP, TIMEOUT, clean
    from streamlit.testing.v1 import AppTest

    from scales_viz.cluster import RAY_ENV, Cluster

    calls: list[str] = []
    original = Cluster.map

    def spy(self: Cluster, fn: object, chunks: list[object], **kwargs: object) -> list[object]:
        calls.append(getattr(fn, "__name__", ""))
        return original(self, fn, chunks, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Cluster, "map", spy)
    monkeypatch.setenv(RAY_ENV, "local")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["model_name"] = "digits-2d"
    at.session_state["slice_resolution"] = 33  # 1089 cells: over CLUSTER_MIN_CELLS
    at.session_state["slice_seed"] = 9173  # a plane no other test computed (grids are cached)
    at.run()
    at.switch_page("views/slices.py")
    at.run()
    clean(at)
    assert calls == ["slice_chunk"]
    assert len(at.get("plotly_chart")) == 1
    from scales_viz_app.ui.state import _cluster

    _cluster("digits-2d", "local").close()  # give the CPU back to the other Ray tests
    _cluster.clear()


def test_a_busy_cluster_is_refused_with_a_clear_error(
    ray_cluster, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from scales_viz.cluster import Cluster, ClusterError

    # Every CPU held by other work: refuse at once rather than wait for one forever.
    monkeypatch.setattr(ray_cluster, "available_resources", lambda: {"CPU": 0.0})
    with pytest.raises(ClusterError, match="no free CPU"):
        Cluster("local", "digits-2d")
