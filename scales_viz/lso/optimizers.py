"""Latent-space optimisers behind one interface, in the shape of BoTorch's ``torch_minimize``.

``run(model, objective, optimizer=..., budget=..., seed=..., callback=...)`` proposes batches of
latents step by step, evaluates each batch on the model (decoding, validity, objective,
ScaLES, likelihood: :func:`scales_viz.scoring.evaluate_points`), hands every
:class:`~scales_viz.lso.records.Step` to the callback, and returns a
:class:`~scales_viz.lso.records.RunResult` that states its status and why it stopped.

Optimisers (``OPTIMIZERS``):

``random``
    Prior samples, `batch_size` per step: the baseline.
``gp-ascent``
    The ScaLES paper's method. Each round fits a BoTorch ``SingleTaskGP`` (inputs normalised
    to the box, outcomes standardised) to the valid observations, then runs `ascent_steps`
    steps of gradient ascent on ``LogExpectedImprovement`` from `batch_size` start points:
    the best valid latent so far plus others drawn at random from the valid observations
    (``starts="sampled"``, the default), or the `batch_size` best (``starts="best"``; when a
    round's proposals are all invalid the GP does not change and the next round repeats it).
    Each step moves by ``step_size * prior_scale`` along
    ``g_acq / |g_acq| + alpha * g_pen / |g_pen|`` where ``g_pen`` is the gradient of the
    penalty: ``none``, ``scales`` (exact ScaLES gradient), ``prior`` (``-|z|^2 / 2``) or
    ``likelihood`` (log-probability of the argmax decoding). Points stay inside the box.
``lbfgs``
    BoTorch ``optimize_acqf`` (L-BFGS-B) of ``LogExpectedImprovement`` inside the box, one
    restart per proposal, no penalty: the paper's over-exploring baseline.
``turbo``
    A TuRBO-1 trust region (Eriksson et al. 2019) around the best valid point, with Thompson
    sampling from the GP posterior over perturbed Sobol candidates. With a penalty, each
    Thompson draw's top `shortlist` candidates are scored and the pick maximises the draw's
    standardised value plus ``alpha`` times the standardised penalty (ScaLES, prior or
    likelihood) over the shortlist.
``gradient``
    Plain gradient ascent on a differentiable objective (``Objective.latent``, e.g. the digits
    classifier's ``looks_like_k``) from `batch_size` start points, with an optional penalty
    gradient added as above: the teaching case of over-exploration.

The GP methods start with `n_initial` latents (encoded data points by default, as in the paper,
or prior samples). Invalid decodings are recorded (valid false, objective NaN) and never enter
a GP's training data; while fewer than two valid observations exist, a GP round proposes prior
samples instead (logged).

Determinism: a run draws every random number from generators seeded by `seed` and from torch's
global RNG seeded inside :func:`torch.random.fork_rng` (restored afterwards); runs are
serialised by a process-wide lock, so the same seed on the same machine and thread count gives
the same run.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import Tensor

from scales_viz.errors import InputValueError
from scales_viz.lso.records import RunResult, RunStatus, Step
from scales_viz.scoring import evaluate_points, score_latents

if TYPE_CHECKING:
    from scales_viz.models.base import LatentModel

__all__ = [
    "OPTIMIZERS",
    "PENALTIES",
    "Budget",
    "Settings",
    "optimizer_label",
    "run",
]

LOG = logging.getLogger(__name__)

OPTIMIZERS: tuple[str, ...] = ("random", "gp-ascent", "lbfgs", "turbo", "gradient")
PENALTIES: tuple[str, ...] = ("none", "scales", "prior", "likelihood")
#: Optimisers that take a penalty.
PENALISED: frozenset[str] = frozenset({"gp-ascent", "turbo", "gradient"})
#: Most observations a GP is fitted to (the best ones are kept).
MAX_GP_POINTS = 1000

Penalty = Literal["none", "scales", "prior", "likelihood"]
Callback = Callable[[Step], "bool | None"]
_RUN_LOCK = threading.Lock()


@dataclass(frozen=True)
class Budget:
    """When a run stops. `evaluations` is required; the other rules are optional.

    Attributes:
        evaluations: points to evaluate in all (the last step is cut to fit).
        max_steps: steps at most.
        patience: stop after this many steps without a better valid objective.
        time_limit: seconds of wall time; checked after each step.
    """

    evaluations: int
    max_steps: int | None = None
    patience: int | None = None
    time_limit: float | None = None

    def __post_init__(self) -> None:
        _positive_int(self.evaluations, "budget.evaluations")
        for name in ("max_steps", "patience"):
            if getattr(self, name) is not None:
                _positive_int(getattr(self, name), f"budget.{name}")
        if self.time_limit is not None and not (
            isinstance(self.time_limit, int | float) and self.time_limit > 0
        ):
            raise InputValueError(
                f"budget.time_limit must be a positive number of seconds; got {self.time_limit!r}."
            )


@dataclass(frozen=True)
class Settings:
    """Optimiser settings (every optimiser reads the ones it uses; all are recorded).

    Attributes:
        batch_size: proposals per step (round).
        n_initial: initial design size of the GP methods (their step 0).
        initial: ``data`` (random encoded data latents, as in the paper) or ``prior``.
        penalty: one of ``PENALTIES``.
        alpha: weight of the unit-length penalty gradient (or standardised penalty, TuRBO).
        ascent_steps: gradient steps per round (``gp-ascent``).
        starts: start points of the ascent (``gp-ascent``): ``sampled`` (the best valid latent
            and others drawn from the valid observations) or ``best`` (the best ones).
        step_size: length of one gradient step, in units of the model's prior scale.
        bound: half-width of the search box, in units of the prior scale.
        raw_samples: raw samples for the L-BFGS start points (``lbfgs``).
        n_candidates: Sobol candidates per TuRBO round.
        shortlist: candidates per Thompson draw that get the penalty (TuRBO).
        start: `batch_size x d` start points for ``gradient`` (default: prior samples); for
            the GP methods, the first rows of the initial design (the rest as ``initial``).
        with_scales: compute ScaLES for every proposal (for the ScaLES-along-run view).
    """

    batch_size: int = 10
    n_initial: int = 20
    initial: Literal["data", "prior"] = "data"
    penalty: Penalty = "none"
    alpha: float = 0.5
    ascent_steps: int = 10
    starts: Literal["sampled", "best"] = "sampled"
    step_size: float = 0.1
    bound: float = 4.0
    raw_samples: int = 128
    n_candidates: int = 1000
    shortlist: int = 20
    start: tuple[tuple[float, ...], ...] | None = field(default=None)
    with_scales: bool = True

    def __post_init__(self) -> None:
        for name in (
            "batch_size",
            "n_initial",
            "ascent_steps",
            "raw_samples",
            "n_candidates",
            "shortlist",
        ):
            _positive_int(getattr(self, name), f"settings.{name}")
        for name in ("step_size", "bound"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise InputValueError(f"settings.{name} must be a positive number; got {value!r}.")
        if not (isinstance(self.alpha, int | float) and math.isfinite(self.alpha)):
            raise InputValueError(f"settings.alpha must be a finite number; got {self.alpha!r}.")
        if self.penalty not in PENALTIES:
            raise InputValueError(
                f"settings.penalty must be one of {PENALTIES}; got {self.penalty!r}."
            )
        if self.starts not in ("sampled", "best"):
            raise InputValueError(
                f"settings.starts must be 'sampled' or 'best'; got {self.starts!r}."
            )
        if self.initial not in ("data", "prior"):
            raise InputValueError(
                f"settings.initial must be 'data' or 'prior'; got {self.initial!r}."
            )

    def record(self, optimizer: str) -> dict[str, Any]:
        """The settings that matter for `optimizer`, JSON-serialisable (stored with runs)."""
        used = {
            "random": ("batch_size",),
            "gp-ascent": (
                "batch_size",
                "n_initial",
                "initial",
                "penalty",
                "alpha",
                "ascent_steps",
                "starts",
                "step_size",
                "bound",
                "start",
            ),
            "lbfgs": ("batch_size", "n_initial", "initial", "bound", "raw_samples"),
            "turbo": (
                "batch_size",
                "n_initial",
                "initial",
                "penalty",
                "alpha",
                "bound",
                "n_candidates",
                "shortlist",
            ),
            "gradient": ("batch_size", "penalty", "alpha", "step_size", "start"),
        }[optimizer]
        values = asdict(self)
        out = {k: values[k] for k in used}
        if out.get("penalty") == "none":
            out.pop("alpha", None)
        if "start" in out and out["start"] is not None:
            out["start"] = [list(row) for row in out["start"]]
        return out


def optimizer_label(optimizer: str, penalty: str = "none") -> str:
    """The name a run shows in legends: ``gp-ascent+scales``, ``lbfgs``, ``random``."""
    if optimizer in PENALISED and penalty != "none":
        return f"{optimizer}+{penalty}"
    return optimizer


def _positive_int(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < 1:
        raise InputValueError(f"{name} must be a positive int; got {value!r}.")


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    with _RUN_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _unit(g: Tensor) -> Tensor:
    """Rows of `g` scaled to unit length (zero rows and non-finite rows become zero)."""
    g = torch.where(torch.isfinite(g).all(dim=1, keepdim=True), g, torch.zeros_like(g))
    norm = g.norm(dim=1, keepdim=True)
    return torch.where(norm > 0, g / norm.clamp_min(1e-300), torch.zeros_like(g))


def penalty_values(model: LatentModel, penalty: str, z: Tensor) -> Tensor:
    """The penalty score (higher = more realistic) of each row of `z`, differentiable."""
    if penalty in PENALTIES[1:]:
        return score_latents(model, penalty, z)
    raise InputValueError(f"penalty must be one of {PENALTIES[1:]}; got {penalty!r}.")


def penalty_direction(model: LatentModel, penalty: str, z: Tensor) -> Tensor:
    """Unit-length gradient of the penalty at each row of `z` (zeros for ``none``)."""
    if penalty == "none":
        return torch.zeros_like(z)
    leaf = z.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        value = penalty_values(model, penalty, leaf)
        finite = torch.isfinite(value)
        (grad,) = torch.autograd.grad(value[finite].sum(), leaf, allow_unused=True)
    if grad is None:
        return torch.zeros_like(z)
    grad = torch.where(finite.unsqueeze(1), grad, torch.zeros_like(grad))
    return _unit(grad.detach())


@dataclass
class _History:
    """Everything evaluated so far (float64 CPU)."""

    z: list[np.ndarray] = field(default_factory=list)
    y: list[np.ndarray] = field(default_factory=list)
    valid: list[np.ndarray] = field(default_factory=list)

    def add(self, step: Step) -> None:
        self.z.append(step.z)
        self.y.append(step.objective)
        self.valid.append(step.valid)

    def observations(self) -> tuple[Tensor, Tensor]:
        """Valid, finite observations as `(X n x d, Y n x 1)` float64 tensors."""
        if not self.z:
            return torch.zeros(0, 0, dtype=torch.float64), torch.zeros(0, 1, dtype=torch.float64)
        z = np.concatenate(self.z)
        y = np.concatenate(self.y)
        keep = np.concatenate(self.valid) & np.isfinite(y)
        z, y = z[keep], y[keep]
        if len(y) > MAX_GP_POINTS:
            top = np.argsort(-y, kind="stable")[:MAX_GP_POINTS]
            z, y = z[top], y[top]
        return torch.from_numpy(z), torch.from_numpy(y).unsqueeze(1)

    def best_valid(self, k: int) -> Tensor:
        """The `k` best distinct valid latents (fewer if fewer exist), best first."""
        x, y = self.observations()
        if y.numel() == 0:
            return x
        order = torch.argsort(-y[:, 0], stable=True)
        return _distinct(x[order])[:k]

    def start_points(self, k: int, generator: torch.Generator) -> Tensor:
        """The best valid latent and `k - 1` others drawn at random from the distinct valid
        ones (fewer if fewer exist)."""
        x, y = self.observations()
        if y.numel() == 0:
            return x
        ranked = _distinct(x[torch.argsort(-y[:, 0], stable=True)])
        others = ranked[1:][torch.randperm(ranked.shape[0] - 1, generator=generator)]
        return torch.cat([ranked[:1], others])[:k]


def _distinct(rows: Tensor) -> Tensor:
    """Rows of `rows` without exact repeats, first occurrences in order."""
    keep: list[int] = []
    for i in range(rows.shape[0]):
        if all(not torch.equal(rows[i], rows[j]) for j in keep):
            keep.append(i)
    return rows[keep]


class _Context:
    """What a proposal strategy may use: the model, settings, generator and bounds."""

    def __init__(self, model: LatentModel, objective: str, settings: Settings, seed: int) -> None:
        self.model = model
        self.objective = objective
        self.settings = settings
        self.generator = torch.Generator().manual_seed(seed)
        self.d = int(model.latent_dim)
        self.scale = float(model.prior_scale)
        half = settings.bound * self.scale
        self.bounds = torch.tensor([[-half] * self.d, [half] * self.d], dtype=torch.float64)

    def prior(self, n: int) -> Tensor:
        return torch.randn(n, self.d, generator=self.generator, dtype=torch.float64) * self.scale

    def initial(self, n: int) -> Tensor:
        if self.settings.initial == "prior":
            return self.prior(n)
        data = self.model.data_latents.to(torch.float64)
        pick = torch.randperm(data.shape[0], generator=self.generator)[:n]
        out = data[pick]
        if out.shape[0] < n:
            out = torch.cat([out, self.prior(n - out.shape[0])])
        return out

    def clamp(self, z: Tensor) -> Tensor:
        return torch.maximum(torch.minimum(z, self.bounds[1]), self.bounds[0])


def _fit_gp(x: Tensor, y: Tensor, bounds: Tensor) -> Any:
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms import Normalize, Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    gp = SingleTaskGP(
        x,
        y,
        input_transform=Normalize(d=x.shape[1], bounds=bounds),
        outcome_transform=Standardize(m=1),
    )
    fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
    return gp.eval()


# --------------------------------------------------------------------------------------------
# Strategies: propose(history, n) -> n x d float64
# --------------------------------------------------------------------------------------------


class _Strategy:
    first_step_size: int | None = None

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx

    def propose(self, history: _History, n: int, step: int) -> Tensor:
        raise NotImplementedError

    def observe(self, step: Step) -> None:
        """Learn from an evaluated step (trust-region bookkeeping); nothing by default."""


class _Random(_Strategy):
    def propose(self, history: _History, n: int, step: int) -> Tensor:
        return self.ctx.prior(n)


class _GPStrategy(_Strategy):
    def __init__(self, ctx: _Context) -> None:
        super().__init__(ctx)
        s = ctx.settings
        self.first_step_size = s.n_initial
        if s.start is not None:
            start = torch.tensor(s.start, dtype=torch.float64)
            if start.ndim != 2 or start.shape[1] != ctx.d or not 1 <= start.shape[0] <= s.n_initial:
                raise InputValueError(
                    f"settings.start must be k x d with 1 <= k <= n_initial = {s.n_initial} and "
                    f"d = {ctx.d}; got shape {tuple(start.shape)}."
                )
            if not torch.isfinite(start).all():
                raise InputValueError("settings.start holds NaN or inf.")

    def propose(self, history: _History, n: int, step: int) -> Tensor:
        if step == 0:
            start = self.ctx.settings.start
            if not start:
                return self.ctx.initial(n)
            given = torch.tensor(start, dtype=torch.float64)[:n]
            rest = n - given.shape[0]
            return torch.cat([given, self.ctx.initial(rest)]) if rest > 0 else given
        x, y = history.observations()
        if y.shape[0] < 2:
            LOG.info("step %d: fewer than 2 valid observations; proposing prior samples", step)
            return self.ctx.prior(n)
        return self.acquire(x, y, n, history)

    def acquire(self, x: Tensor, y: Tensor, n: int, history: _History) -> Tensor:
        raise NotImplementedError


class _GPAscent(_GPStrategy):
    def acquire(self, x: Tensor, y: Tensor, n: int, history: _History) -> Tensor:
        from botorch.acquisition import LogExpectedImprovement

        ctx, s = self.ctx, self.ctx.settings
        gp = _fit_gp(x, y, ctx.bounds)
        acq = LogExpectedImprovement(gp, best_f=y.max())
        z = history.best_valid(n) if s.starts == "best" else history.start_points(n, ctx.generator)
        if z.shape[0] < n:
            z = torch.cat([z, ctx.initial(n - z.shape[0])])
        eta = s.step_size * ctx.scale
        for _ in range(s.ascent_steps):
            leaf = z.detach().clone().requires_grad_(True)
            with torch.enable_grad():
                (g_acq,) = torch.autograd.grad(acq(leaf.unsqueeze(1)).sum(), leaf)
            direction = _unit(g_acq)
            if s.penalty != "none":
                direction = direction + s.alpha * penalty_direction(ctx.model, s.penalty, z)
            z = ctx.clamp(z.detach() + eta * direction)
        return z.detach()


class _LBFGS(_GPStrategy):
    """``optimize_acqf`` of LogEI (q=1) with one L-BFGS-B restart per proposal.

    The `n` restarts' optima are the batch (``return_best_only=False``): as many locally
    optimal points as proposals, at a fraction of the cost of a joint q-batch optimisation.
    """

    def acquire(self, x: Tensor, y: Tensor, n: int, history: _History) -> Tensor:
        from botorch.acquisition import LogExpectedImprovement
        from botorch.optim import optimize_acqf

        ctx, s = self.ctx, self.ctx.settings
        gp = _fit_gp(x, y, ctx.bounds)
        candidates, _ = optimize_acqf(
            LogExpectedImprovement(gp, best_f=y.max()),
            bounds=ctx.bounds,
            q=1,
            num_restarts=n,
            raw_samples=max(s.raw_samples, n),
            return_best_only=False,
            options={"maxiter": 100},
        )
        return candidates.detach().reshape(n, ctx.d).to(torch.float64)


class _TuRBO(_GPStrategy):
    """TuRBO-1 with the BoTorch tutorial's constants; the region restarts when it collapses."""

    LENGTH_INIT = 0.8
    LENGTH_MIN = 0.5**7
    LENGTH_MAX = 1.6
    SUCCESS_TOLERANCE = 3

    def __init__(self, ctx: _Context) -> None:
        super().__init__(ctx)
        self.length = self.LENGTH_INIT
        self.failure_tolerance = math.ceil(
            max(4.0 / ctx.settings.batch_size, ctx.d / ctx.settings.batch_size)
        )
        self.successes = 0
        self.failures = 0
        self.best = -math.inf
        self.restarts = 0

    def observe(self, step: Step) -> None:
        value = step.best_valid()
        if step.step == 0:
            self.best = value if math.isfinite(value) else -math.inf
            return
        if math.isfinite(value) and value > self.best + 1e-3 * abs(self.best):
            self.successes, self.failures = self.successes + 1, 0
        else:
            self.successes, self.failures = 0, self.failures + 1
        if math.isfinite(value):
            self.best = max(self.best, value)
        if self.successes == self.SUCCESS_TOLERANCE:
            self.length, self.successes = min(2.0 * self.length, self.LENGTH_MAX), 0
        elif self.failures == self.failure_tolerance:
            self.length, self.failures = self.length / 2.0, 0
        if self.length < self.LENGTH_MIN:
            self.length, self.restarts = self.LENGTH_INIT, self.restarts + 1
            LOG.info("TuRBO trust region collapsed; restart %d", self.restarts)

    def acquire(self, x: Tensor, y: Tensor, n: int, history: _History) -> Tensor:
        from torch.quasirandom import SobolEngine

        ctx, s = self.ctx, self.ctx.settings
        gp = _fit_gp(x, y, ctx.bounds)
        low, high = ctx.bounds[0], ctx.bounds[1]
        centre = (x[y[:, 0].argmax()] - low) / (high - low)
        lengthscale = gp.covar_module.lengthscale.detach().reshape(-1).to(torch.float64)
        weights = lengthscale / lengthscale.mean()
        weights = weights / weights.prod().pow(1.0 / ctx.d)
        tr_low = (centre - weights * self.length / 2).clamp(0.0, 1.0)
        tr_high = (centre + weights * self.length / 2).clamp(0.0, 1.0)
        sobol_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=ctx.generator))
        sobol = SobolEngine(ctx.d, scramble=True, seed=sobol_seed)
        pert = tr_low + (tr_high - tr_low) * sobol.draw(s.n_candidates).to(torch.float64)
        prob = min(20.0 / ctx.d, 1.0)
        mask = torch.rand(s.n_candidates, ctx.d, generator=ctx.generator) <= prob
        empty = ~mask.any(dim=1)
        mask[empty, torch.randint(0, ctx.d, (int(empty.sum()),), generator=ctx.generator)] = True
        unit = torch.where(mask, pert, centre.expand_as(pert))
        candidates = low + (high - low) * unit
        with torch.no_grad():
            posterior = gp.posterior(candidates)
            draws = posterior.rsample(torch.Size([n])).reshape(n, -1)
        return candidates[self._pick(candidates, draws)]

    def _pick(self, candidates: Tensor, draws: Tensor) -> list[int]:
        """One candidate per Thompson draw, without replacement (with the penalty if set)."""
        s = self.ctx.settings
        chosen: list[int] = []
        if s.penalty == "none":
            for row in draws:
                order = torch.argsort(row, descending=True).tolist()
                chosen.append(next(i for i in order if i not in chosen))
            return chosen
        k = min(s.shortlist, draws.shape[1])
        short = sorted({i for row in draws for i in torch.topk(row, k).indices.tolist()})
        index = torch.tensor(short)
        with torch.no_grad():
            pen = penalty_values(self.ctx.model, s.penalty, candidates[index]).to(torch.float64)
        pen = torch.where(torch.isfinite(pen), pen, torch.full_like(pen, -math.inf))
        pen_z = _standardise(pen)
        for row in draws:
            value = _standardise(row[index]) + s.alpha * pen_z
            for j in torch.argsort(value, descending=True).tolist():
                if short[j] not in chosen:
                    chosen.append(short[j])
                    break
        return chosen


def _standardise(v: Tensor) -> Tensor:
    """(v - mean) / std over finite entries; -inf entries stay -inf; constant -> zeros."""
    finite = torch.isfinite(v)
    if finite.sum() < 2:
        return torch.where(finite, torch.zeros_like(v), torch.full_like(v, -math.inf))
    mean, std = v[finite].mean(), v[finite].std()
    scaled = (v - mean) / std if std > 0 else torch.zeros_like(v)
    return torch.where(finite, scaled, torch.full_like(v, -math.inf))


class _Gradient(_Strategy):
    """Gradient ascent on `Objective.latent`; every step evaluates all chains' positions."""

    def __init__(self, ctx: _Context) -> None:
        super().__init__(ctx)
        objective = ctx.model.objectives[ctx.objective]
        if objective.latent is None:
            raise InputValueError(
                f"optimizer 'gradient' needs a differentiable objective; {ctx.objective!r} of "
                f"model {ctx.model.name!r} has none (use a BO optimizer)."
            )
        self.latent_objective = objective.latent
        s = ctx.settings
        if s.start is not None:
            start = torch.tensor(s.start, dtype=torch.float64)
            if start.ndim != 2 or start.shape != (s.batch_size, ctx.d):
                raise InputValueError(
                    f"settings.start must be batch_size x d = {s.batch_size} x {ctx.d}; "
                    f"got shape {tuple(start.shape)}."
                )
            if not torch.isfinite(start).all():
                raise InputValueError("settings.start holds NaN or inf.")
        else:
            start = ctx.prior(s.batch_size)
        self.z = start

    def propose(self, history: _History, n: int, step: int) -> Tensor:
        if step > 0:
            s = self.ctx.settings
            leaf = self.z.clone().requires_grad_(True)
            with torch.enable_grad():
                value = self.latent_objective(leaf)
                (grad,) = torch.autograd.grad(value.sum(), leaf)
            direction = _unit(grad)
            if s.penalty != "none":
                direction = direction + s.alpha * penalty_direction(
                    self.ctx.model, s.penalty, self.z
                )
            self.z = (self.z + s.step_size * self.ctx.scale * direction).detach()
        return self.z[:n]


_STRATEGIES: dict[str, type[_Strategy]] = {
    "random": _Random,
    "gp-ascent": _GPAscent,
    "lbfgs": _LBFGS,
    "turbo": _TuRBO,
    "gradient": _Gradient,
}


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


def run(
    model: LatentModel,
    objective: str,
    *,
    optimizer: str,
    budget: Budget,
    seed: int,
    settings: Settings | None = None,
    callback: Callback | None = None,
    device: torch.device | None = None,
) -> RunResult:
    """Run one optimiser on `model`'s `objective` until the budget or a stop rule ends it.

    Args:
        model: a :class:`~scales_viz.models.LatentModel`.
        objective: one of ``model.objectives`` (higher is better; NaN for invalid).
        optimizer: one of ``OPTIMIZERS``.
        budget: the evaluation budget and optional stop rules.
        seed: the run's seed.
        settings: optimiser settings (defaults: :class:`Settings`).
        callback: called with each evaluated :class:`Step` in order; returning True stops
            the run (status STOPPED, "stopped by the callback"). Recording is its job.
        device: where ScaLES is computed for the records (default CPU).

    Returns:
        The :class:`RunResult`: COMPLETED when the budget is spent, STOPPED by a stop rule or
        the callback, FAILED when an error ended it (the reason names it; steps so far kept).

    Raises:
        InputValueError: unknown optimizer or objective, bad settings or budget, a penalty on
            an optimiser that takes none, or ``gradient`` without a differentiable objective.
    """
    settings = settings or Settings()
    if optimizer not in OPTIMIZERS:
        raise InputValueError(f"optimizer must be one of {OPTIMIZERS}; got {optimizer!r}.")
    if objective not in model.objectives:
        raise InputValueError(
            f"model {model.name!r} has no objective {objective!r}; "
            f"it has {sorted(model.objectives)}."
        )
    if settings.penalty != "none" and optimizer not in PENALISED:
        raise InputValueError(
            f"optimizer {optimizer!r} takes no penalty (penalised ones: {sorted(PENALISED)}); "
            f"got penalty {settings.penalty!r}."
        )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise InputValueError(f"seed must be an int; got {seed!r}.")
    with _seeded(int(seed)):
        ctx = _Context(model, objective, settings, int(seed))
        strategy = _STRATEGIES[optimizer](ctx)
        return _loop(ctx, strategy, budget, callback, device)


def _loop(
    ctx: _Context,
    strategy: _Strategy,
    budget: Budget,
    callback: Callback | None,
    device: torch.device | None,
) -> RunResult:
    start = time.perf_counter()
    history = _History()
    result = RunResult(status=RunStatus.COMPLETED, reason="")
    since_improvement = 0
    step = 0
    try:
        while True:
            left = budget.evaluations - result.evaluations
            if left <= 0:
                result.reason = f"budget of {budget.evaluations} evaluations spent"
                break
            if budget.max_steps is not None and step >= budget.max_steps:
                result.status = RunStatus.STOPPED
                result.reason = f"max_steps={budget.max_steps} reached"
                break
            size = strategy.first_step_size if step == 0 and strategy.first_step_size else None
            n = min(left, size or ctx.settings.batch_size)
            z = strategy.propose(history, n, step)
            found = evaluate_points(
                ctx.model,
                ctx.objective,
                z,
                with_scales=ctx.settings.with_scales,
                device=device,
            )
            record = Step(
                step=step,
                z=z.detach().cpu().numpy(),
                objective=found.objective,
                valid=found.valid,
                decoded=found.decoded,
                scales=found.scales,
                likelihood=found.likelihood,
                wall_time=time.perf_counter() - start,
            )
            history.add(record)
            strategy.observe(record)
            result.steps.append(record)
            result.evaluations += record.size
            improved = _update_best(result, record)
            since_improvement = 0 if improved else since_improvement + 1
            step += 1
            if callback is not None and callback(record):
                result.status, result.reason = RunStatus.STOPPED, "stopped by the callback"
                break
            if budget.patience is not None and since_improvement >= budget.patience:
                result.status = RunStatus.STOPPED
                result.reason = f"no better valid objective in {budget.patience} steps"
                break
            if budget.time_limit is not None and time.perf_counter() - start > budget.time_limit:
                result.status = RunStatus.STOPPED
                result.reason = f"time limit of {budget.time_limit:g} s reached"
                break
    except Exception as exc:
        LOG.error("run failed at step %d:\n%s", step, traceback.format_exc())
        result.status = RunStatus.FAILED
        result.reason = f"{type(exc).__name__} at step {step}: {exc}"
    result.runtime = time.perf_counter() - start
    return result


def _update_best(result: RunResult, step: Step) -> bool:
    """Fold a step into the result's best; True when it improved."""
    value = step.best_valid()
    if not math.isfinite(value) or (
        math.isfinite(result.best_objective) and value <= result.best_objective
    ):
        return False
    ok = step.valid & np.isfinite(step.objective)
    index = int(np.flatnonzero(ok)[np.argmax(step.objective[ok])])
    result.best_objective = value
    result.best_z = step.z[index].copy()
    return True
