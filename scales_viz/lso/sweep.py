"""Sweeps: a grid of optimisers x penalties x seeds x objectives, run in parallel.

Each trial (one optimiser, penalty, seed and objective) runs in a worker: a local process
(:func:`run_sweep` without ``ray``) or a Ray task on a cluster (``ray="local"`` or an
address). Workers never touch the run store: they send their steps back to the driver, which
alone writes them, step by step, so the dashboard shows the runs live. A worker that dies (killed,
out of memory, its node lost) leaves its run marked ``interrupted`` with every step it had sent;
an optimiser that raises leaves its run ``failed``. Ray is imported only when ``ray`` is given.

A sweep is given by flags (``scales-viz sweep MODEL --optimizers ... --penalties ...``) or by a
TOML file whose keys are :class:`SweepConfig`'s fields::

    model = "expressions"
    objectives = ["fit_target"]
    optimizers = ["gp-ascent", "lbfgs"]
    penalties = ["none", "scales"]
    seeds = [0, 1, 2]
    budget = 100
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing as mp
import os
import queue as queue_module
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomllib

from scales_viz.errors import InputValueError
from scales_viz.lso.optimizers import (
    OPTIMIZERS,
    PENALISED,
    PENALTIES,
    Budget,
    Settings,
    optimizer_label,
    run,
)
from scales_viz.lso.records import RunStatus, Step

if TYPE_CHECKING:
    from scales_viz.models.base import LatentModel, VAEModel

__all__ = [
    "SweepConfig",
    "SweepResult",
    "Trial",
    "TrialOutcome",
    "load_sweep_file",
    "run_sweep",
]

#: Why a run whose worker died is marked interrupted.
WORKER_DIED = "its worker died ({why}) after {n} steps; the steps it sent are kept"
#: Why runs still going when the sweep is cancelled are marked stopped.
CANCELLED = "the sweep was cancelled"
#: How long the driver waits for messages before checking its workers (seconds).
POLL_S = 0.2


@dataclass(frozen=True)
class Trial:
    """One run of a sweep."""

    index: int
    objective: str
    optimizer: str
    penalty: str
    seed: int

    @property
    def label(self) -> str:
        return optimizer_label(self.optimizer, self.penalty)


@dataclass(frozen=True)
class SweepConfig:
    """A sweep's grid and the settings every run shares.

    Attributes:
        model: a model spec (built-in name, directory, manifest, ``scales-paper:NAME``...).
        objectives: objectives of the model to optimise.
        optimizers: from ``OPTIMIZERS``.
        penalties: from ``PENALTIES``; an optimiser that takes no penalty (``random``,
            ``lbfgs``) runs once per seed and objective, unpenalised.
        seeds: one run per seed.
        budget: evaluations per run.
        batch_size, n_initial, initial, alpha: as in :class:`~scales_viz.lso.optimizers.Settings`.
    """

    model: str
    objectives: tuple[str, ...]
    optimizers: tuple[str, ...] = ("gp-ascent",)
    penalties: tuple[str, ...] = ("none", "scales")
    seeds: tuple[int, ...] = (0,)
    budget: int = 100
    batch_size: int = 10
    n_initial: int = 20
    initial: str = "data"
    alpha: float = 0.5
    allow_code: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        for name, allowed in (("optimizers", OPTIMIZERS), ("penalties", PENALTIES)):
            values = tuple(getattr(self, name))
            if not values:
                raise InputValueError(f"a sweep needs at least one of {name}; got none.")
            unknown = [v for v in values if v not in allowed]
            if unknown:
                raise InputValueError(f"unknown {name} {unknown}; expected some of {allowed}.")
        if not self.objectives:
            raise InputValueError("a sweep needs at least one objective; got none.")
        if not self.seeds:
            raise InputValueError("a sweep needs at least one seed; got none.")
        for seed in self.seeds:
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise InputValueError(f"seeds must be non-negative integers; got {seed!r}.")
        self.settings("none")  # the shared settings are checked before any work
        Budget(evaluations=self.budget)

    def settings(self, penalty: str) -> Settings:
        return Settings(
            batch_size=self.batch_size,
            n_initial=self.n_initial,
            initial=self.initial,  # type: ignore[arg-type]
            penalty=penalty,  # type: ignore[arg-type]
            alpha=self.alpha,
        )

    def trials(self) -> list[Trial]:
        """The grid, seed-major (every method for seed 0 first) so early results compare."""
        combos: list[tuple[str, str, str, int]] = []
        for seed, objective, optimizer in itertools.product(
            self.seeds, self.objectives, self.optimizers
        ):
            penalties = self.penalties if optimizer in PENALISED else ("none",)
            combos.extend((objective, optimizer, p, seed) for p in penalties)
        unique = list(dict.fromkeys(combos))
        return [Trial(i, o, opt, p, s) for i, (o, opt, p, s) in enumerate(unique)]


def load_sweep_file(path: str | Path, **overrides: Any) -> SweepConfig:
    """A :class:`SweepConfig` from a TOML file (`overrides` win over its keys).

    Raises:
        InputValueError: unreadable or malformed TOML, unknown keys, wrong types.
    """
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputValueError(f"cannot read sweep file {path}: {exc}") from exc
    known = {f.name for f in fields(SweepConfig)} - {"allow_code"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise InputValueError(
            f"unknown keys {unknown} in {path}; expected some of {sorted(known)}."
        )
    table.update({k: v for k, v in overrides.items() if v is not None})
    if "model" not in table or "objectives" not in table:
        raise InputValueError(f"{path} must give model and objectives.")
    for key in ("objectives", "optimizers", "penalties", "seeds"):
        if key in table:
            value = table[key]
            table[key] = tuple([value] if isinstance(value, (str, int)) else value)
    try:
        return SweepConfig(**table)
    except TypeError as exc:
        raise InputValueError(f"malformed sweep file {path}: {exc}") from exc


@dataclass
class TrialOutcome:
    """How a trial ended: its run in the store, status, reason, (if kept) its steps, and the
    pid of the worker process that ran it."""

    trial: Trial
    run_id: str | None = None
    status: RunStatus | None = None
    reason: str = ""
    steps: list[Step] = field(default_factory=list)
    n_steps: int = 0
    pid: int | None = None


@dataclass
class SweepResult:
    outcomes: list[TrialOutcome]
    seconds: float

    def count(self, status: RunStatus) -> int:
        return sum(o.status is status for o in self.outcomes)


# -- the worker side ------------------------------------------------------------------------

_MODELS: dict[tuple[str, bool], VAEModel] = {}


def _model(spec: str, allow_code: bool) -> VAEModel:
    """The model, loaded once per worker process."""
    key = (spec, allow_code)
    if key not in _MODELS:
        from scales_viz.models import load_model

        _MODELS[key] = load_model(spec, allow_code=allow_code)
    return _MODELS[key]


def run_trial(config: SweepConfig, trial: Trial, emit: Callable[[tuple[Any, ...]], None]) -> None:
    """Run one trial, sending ``("start", i, pid)``, ``("step", i, Step)`` and
    ``("end", i, status, reason)`` (an exception becomes a failed end)."""
    import warnings

    for module in ("linear_operator", "gpytorch", "botorch"):
        warnings.filterwarnings("ignore", module=module)
    emit(("start", trial.index, os.getpid()))
    try:
        model = _model(config.model, config.allow_code)
        result = run(
            model,
            trial.objective,
            optimizer=trial.optimizer,
            budget=Budget(evaluations=config.budget),
            seed=trial.seed,
            settings=config.settings(trial.penalty),
            callback=lambda step: emit(("step", trial.index, step)),
        )
    except Exception as exc:  # any error ends this run, not the sweep
        emit(("end", trial.index, RunStatus.FAILED.value, f"{type(exc).__name__}: {exc}"))
        return
    emit(("end", trial.index, result.status.value, result.reason))


def _local_worker(config: SweepConfig, tasks: Any, messages: Any) -> None:
    """A local worker process: runs trials from `tasks` until it reads None."""
    import torch

    torch.set_num_threads(1)
    while (trial := tasks.get()) is not None:
        run_trial(config, trial, messages.put)


def _ray_trial(config: SweepConfig, trial: Trial, messages: Any) -> None:
    import torch

    torch.set_num_threads(1)
    run_trial(config, trial, messages.put)


# -- the driver side ------------------------------------------------------------------------


class _Recorder:
    """The driver's bookkeeping: creates runs when they start, writes steps, ends runs."""

    def __init__(
        self,
        config: SweepConfig,
        trials: Sequence[Trial],
        store: Any,
        model: LatentModel,
        keep_steps: bool,
        on_message: Callable[[tuple[Any, ...], TrialOutcome], None] | None,
    ) -> None:
        self.config = config
        self.store = store
        self.model = model
        self.keep_steps = keep_steps
        self.on_message = on_message
        self.outcomes = [TrialOutcome(t) for t in trials]

    def handle(self, message: tuple[Any, ...]) -> None:
        kind, index = message[0], int(message[1])
        outcome = self.outcomes[index]
        trial = outcome.trial
        if kind == "start" and outcome.run_id is None:
            info = self.store.create_run(
                model=self.model.name,
                task=trial.objective,
                optimizer=trial.label,
                settings={
                    **self.config.settings(trial.penalty).record(trial.optimizer),
                    "sweep": True,
                },
                seed=trial.seed,
                latent_dim=self.model.latent_dim,
            )
            outcome.run_id, outcome.pid = info.id, int(message[2])
        elif kind == "step" and outcome.run_id is not None:
            step = message[2]
            self.store.add_step(outcome.run_id, step)
            outcome.n_steps += 1
            if self.keep_steps:
                outcome.steps.append(step)
        elif kind == "end" and outcome.run_id is not None:
            self.finish(outcome, RunStatus(message[2]), str(message[3]))
        if self.on_message is not None:
            self.on_message(message, outcome)

    def finish(self, outcome: TrialOutcome, status: RunStatus, reason: str) -> None:
        if outcome.status is not None:
            return
        outcome.status, outcome.reason = status, reason
        if outcome.run_id is not None:
            self.store.finish_run(outcome.run_id, status, reason)

    def died(self, index: int, why: str) -> None:
        outcome = self.outcomes[index]
        if outcome.status is None:
            reason = WORKER_DIED.format(why=why, n=outcome.n_steps)
            self.finish(outcome, RunStatus.INTERRUPTED, reason)

    def cancel_open(self) -> None:
        for outcome in self.outcomes:
            if outcome.status is None and outcome.run_id is not None:
                self.finish(outcome, RunStatus.STOPPED, CANCELLED)

    def open(self) -> list[TrialOutcome]:
        return [o for o in self.outcomes if o.status is None]


def _drain(messages: Any, recorder: _Recorder, timeout: float) -> int:
    handled = 0
    with contextlib.suppress(queue_module.Empty):
        message = messages.get(timeout=timeout)
        while True:
            recorder.handle(message)
            handled += 1
            message = messages.get_nowait()
    return handled


def _run_local(
    config: SweepConfig, trials: Sequence[Trial], recorder: _Recorder, workers: int
) -> None:
    ctx = mp.get_context("spawn")
    tasks, messages = ctx.Queue(), ctx.Queue()
    for trial in trials:
        tasks.put(trial)
    processes: list[Any] = []

    def start_worker() -> None:
        process = ctx.Process(target=_local_worker, args=(config, tasks, messages), daemon=True)
        process.start()
        processes.append(process)

    for _ in range(min(workers, len(trials))):
        tasks.put(None)
        start_worker()
    try:
        while recorder.open():
            _drain(messages, recorder, POLL_S)
            for process in [p for p in processes if not p.is_alive()]:
                processes.remove(process)
                _drain(messages, recorder, 0.05)  # what it sent before it ended
                for outcome in recorder.open():  # the trial it was running, if any
                    if outcome.pid == process.pid:
                        recorder.died(outcome.trial.index, f"exit code {process.exitcode}")
                if process.exitcode != 0 and any(o.run_id is None for o in recorder.open()):
                    tasks.put(None)
                    start_worker()  # a replacement, so the rest of the grid still runs
            if not processes and recorder.open():
                for outcome in recorder.open():  # never started: no worker is left to run it
                    outcome.status, outcome.reason = RunStatus.FAILED, "no worker ran it"
    except BaseException:
        recorder.cancel_open()
        raise
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join(timeout=5)


def _run_ray(
    config: SweepConfig,
    trials: Sequence[Trial],
    recorder: _Recorder,
    address: str,
    workers: int | None,
) -> None:
    from scales_viz.batch import _ray_running, connect_ray

    started = not _ray_running()
    ray = connect_ray(address)
    from ray.util.queue import Queue

    try:
        messages = Queue()
        remote = ray.remote(_ray_trial).options(max_retries=0, num_cpus=1)
        pending: list[Any] = []
        by_ref: dict[Any, int] = {}
        order = iter(trials)
        limit = workers or len(trials)

        def submit() -> None:
            trial = next(order, None)
            if trial is not None:
                ref = remote.remote(config, trial, messages)
                pending.append(ref)
                by_ref[ref] = trial.index

        for _ in range(min(limit, len(trials))):
            submit()
        try:
            while pending:
                done, _ = ray.wait(pending, num_returns=len(pending), timeout=POLL_S)
                _drain_ray(messages, recorder)
                for ref in done:
                    pending.remove(ref)
                    index = by_ref.pop(ref)
                    try:
                        ray.get(ref)
                    except Exception as exc:  # the worker or its node died
                        _drain_ray(messages, recorder)
                        recorder.died(index, type(exc).__name__)
                    submit()
            _drain_ray(messages, recorder)
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            recorder.cancel_open()
            raise
    finally:
        if started:
            ray.shutdown()


def _drain_ray(messages: Any, recorder: _Recorder) -> None:
    while not messages.empty():
        for message in messages.get_nowait_batch(messages.qsize()):
            recorder.handle(message)


def run_sweep(
    config: SweepConfig,
    store: Any,
    *,
    ray: str | None = None,
    workers: int | None = None,
    keep_steps: bool = False,
    on_message: Callable[[tuple[Any, ...], TrialOutcome], None] | None = None,
    trials: Sequence[Trial] | None = None,
) -> SweepResult:
    """Run every trial of `config`, recording into `store` from this process alone.

    Args:
        config: the grid.
        store: a :class:`~scales_viz.lso.store.RunStore`.
        ray: None for local worker processes; ``"local"`` (a local Ray cluster) or a cluster
            address for Ray tasks (one CPU each).
        workers: parallel workers (default: the CPU count locally, every trial at once on Ray,
            where the cluster's CPUs limit what runs).
        keep_steps: keep each trial's steps in its outcome (for reports).
        on_message: called after each message is recorded (progress; tests).
        trials: run these instead of the full grid (indices 0..n-1 in order).

    Raises:
        InputValueError, ManifestError, MissingExtraError: the model cannot be loaded or lacks
            an objective, before any worker starts.
    """
    model = _model(config.model, config.allow_code)
    missing = [o for o in config.objectives if o not in model.objectives]
    if missing:
        raise InputValueError(
            f"model {model.name!r} has no objective {missing}; it has {sorted(model.objectives)}."
        )
    trials = list(config.trials() if trials is None else trials)
    if [t.index for t in trials] != list(range(len(trials))):
        raise InputValueError("trials must be numbered 0..n-1 in order.")
    recorder = _Recorder(config, trials, store, model, keep_steps, on_message)
    start = time.perf_counter()
    if ray is None:
        _run_local(config, trials, recorder, max(1, workers or os.cpu_count() or 1))
    else:
        _run_ray(config, trials, recorder, ray, workers)
    return SweepResult(recorder.outcomes, time.perf_counter() - start)
