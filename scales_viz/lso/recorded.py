"""One optimiser run recorded in the run store, from creation to its final status.

Used by every place that runs an optimiser for a user: ``scales-viz optimize`` and the
dashboard's Optimisers view (a sweep's driver records steps that arrive from its workers, so it
uses the store directly, with the same statuses).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from scales_viz.errors import ScalesVizError
from scales_viz.lso.optimizers import Budget, Settings, optimizer_label, run
from scales_viz.lso.records import RunResult, RunStatus, Step
from scales_viz.lso.store import RunStore, StoredRun

if TYPE_CHECKING:
    from scales_viz.models.base import LatentModel

__all__ = ["STOPPED_REASON", "run_recorded"]

#: Why a run interrupted by its caller (Ctrl-C, a page's rerun) is marked stopped.
STOPPED_REASON = "stopped before it finished; completed steps are kept"


def run_recorded(
    store: RunStore,
    model: LatentModel,
    objective: str,
    *,
    optimizer: str,
    budget: Budget,
    seed: int,
    settings: Settings,
    on_created: Callable[[StoredRun], None] | None = None,
    on_step: Callable[[StoredRun, Step], None] | None = None,
    device: torch.device | None = None,
) -> tuple[StoredRun, RunResult]:
    """Create a run in `store`, record each step as it comes, and finish it.

    The run ends ``completed``/``stopped``/``failed`` as the optimiser says; ``failed`` with
    the message when it raises a :class:`ScalesVizError` (re-raised); ``stopped`` when anything
    else interrupts it (KeyboardInterrupt, Streamlit's stop on a rerun; re-raised). Every step
    recorded before the end is kept.

    Args:
        on_created: called with the new run before the optimiser starts.
        on_step: called after each step is stored (progress, live figures).
    """
    info = store.create_run(
        model=model.name,
        task=objective,
        optimizer=optimizer_label(optimizer, settings.penalty),
        settings=settings.record(optimizer),
        seed=seed,
        latent_dim=model.latent_dim,
    )
    if on_created is not None:
        on_created(info)

    def record(step: Step) -> None:
        store.add_step(info.id, step)
        if on_step is not None:
            on_step(info, step)

    try:
        result = run(
            model,
            objective,
            optimizer=optimizer,
            budget=budget,
            seed=seed,
            settings=settings,
            callback=record,
            device=device,
        )
    except ScalesVizError as exc:
        store.finish_run(info.id, RunStatus.FAILED, str(exc))
        raise
    except BaseException:
        store.finish_run(info.id, RunStatus.STOPPED, STOPPED_REASON)
        raise
    store.finish_run(info.id, result.status, result.reason)
    return info, result
