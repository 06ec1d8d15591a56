"""Interactive work on a Ray cluster: actors that hold a model and score chunks on demand.

``scales-viz serve --ray ADDRESS`` gives the dashboard a :class:`Cluster` per model: a few
Ray actors, each with the model loaded once (on a GPU where the cluster has them), kept for the
life of the server. Large Slices grids (:func:`scales_viz.slices.compute_slice`) and the
scoring of model maps (:func:`scales_viz.projection.build_map`) then send their chunks to the
actors with :meth:`Cluster.map`, which returns the results in order, reports progress as chunks
complete, and cancels what is still queued when the caller stops (the page's Cancel raises
inside the progress callback). The functions mapped are module-level functions of
``scales_viz`` (pickled by reference), called on the actor as ``fn(model, chunk, **kwargs)``.
Ray is imported only here, only when a cluster is made.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from scales_viz.errors import InputValueError, ScalesVizError

if TYPE_CHECKING:
    from scales_viz.models.loading import ModelSpec

__all__ = ["CLUSTER_MIN_CELLS", "RAY_ENV", "Cluster", "ClusterError"]

#: Seconds the workers have to start and load the model.
READY_TIMEOUT_S = 120.0
#: The environment variable ``serve --ray ADDRESS`` sets for the dashboard.
RAY_ENV = "SCALES_VIZ_RAY"
#: Grids of at least this many cells (and every map that is built) go to the cluster;
#: smaller ones are quicker here than a round trip.
CLUSTER_MIN_CELLS = 1024


class ClusterError(ScalesVizError, RuntimeError):
    """The Ray cluster cannot take the work (no free resources, workers that fail to start)."""


class _ModelActor:
    """A Ray actor holding one model."""

    def __init__(self, spec: str | ModelSpec, allow_code: bool) -> None:
        import torch

        from scales_viz.models import load_model

        self.model = load_model(spec, allow_code=allow_code)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def call(self, fn: Callable[..., Any], chunk: Any, kwargs: dict[str, Any]) -> Any:
        return fn(self.model, chunk, device=self.device, **kwargs)


class Cluster:
    """Actors on a Ray cluster, each holding the model `spec` names.

    Args:
        address: a Ray address, or ``"local"`` (a cluster on this machine).
        spec: a model spec (string or :class:`~scales_viz.models.ModelSpec`) that every node
            can load (built-in names always can; paths must exist on every node).
        actors: how many (default: one per GPU, else one per CPU but one, at least one).
        allow_code: whether a ``python:module:factory`` spec may run (the command line's).

    Raises:
        MissingExtraError: Ray is not installed.
    """

    def __init__(
        self,
        address: str,
        spec: str | ModelSpec,
        *,
        actors: int | None = None,
        allow_code: bool = False,
    ) -> None:
        from scales_viz.batch import connect_ray

        self.address = address
        self._ray = connect_ray(address)
        resources = self._ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        count = actors or max(1, gpus or int(resources.get("CPU", 1)) - 1)
        if count < 1:
            raise InputValueError(f"a cluster needs at least one actor; got {count}.")
        # Never wait for resources that other work holds: as many actors as are free now.
        free = int(self._ray.available_resources().get("GPU" if gpus else "CPU", 0))
        if free < 1:
            kind = "GPU" if gpus else "CPU"
            raise ClusterError(f"the Ray cluster at {address} has no free {kind} for a worker.")
        count = min(count, free)
        options = {"num_gpus": 1} if gpus else {"num_cpus": 1}
        self._remote = self._ray.remote(**options)(_ModelActor)
        self._spec, self._allow_code = spec, allow_code
        self.count = count
        self.gpus = bool(gpus)
        self.actors: list[Any] = []  # started on first use, then kept

    def __len__(self) -> int:
        return self.count

    def _started(self) -> list[Any]:
        """The actors, started (and their model loaded) on first use.

        Raises:
            ClusterError: they were not ready within READY_TIMEOUT_S (no room on the cluster,
                or the model could not be loaded there).
        """
        if not self.actors:
            actors = [self._remote.remote(self._spec, self._allow_code) for _ in range(self.count)]
            try:
                self._ray.get([a.__ray_ready__.remote() for a in actors], timeout=READY_TIMEOUT_S)
            except Exception as exc:
                for actor in actors:
                    self._ray.kill(actor)
                raise ClusterError(
                    f"the model's {self.count} workers did not start on the Ray cluster at "
                    f"{self.address} within {READY_TIMEOUT_S:.0f} s: {exc}"
                ) from exc
            self.actors = actors
        return self.actors

    def describe(self) -> str:
        where = "local Ray cluster" if self.address == "local" else f"Ray cluster {self.address}"
        kind = "GPU" if self.gpus else "CPU"
        return f"{where}, {len(self)} {kind} workers"

    def map(
        self,
        fn: Callable[..., Any],
        chunks: Sequence[Any],
        *,
        progress: Callable[[int, int], None] | None = None,
        **kwargs: Any,
    ) -> list[Any]:
        """``[fn(model, chunk, device=..., **kwargs) for chunk in chunks]`` on the actors.

        One chunk per actor at a time; results come back in the order of `chunks`. `progress`
        is called with (chunks done, chunks total) as they complete; if it (or anything)
        raises, the chunks not yet done are cancelled and the error propagates.
        """
        ray = self._ray
        total = len(chunks)
        results: list[Any] = [None] * total
        pending: dict[Any, tuple[int, Any]] = {}
        free = list(self._started())
        submitted = done = 0
        try:
            while done < total:
                while free and submitted < total:
                    actor = free.pop()
                    ref = actor.call.remote(fn, chunks[submitted], kwargs)
                    pending[ref] = (submitted, actor)
                    submitted += 1
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    index, actor = pending.pop(ref)
                    results[index] = ray.get(ref)
                    free.append(actor)
                    done += 1
                    if progress is not None:
                        progress(done, total)
        finally:
            for ref in pending:  # a chunk already running on an actor just finishes
                with contextlib.suppress(Exception):
                    ray.cancel(ref)
        return results

    def close(self) -> None:
        for actor in self.actors:
            self._ray.kill(actor)
        self.actors = []
