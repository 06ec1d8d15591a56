"""Reproduce the ScaLES paper's LSO comparison on a built-in model and write the report.

The protocol (``scales-math.md``, "How the paper evaluates it"): the paper's optimiser (a GP
on the observed latents, LogEI, gradient ascent from the best points, unit-length gradients)
with each penalty, ``none`` / ``scales`` / ``prior`` / ``likelihood`` (alpha 0.5), and BoTorch's
L-BFGS inside a box without penalty, over several seeds. Metrics per method, over the
optimiser's *proposals* (every step after the shared initial design): best valid objective,
mean of the top-20 valid objectives, % valid proposals, and mean ScaLES of the proposals, each
as mean ± SEM over seeds.
"""

from __future__ import annotations

import datetime as dt
import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scales_viz.lso.analysis import mean_sem
from scales_viz.lso.optimizers import Budget, Settings, optimizer_label, run
from scales_viz.lso.records import RunStatus, points_frame

if TYPE_CHECKING:
    from scales_viz.models.base import LatentModel

__all__ = [
    "METHODS",
    "Method",
    "ReproduceConfig",
    "reproduce",
    "reproduce_sweep",
    "summarise",
    "write_report",
]


@dataclass(frozen=True)
class Method:
    """One compared method: an optimiser and its penalty."""

    optimizer: str
    penalty: str = "none"

    @property
    def label(self) -> str:
        return optimizer_label(self.optimizer, self.penalty)


METHODS: tuple[Method, ...] = (
    Method("gp-ascent", "none"),
    Method("gp-ascent", "scales"),
    Method("gp-ascent", "prior"),
    Method("gp-ascent", "likelihood"),
    Method("lbfgs"),
)

#: Task per built-in model for the comparison.
TASKS = {"expressions": "fit_target", "molecules": "penalized_logp", "digits": "looks_like_7"}


@dataclass(frozen=True)
class ReproduceConfig:
    """The comparison's size.

    Attributes:
        seeds: seeds per method.
        rounds: optimisation rounds after the initial design.
        batch_size: proposals per round.
        n_initial: initial design (encoded data latents), shared by every method for a seed.
        alpha: penalty weight.
        top: how many best valid objectives the "top-k mean" averages.
    """

    seeds: int = 5
    rounds: int = 20
    batch_size: int = 10
    n_initial: int = 20
    alpha: float = 0.5
    top: int = 20

    @property
    def budget(self) -> int:
        return self.n_initial + self.rounds * self.batch_size


def reproduce(
    model: LatentModel,
    *,
    objective: str,
    config: ReproduceConfig,
    methods: Sequence[Method] = METHODS,
    on_run: Callable[[str, int, Any], None] | None = None,
    on_step: Callable[[Any], Any] | None = None,
) -> pd.DataFrame:
    """Run every method for every seed; the points table of all runs (run id = label/seed).

    Args:
        model: the model to optimise on.
        objective: its objective.
        config: sizes.
        methods: the compared methods.
        on_run: called as ``on_run(label, seed, result)`` after each run (logging, storing).
        on_step: passed to each run as its callback (progress).
    """
    frames = []
    for seed in range(config.seeds):
        for method in methods:
            settings = Settings(
                batch_size=config.batch_size,
                n_initial=config.n_initial,
                initial="data",
                penalty=method.penalty,  # type: ignore[arg-type]
                alpha=config.alpha,
            )
            result = run(
                model,
                objective,
                optimizer=method.optimizer,
                budget=Budget(evaluations=config.budget),
                seed=seed,
                settings=settings,
                callback=on_step,
            )
            if result.status is RunStatus.FAILED:
                raise RuntimeError(f"{method.label} seed {seed} failed: {result.reason}")
            if on_run is not None:
                on_run(method.label, seed, result)
            frames.append(
                points_frame(
                    result.steps, run=f"{method.label}/{seed}", optimizer=method.label, seed=seed
                )
            )
    return pd.concat(frames, ignore_index=True)


def per_run_metrics(points: pd.DataFrame, *, top: int = 20) -> pd.DataFrame:
    """Per run: best and top-k mean valid objective, % valid and mean ScaLES of proposals."""
    rows = []
    for run_id, group in points.groupby("run", sort=False):
        proposals = group[group["step"] > 0]
        ok = proposals["valid"].to_numpy(bool) & np.isfinite(proposals["objective"].to_numpy())
        values = np.sort(proposals["objective"].to_numpy()[ok])[::-1]
        rows.append(
            {
                "run": run_id,
                "optimizer": group["optimizer"].iloc[0],
                "seed": int(group["seed"].iloc[0]),
                "proposals": len(proposals),
                "best": float(values[0]) if values.size else math.nan,
                "top_mean": float(values[:top].mean()) if values.size >= top else math.nan,
                "valid_pct": 100.0 * float(proposals["valid"].mean()),
                "scales_mean": float(np.nanmean(proposals["scales"]))
                if proposals["scales"].notna().any()
                else math.nan,
                "best_overall": float(
                    np.nanmax(np.where(group["valid"], group["objective"], np.nan))
                ),
            }
        )
    return pd.DataFrame(rows)


def summarise(points: pd.DataFrame, *, top: int = 20) -> pd.DataFrame:
    """Per method: mean, SEM and n over seeds of each per-run metric."""
    runs = per_run_metrics(points, top=top)
    rows = []
    for label, group in runs.groupby("optimizer", sort=False):
        row: dict[str, Any] = {"method": label, "seeds": len(group)}
        for metric in ("best", "top_mean", "valid_pct", "scales_mean"):
            stats = mean_sem(group[metric].to_numpy(dtype=np.float64))
            row[f"{metric}_mean"], row[f"{metric}_sem"] = stats.mean, stats.sem
            row[f"{metric}_n"] = stats.n
        rows.append(row)
    return pd.DataFrame(rows)


def _pm(mean: float, sem: float, digits: int = 3) -> str:
    if not math.isfinite(mean):
        return "n/a"
    if not math.isfinite(sem):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sem:.{digits}f}"


def verdict(summary: pd.DataFrame) -> str:
    """One honest paragraph comparing the ScaLES penalty with no penalty, from the numbers."""
    by = summary.set_index("method")
    if "gp-ascent+scales" not in by.index or "gp-ascent" not in by.index:
        return "The comparison lacks gp-ascent with and without the ScaLES penalty."
    s, n = by.loc["gp-ascent+scales"], by.loc["gp-ascent"]

    def differs(metric: str) -> tuple[float, bool]:
        diff = float(s[f"{metric}_mean"] - n[f"{metric}_mean"])
        spread = math.hypot(float(s[f"{metric}_sem"]), float(n[f"{metric}_sem"]))
        return diff, bool(math.isfinite(spread) and abs(diff) > 2 * spread)

    dv, v_sig = differs("valid_pct")
    db, b_sig = differs("best")
    dt_, t_sig = differs("top_mean")
    parts = [
        f"With the ScaLES penalty, {s['valid_pct_mean']:.1f}% of proposals were valid against "
        f"{n['valid_pct_mean']:.1f}% without ({dv:+.1f} points; "
        + ("more than twice the combined SEM)." if v_sig else "within twice the combined SEM).")
    ]
    parts.append(
        f" Best valid objective: {s['best_mean']:.3f} against {n['best_mean']:.3f} "
        f"({db:+.3f}, {'beyond' if b_sig else 'within'} twice the combined SEM); top-20 mean: "
        f"{s['top_mean_mean']:.3f} against {n['top_mean_mean']:.3f} ({dt_:+.3f}, "
        f"{'beyond' if t_sig else 'within'} twice the combined SEM)."
    )
    raised = dv > 0 and v_sig
    lost = (db < 0 and b_sig) or (dt_ < 0 and t_sig)
    if raised and not lost:
        parts.append(
            " So on this model the ScaLES penalty raised validity without losing objective."
        )
    elif raised and lost:
        parts.append(" So the ScaLES penalty raised validity but lost objective on this model.")
    elif not raised and not lost:
        parts.append(
            " So on this model the ScaLES penalty did not measurably raise validity; nor did it "
            "lose objective."
        )
    else:
        parts.append(
            " So on this model the ScaLES penalty did not measurably raise validity and lost "
            "objective."
        )
    return "".join(parts)


def write_report(
    points: pd.DataFrame,
    *,
    model: LatentModel,
    objective: str,
    config: ReproduceConfig,
    out: Path,
    seconds: float,
    command: str,
) -> Path:
    """Write ``results.md`` (and its figures beside it) into `out`."""
    from scales_viz.figures.runs import plot_best_curves, plot_valid_share

    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(points, top=config.top)
    figures = []
    for name, figure in (
        ("results-best.png", plot_best_curves(points, title="Best valid objective so far")),
        ("results-valid.png", plot_valid_share(points, title="Valid proposals per round")),
    ):
        try:
            figure.write_image(out / name, width=820, height=480)
            figures.append(name)
        except Exception as exc:  # kaleido missing or no browser: say so in the report
            figures.append(f"(figure {name} not written: {type(exc).__name__}: {exc})")
    lines = [
        f"# LSO on the built-in `{model.name}` model: does the ScaLES penalty help?",
        "",
        f"Written by `{command}` on {dt.date.today().isoformat()} "
        f"({platform.machine()} CPU, {seconds / 60:.1f} min for all runs).",
        "",
        "## Protocol",
        f"- Objective: `{objective}` ({model.objectives[objective].description}); higher is "
        "better, invalid decodings score nothing.",
        f"- {config.seeds} seeds per method. Each run starts from the same {config.n_initial} "
        "encoded data latents for a given seed (step 0, not counted below), then runs "
        f"{config.rounds} rounds of {config.batch_size} proposals "
        f"({config.budget} evaluations in all).",
        "- `gp-ascent`: the paper's optimiser: a BoTorch `SingleTaskGP` on the valid "
        "observations, LogEI, 10 steps of gradient ascent (step 0.1 prior-scale units, gradients "
        "normalised to unit length) from the best valid latent and others drawn at random from "
        "the valid observations, inside a box of "
        f"±4 prior scales; `+scales` / `+prior` / `+likelihood` add the penalty's unit gradient "
        f"with weight alpha = {config.alpha}.",
        "- `lbfgs`: BoTorch `optimize_acqf` (L-BFGS-B) of LogEI inside the same box, one restart "
        "per proposal, no penalty (the paper's over-exploring baseline).",
        f"- Metrics over each run's proposals, then mean ± SEM over seeds: best valid objective, "
        f"mean of the top-{config.top} valid objectives, % valid proposals, mean ScaLES of the "
        "proposals (exact, float64).",
        "",
        "## Results",
        "",
        f"| method | best valid objective | top-{config.top} mean | % valid proposals | "
        "mean ScaLES of proposals |",
        "|---|---|---|---|---|",
    ]
    for _, row in summary.iterrows():
        short = "" if row["top_mean_n"] == row["seeds"] else f" (n={row['top_mean_n']})"
        lines.append(
            f"| `{row['method']}` | {_pm(row['best_mean'], row['best_sem'])} | "
            f"{_pm(row['top_mean_mean'], row['top_mean_sem'])}"
            f"{short} | "
            f"{_pm(row['valid_pct_mean'], row['valid_pct_sem'], 1)} | "
            f"{_pm(row['scales_mean_mean'], row['scales_mean_sem'], 1)} |"
        )
    lines += ["", "## Verdict", "", verdict(summary), "", "## Figures", ""]
    for name in figures:
        lines.append(f"![{name}]({name})" if name.endswith(".png") else name)
    lines += [
        "",
        "The points of every run are in `results-runs.parquet` (the points table of "
        "`scales_viz.lso.records`); import it on the Optimisers page to browse them.",
        "",
    ]
    points.to_parquet(out / "results-runs.parquet", index=False)
    path = out / "results.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def reproduce_sweep(
    spec: str,
    *,
    objective: str,
    config: ReproduceConfig,
    store: Any,
    ray: str | None,
    workers: int | None = None,
    allow_code: bool = False,
    methods: Sequence[Method] = METHODS,
    on_message: Callable[[tuple[Any, ...], Any], None] | None = None,
) -> pd.DataFrame:
    """:func:`reproduce` with every run a sweep trial, in parallel (local processes, or Ray
    tasks when `ray` is given), recorded in `store`; the same points table, in the same order.

    Raises:
        RuntimeError: a run failed or its worker died (the report needs every run).
    """
    from scales_viz.lso.sweep import SweepConfig, Trial, run_sweep

    sweep = SweepConfig(
        model=spec,
        objectives=(objective,),
        optimizers=tuple(dict.fromkeys(m.optimizer for m in methods)),
        penalties=tuple(dict.fromkeys(m.penalty for m in methods)),
        seeds=tuple(range(config.seeds)),
        budget=config.budget,
        batch_size=config.batch_size,
        n_initial=config.n_initial,
        initial="data",
        alpha=config.alpha,
        allow_code=allow_code,
    )
    pairs = [(seed, method) for seed in range(config.seeds) for method in methods]
    trials = [
        Trial(i, objective, method.optimizer, method.penalty, seed)
        for i, (seed, method) in enumerate(pairs)
    ]
    result = run_sweep(
        sweep,
        store,
        ray=ray,
        workers=workers,
        keep_steps=True,
        on_message=on_message,
        trials=trials,
    )
    frames = []
    for outcome in result.outcomes:
        trial = outcome.trial
        if outcome.status in (RunStatus.FAILED, RunStatus.INTERRUPTED, None):
            raise RuntimeError(f"{trial.label} seed {trial.seed} failed: {outcome.reason}")
        frames.append(
            points_frame(
                outcome.steps,
                run=f"{trial.label}/{trial.seed}",
                optimizer=trial.label,
                seed=trial.seed,
            )
        )
    return pd.concat(frames, ignore_index=True)


def run_and_report(
    model: LatentModel,
    *,
    objective: str,
    config: ReproduceConfig,
    out: Path,
    command: str,
    on_run: Callable[[str, int, Any], None] | None = None,
    on_step: Callable[[Any], Any] | None = None,
    runner: Callable[[], pd.DataFrame] | None = None,
) -> tuple[Path, pd.DataFrame]:
    """:func:`reproduce` (or `runner`, e.g. :func:`reproduce_sweep`) then
    :func:`write_report`; returns the report path and the summary."""
    start = time.perf_counter()
    if runner is not None:
        points = runner()
    else:
        points = reproduce(
            model, objective=objective, config=config, on_run=on_run, on_step=on_step
        )
    path = write_report(
        points,
        model=model,
        objective=objective,
        config=config,
        out=out,
        seconds=time.perf_counter() - start,
        command=command,
    )
    return path, summarise(points, top=config.top)
