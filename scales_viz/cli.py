"""The `scales-viz` command line."""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scales_viz import __version__

if TYPE_CHECKING:
    from scales_viz.models import VAEModel

# Kept in step with scales_viz.lso.optimizers (not imported here: it pulls in BoTorch).
OPTIMIZER_CHOICES = ("random", "gp-ascent", "lbfgs", "turbo", "gradient")
PENALTY_CHOICES = ("none", "scales", "prior", "likelihood")
# Kept in step with scales_viz.lso.field.FIELD_FORMATS (not imported here: it pulls in pandas).
FIELD_FORMAT_CHOICES = ("poli", "weighted-retraining", "molscore", "tracker")
DEFAULT_HOST = "127.0.0.1"
SPEC_HELP = (
    "model spec: a built-in name, scales-paper:NAME[=DIR], a manifest (.toml/.json), a model "
    "directory, or python:module:factory"
)
DEFAULT_PORT = 8501


def _seed_list(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"seeds must be integers like 0,1,2; got {text!r}"
        ) from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"give one or more non-negative seeds; got {text!r}")
    return seeds


def _name_list(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"give one or more names, comma-separated; got {text!r}")
    return names


def _store_env(args: argparse.Namespace) -> None:
    """Make ``--store PATH`` the run store of this process and its children."""
    import os

    from scales_viz.lso.store import STORE_ENV

    if getattr(args, "store", None):
        os.environ[STORE_ENV] = str(Path(args.store).expanduser().resolve())


def _load(spec: str, path: Path | None = None) -> tuple[VAEModel, Path | None]:
    """The model a spec names (any kind: the command line may run code) and the directory
    its card and map go to by default (None when it has none: give --out)."""
    from scales_viz.models import load_model, parse_spec

    parsed = parse_spec(spec)
    return load_model(parsed, path, allow_code=True), parsed.directory


def _out_or_error(out: Path | None, default: Path | None, spec: str) -> Path | None:
    if out is not None:
        return out
    if default is None:
        print(
            f"error: give --out for {spec!r}: only built-in models and model directories "
            "have a folder to write into by default.",
            file=sys.stderr,
        )
    return default


def _dashboard_app() -> Path | None:
    """The dashboard's entry script, installed or in a checkout (found without importing it:
    the library never imports Streamlit)."""
    import importlib.util

    spec = importlib.util.find_spec("scales_viz_app")
    if spec is None or spec.origin is None:
        return None
    app = Path(spec.origin).with_name("app.py")
    return app if app.is_file() else None


def _serve(args: argparse.Namespace) -> int:
    import json
    import os

    from scales_viz.errors import ScalesVizError
    from scales_viz.models.user import USER_MODELS_ENV, parse_spec, read_config

    specs = list(args.model)
    if args.config is not None:
        try:
            config = read_config(args.config)
        except ScalesVizError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        specs = config.models + specs
        if config.store and not args.store:
            args.store = config.store
    _store_env(args)
    if specs:
        try:
            for spec in specs:
                parse_spec(spec)
        except ScalesVizError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        os.environ[USER_MODELS_ENV] = json.dumps(specs)
    if args.ray:
        from scales_viz.cluster import RAY_ENV

        os.environ[RAY_ENV] = args.ray
    app = _dashboard_app()
    if app is None:
        print(
            "error: the dashboard (package scales_viz_app) is not installed beside scales_viz; "
            "reinstall scales-viz.",
            file=sys.stderr,
        )
        return 2
    # The launcher warms the imports and the default model, then runs `streamlit run` on it.
    command = [
        sys.executable,
        "-m",
        "scales_viz_app.ui.launch",
        "--server.address",
        args.host,
        "--server.port",
        str(args.port),
    ]
    return subprocess.call(command)


def _train(args: argparse.Namespace) -> int:
    import logging

    from scales_viz.models.registry import model_dir
    from scales_viz.training.recipes import CHECKPOINT_DIR, train_builtin
    from scales_viz.training.vae import Checkpointing

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = args.out or model_dir(args.name)
    checkpoint = args.checkpoint or CHECKPOINT_DIR / f"{args.name}-seed{args.seed}.pt"
    if args.resume and not checkpoint.is_file():
        print(f"error: --resume: no checkpoint at {checkpoint}.", file=sys.stderr)
        return 2
    checkpointing = Checkpointing(
        path=checkpoint,
        every=args.checkpoint_every,
        resume=args.resume,
        max_seconds=None if args.max_minutes is None else 60.0 * args.max_minutes,
    )
    manifest = train_builtin(
        args.name, seed=args.seed, out=out, data_dir=args.data_dir, checkpointing=checkpointing
    )
    print(f"wrote {out}: metrics {manifest['metrics']}")
    return 0


def _learn_summary(args: argparse.Namespace) -> int:
    import datetime
    import json
    import shlex

    import numpy as np
    from tqdm import tqdm

    from scales_viz.lso.teaching import (
        PlaneModel,
        learn_plane,
        paired_verdict,
        summarise_starts,
    )

    model, directory = _load(args.name)
    out = _out_or_error(args.out, directory and directory / "learn_summary.json", args.name)
    if out is None:
        return 2
    plane_model = PlaneModel(model, learn_plane(model))
    coords = plane_model.data_latents.numpy().astype(np.float64)
    pick = np.random.default_rng(args.seed).choice(coords.shape[0], args.starts, replace=False)
    print(
        f"{args.starts} starts x 2 runs of {args.evaluations} evaluations: a few minutes per "
        "start on a laptop CPU.",
        file=sys.stderr,
    )
    with tqdm(total=args.starts, desc="starts", unit="start") as bar:
        record = summarise_starts(
            plane_model,
            args.objective,
            coords[pick],
            penalty=args.penalty,
            alpha=args.alpha,
            evaluations=args.evaluations,
            progress=lambda done, _total: bar.update(done - bar.n),
        )
    plain, penalised = record["aggregate"]["plain"], record["aggregate"]["penalised"]
    record["paired"] = paired_verdict(record)
    record["verdict"] = (
        f"With the {args.penalty} penalty, {penalised['valid_share_mean']:.0%} of proposals "
        f"were valid against {plain['valid_share_mean']:.0%} without it; the best valid "
        f"objective averaged {penalised['best_objective_mean']:.3f} against "
        f"{plain['best_objective_mean']:.3f}. " + record["paired"]["verdict"]
    )
    record["command"] = shlex.join(["scales-viz", *sys.argv[1:]])
    record["date"] = datetime.date.today().isoformat()
    record["start_indices"] = [int(i) for i in pick]
    out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(record["verdict"])
    print(f"wrote {out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from scales_viz.evaluation import add_contrast, evaluate_model, raw_manifest, write_model_card

    model, directory = _load(args.name, args.path)
    out = _out_or_error(args.out, directory, args.name)
    if out is None:
        return 2
    with tqdm(total=100, desc="evaluate", unit="%") as bar:

        def progress(stage: str, fraction: float) -> None:
            bar.set_description(stage)
            bar.n = round(100 * fraction) if stage == "scales" else bar.n
            bar.refresh()

        evaluation = evaluate_model(
            model, group_size=args.group_size, seed=args.seed, progress=progress
        )
    if args.contrast_of is not None:
        from scales_viz.models.registry import model_dir

        kept = add_contrast(
            model_dir(args.contrast_of), model.name, raw_manifest(model), evaluation
        )
        print(f"kept the measurement as a contrast of {args.contrast_of}: {kept}")
    path = write_model_card(model, evaluation, out)
    print(f"wrote {path}")
    print(f"validity: {evaluation.validity}")
    print(f"AUROC: {evaluation.auroc}")
    print(f"seconds: {evaluation.seconds}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    import logging
    import shlex
    import warnings

    from tqdm import tqdm

    from scales_viz.lso.reproduce import METHODS, TASKS, ReproduceConfig, run_and_report

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    warnings.filterwarnings("ignore", module="linear_operator")
    warnings.filterwarnings("ignore", module="gpytorch")
    model, _ = _load(args.name)
    task = str(model.manifest.get("task", "")) if model.manifest else ""
    objective = args.objective or TASKS.get(task) or TASKS.get(args.name.split("-")[0])
    if objective is None:
        print(f"error: no default objective for {args.name!r}; pass --objective.", file=sys.stderr)
        return 2
    config = ReproduceConfig(seeds=args.seeds, rounds=args.rounds, batch_size=args.batch_size)
    total = config.seeds * len(METHODS) * (config.rounds + 1)
    with tqdm(total=total, desc="reproduce", unit="step") as bar:

        def on_run(label: str, seed: int, result: object) -> None:
            bar.write(f"{label} seed {seed}: {result.reason}, best {result.best_objective:.3f}")  # type: ignore[attr-defined]

        def on_step(step: object) -> None:
            bar.update(1)

        runner = None
        if args.ray is not None or args.workers is not None:
            from scales_viz.lso.reproduce import reproduce_sweep
            from scales_viz.lso.store import RunStore

            _store_env(args)

            def on_message(message: tuple[object, ...], outcome: object) -> None:
                if message[0] == "step":
                    bar.update(1)
                elif message[0] == "end":
                    bar.write(f"{outcome.trial.label} seed {outcome.trial.seed}: {message[3]}")  # type: ignore[attr-defined]

            def runner() -> object:
                return reproduce_sweep(
                    args.name,
                    objective=objective,
                    config=config,
                    store=RunStore(),
                    ray=args.ray,
                    workers=args.workers,
                    allow_code=True,
                    on_message=on_message,
                )

        command = "scales-viz " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        path, summary = run_and_report(
            model,
            objective=objective,
            config=config,
            out=args.out,
            command=command.strip(),
            on_run=on_run,
            on_step=on_step,
            runner=runner,
        )
    print(summary.to_string(index=False))
    print(f"wrote {path}")
    return 0


def _quiet_gp_warnings() -> None:
    import warnings

    warnings.filterwarnings("ignore", module="linear_operator")
    warnings.filterwarnings("ignore", module="gpytorch")
    warnings.filterwarnings("ignore", module="botorch")


def _optimize(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from scales_viz.errors import ScalesVizError
    from scales_viz.lso.optimizers import Budget, Settings, optimizer_label
    from scales_viz.lso.recorded import run_recorded
    from scales_viz.lso.records import RunStatus, Step
    from scales_viz.lso.store import RunStore

    _store_env(args)
    _quiet_gp_warnings()
    try:
        model, _ = _load(args.model)
        settings = Settings(
            batch_size=args.batch_size,
            n_initial=args.initial,
            penalty=args.penalty,
            alpha=args.alpha,
        )
        budget = Budget(evaluations=args.budget)
        store = RunStore()
    except ScalesVizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    label = optimizer_label(args.optimizer, args.penalty)
    failed = 0
    for seed in args.seeds:
        with tqdm(total=budget.evaluations, desc=f"{label} seed {seed}", unit="pt") as bar:

            def advance(_: object, step: Step, bar: tqdm = bar) -> None:
                bar.update(step.size)

            try:
                info, result = run_recorded(
                    store,
                    model,
                    args.objective,
                    optimizer=args.optimizer,
                    budget=budget,
                    seed=seed,
                    settings=settings,
                    on_step=advance,
                )
            except ScalesVizError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
        failed += result.status is RunStatus.FAILED
        print(
            f"{info.id} {label} seed {seed}: {result.status.value} ({result.reason}); "
            f"best valid objective {result.best_objective:.4f}"
        )
    print(f"runs are in {store.path}")
    return 1 if failed else 0


def _sweep(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from scales_viz.lso.records import RunStatus
    from scales_viz.lso.store import RunStore
    from scales_viz.lso.sweep import SweepConfig, load_sweep_file, run_sweep

    _store_env(args)
    _quiet_gp_warnings()
    given = {
        "model": args.model,
        "objectives": args.objectives,
        "optimizers": args.optimizers,
        "penalties": args.penalties,
        "seeds": tuple(args.seeds) if args.seeds is not None else None,
        "budget": args.budget,
        "batch_size": args.batch_size,
        "n_initial": args.initial,
        "alpha": args.alpha,
    }
    if args.file is not None:
        config = load_sweep_file(args.file, **given)
    else:
        if args.model is None or args.objectives is None:
            print("error: give MODEL and --objectives, or --file SWEEP.toml.", file=sys.stderr)
            return 2
        config = SweepConfig(**{k: v for k, v in given.items() if v is not None})
    config = dataclasses.replace(config, allow_code=True)
    trials = config.trials()
    store = RunStore()
    where = f"Ray ({args.ray})" if args.ray else f"{args.workers or os.cpu_count()} local workers"
    print(f"{len(trials)} runs of {config.budget} evaluations on {where}; runs go to {store.path}")
    with tqdm(total=len(trials), desc="sweep", unit="run") as bar:

        def on_message(message: tuple[object, ...], outcome: Any) -> None:
            if message[0] == "end":
                bar.update(1)
                bar.write(
                    f"{outcome.run_id} {outcome.trial.label} {outcome.trial.objective} "
                    f"seed {outcome.trial.seed}: {message[2]} ({message[3]})"
                )

        result = run_sweep(config, store, ray=args.ray, workers=args.workers, on_message=on_message)
    for outcome in result.outcomes:
        if outcome.status is RunStatus.INTERRUPTED:
            trial = outcome.trial
            print(f"{outcome.run_id} {trial.label} seed {trial.seed}: {outcome.reason}")
    bad = sum(o.status in (RunStatus.FAILED, RunStatus.INTERRUPTED) for o in result.outcomes)
    print(f"{len(trials) - bad}/{len(trials)} runs ended normally in {result.seconds:.0f} s")
    return 1 if bad else 0


def _runs(args: argparse.Namespace) -> int:
    from scales_viz.errors import ScalesVizError
    from scales_viz.lso.io import export_runs, import_field_runs, import_runs, label_runs
    from scales_viz.lso.store import RunStore

    _store_env(args)
    try:
        store = RunStore()
        if args.action == "list":
            for info in store.runs(model=args.model):
                print(
                    f"{info.id}  {info.model:12s} {info.task:16s} {info.optimizer:22s} "
                    f"seed {info.seed:<4d} {info.status:11s} {info.created[:19]}  {info.name}"
                )
            return 0
        if args.action == "export":
            names = {info.id: info.name for info in store.runs()}
            data = export_runs(label_runs(store.points(args.ids), names), args.format)
            args.out.write_bytes(data)
            print(f"wrote {len(args.ids)} run(s) to {args.out}")
            return 0
        from tqdm import tqdm

        model, _ = _load(args.model)
        field = _field_format(args.file, args.format)
        with tqdm(desc="scoring", unit="pt") as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

            if field is None:
                stored = import_runs(
                    store,
                    args.file,
                    model=model,
                    objective=args.objective,
                    fmt=args.format,
                    progress=progress,
                )
            else:
                stored, summary = import_field_runs(
                    store,
                    args.file,
                    model=model,
                    objective=args.objective,
                    fmt=field,
                    text_column=args.text_column,
                    objective_column=args.objective_column,
                    progress=progress,
                )
        if field is not None:
            print(_field_summary(field, summary))
        for info in stored:
            print(f"imported {info.id}  {info.name}")
        return 0
    except ScalesVizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _field_format(path: Path, given: str | None) -> str | None:
    """The field format to read `path` as (None: scales-viz's own run schema)."""
    from scales_viz.lso.field import FIELD_FORMATS, detect_field_format
    from scales_viz.lso.io import refuse_pickle

    refuse_pickle(path.name)
    if given is not None:
        return given if given in FIELD_FORMATS else None
    if path.is_dir():  # a weighted-retraining run folder: results.npz and its GP data
        return "weighted-retraining"
    try:
        with path.open("rb") as handle:
            head = handle.read(1 << 16)
    except OSError:
        return None  # the importer names the problem
    refuse_pickle(path.name, head)
    first_line = head.split(b"\n", 1)[0]
    if path.suffix.lower() in (".csv", ".json") and (b"z_0" in first_line or b'"z"' in head):
        return None  # scales-viz's own schema carries latents
    if path.suffix.lower() == ".npz" and b"opt_points" not in head:
        return None
    return detect_field_format(path.name, head)


def _field_summary(fmt: str, summary: dict[str, Any]) -> str:
    from scales_viz.lso.field import FIELD_FORMATS

    line = f"read {summary['rows']} proposals as {FIELD_FORMATS[fmt]}; placed {summary['placed']}"
    if summary["latents"] == "encoded":
        line += (
            " with the model's encoder (not the optimiser's own latents); "
            f"{summary['round_trip']:.0%} decode back to the proposed string"
        )
    elif summary["latents"] == "mixed":
        line += (
            f": {summary['own_rows']} at the optimiser's own latents, the others with the "
            f"model's encoder ({summary['round_trip']:.0%} decode back to the proposed string)"
        )
    else:
        line += " at the optimiser's own latents"
    if summary["skipped"]:
        line += (
            f"; skipped {summary['skipped']} the model cannot encode (first: "
            f"{summary['first_skipped']!r})"
        )
    return "\n".join([line + ".", *(f"  GP data: {note}" for note in summary.get("gp", []))])


def _score(args: argparse.Namespace) -> int:
    import time

    from tqdm import tqdm

    from scales_viz.batch import inspect_latents, score_file, score_file_ray

    model, _ = _load(args.model)
    info = inspect_latents(args.latents, model.latent_dim)  # the whole file, before any work
    where = "one process" if args.ray is None else f"Ray ({args.ray})"
    print(f"{info.n:,} latents (d={info.d}) from {info.path.name}, scored in {where}.")
    start = time.perf_counter()
    with tqdm(total=info.n, desc="score", unit="latent") as bar:

        def progress(done: int, total: int) -> None:
            bar.n = done
            bar.refresh()

        if args.ray is None:
            rows = score_file(model, info, args.out, batch=args.batch, progress=progress)
        else:
            rows = score_file_ray(
                args.model, info, args.out, address=args.ray, batch=args.batch, progress=progress
            )
    print(f"wrote {rows:,} rows to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


def _map(args: argparse.Namespace) -> int:
    import time

    from tqdm import tqdm

    from scales_viz.projection import MAP_FILE, MapSettings, build_map

    model, directory = _load(args.name)
    out = _out_or_error(args.out, directory and directory / MAP_FILE, args.name)
    if out is None:
        return 2
    settings = MapSettings(
        n_data=args.n_data, n_prior=args.n_prior, n_far=args.n_far, seed=args.seed
    )
    start = time.perf_counter()
    with tqdm(desc="map", unit="pt") as bar:

        def progress(stage: str, done: int, total: int) -> None:
            bar.set_description(stage)
            bar.total = total
            bar.n = done
            bar.refresh()

        projection = build_map(model, settings, progress=progress)
    projection.save(out)
    print(f"wrote {out}: {projection.size} points in {time.perf_counter() - start:.1f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (sub-commands are added here as they land)."""
    parser = argparse.ArgumentParser(prog="scales-viz", description=__doc__)
    parser.add_argument("--version", action="version", version=f"scales-viz {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the dashboard")
    serve.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    store_help = "the run store file (default: $SCALES_VIZ_STORE or ~/.local/share/scales-viz)"
    serve.add_argument("--store", type=Path, default=None, help=store_help)
    serve.add_argument(
        "--ray",
        default=None,
        metavar="ADDRESS",
        help="compute large Slices grids and new model maps on a Ray cluster at ADDRESS "
        "('local' starts one here; pip install 'scales-viz[ray]')",
    )
    serve.add_argument(
        "--model",
        action="append",
        default=[],
        help="register a model (repeatable): scales-paper:NAME[=FOLDER], PATH/model.toml, a "
        "model directory, or python:package.module:factory",
    )
    serve.add_argument(
        "--config",
        type=Path,
        default=None,
        help='a TOML file with models = ["SPEC", ...] and optionally store = "PATH"',
    )
    serve.set_defaults(func=_serve)
    train = commands.add_parser(
        "train", help="re-run a built-in model's training (deterministic on CPU for a seed)"
    )
    train.add_argument("name", help="built-in model name")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--out", type=Path, default=None, help="default: scales_viz/assets/models/NAME"
    )
    train.add_argument(
        "--data-dir",
        type=Path,
        default=Path.home() / ".cache" / "scales-viz",
        help="where downloaded training data (the molsets wheel) is kept",
    )
    train.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint (same seed)"
    )
    train.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="the resumable state (default: checkpoints/NAME-seedS.pt)",
    )
    train.add_argument(
        "--checkpoint-every", type=int, default=500, help="save the state every N steps"
    )
    train.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="stop after this much training (state saved; the model directory is written "
        "from the weights so far; continue with --resume)",
    )
    train.set_defaults(func=_train)
    evaluate = commands.add_parser(
        "evaluate", help="measure a model and write its model card (README.md)"
    )
    evaluate.add_argument("name", help=SPEC_HELP)
    evaluate.add_argument(
        "--path", type=Path, default=None, help="folder of the scales-paper checkpoints"
    )
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--group-size", type=int, default=500, help="points per group")
    evaluate.add_argument(
        "--contrast-of",
        default=None,
        metavar="BUILTIN",
        help="also keep this measurement beside built-in BUILTIN, whose card and Model view "
        "then show it in the decoder-family table (measured, not shipped)",
    )
    evaluate.add_argument(
        "--out", type=Path, default=None, help="default: the built-in or model directory"
    )
    evaluate.set_defaults(func=_evaluate)
    summary = commands.add_parser(
        "learn-summary",
        help="the Learn walk's measured summary: gp-ascent on its plane from many starts, "
        "with and without a penalty",
    )
    summary.add_argument("name", nargs="?", default="expressions", help=SPEC_HELP)
    summary.add_argument("--objective", default="fit_target")
    summary.add_argument("--starts", type=int, default=20)
    summary.add_argument("--evaluations", type=int, default=30)
    summary.add_argument("--penalty", choices=PENALTY_CHOICES[1:], default="scales")
    summary.add_argument(
        "--alpha", type=float, default=1.0, help="the Learn walk's weight (its step 3 default)"
    )
    summary.add_argument("--seed", type=int, default=0, help="seeds the choice of starts")
    summary.add_argument(
        "--out", type=Path, default=None, help="default: MODEL_DIR/learn_summary.json"
    )
    summary.set_defaults(func=_learn_summary)
    reproduce = commands.add_parser(
        "reproduce",
        help="run the paper's LSO comparison (penalties none/scales/prior/likelihood, L-BFGS) "
        "on a model and write results.md",
    )
    reproduce.add_argument("name", help=SPEC_HELP)
    reproduce.add_argument("--objective", default=None, help="default: the model's main task")
    reproduce.add_argument("--seeds", type=int, default=5)
    reproduce.add_argument("--rounds", type=int, default=20)
    reproduce.add_argument("--batch-size", type=int, default=10)
    reproduce.add_argument("--out", type=Path, default=Path("docs"), help="default: docs/")
    reproduce.add_argument(
        "--ray",
        default=None,
        metavar="ADDRESS",
        help="run the comparison as a sweep on a Ray cluster at ADDRESS ('local' starts one); "
        "its runs are recorded in the run store",
    )
    reproduce.add_argument(
        "--workers", type=int, default=None, help="run it as a sweep of N parallel workers"
    )
    reproduce.add_argument("--store", type=Path, default=None, help="with --ray/--workers")
    reproduce.set_defaults(func=_reproduce)
    optimize = commands.add_parser(
        "optimize", help="run an LSO optimiser on a model, recording into the run store"
    )
    optimize.add_argument("model", help=SPEC_HELP)
    optimize.add_argument("--objective", required=True, help="e.g. fit_target, looks_like_7")
    optimize.add_argument("--optimizer", default="gp-ascent", choices=OPTIMIZER_CHOICES)
    optimize.add_argument("--penalty", default="none", choices=PENALTY_CHOICES)
    optimize.add_argument("--alpha", type=float, default=0.5)
    optimize.add_argument("--budget", type=int, default=100, help="evaluations per seed")
    optimize.add_argument("--batch-size", type=int, default=10)
    optimize.add_argument("--initial", type=int, default=20, help="initial design (GP methods)")
    optimize.add_argument("--seeds", type=_seed_list, default=[0], help="e.g. 0,1,2")
    optimize.add_argument("--store", type=Path, default=None, help=store_help)
    optimize.set_defaults(func=_optimize)
    mapping = commands.add_parser(
        "map", help="fit a model's UMAP map and score its points (built-ins ship theirs)"
    )
    mapping.add_argument("name", help=SPEC_HELP)
    mapping.add_argument("--n-data", type=int, default=1000)
    mapping.add_argument("--n-prior", type=int, default=500)
    mapping.add_argument("--n-far", type=int, default=500)
    mapping.add_argument("--seed", type=int, default=0)
    mapping.add_argument(
        "--out", type=Path, default=None, help="default: the built-in or model directory"
    )
    mapping.set_defaults(func=_map)
    sweep = commands.add_parser(
        "sweep",
        help="run a grid of optimisers x penalties x seeds (x objectives) in parallel, "
        "locally or on a Ray cluster, recording every run in the run store",
    )
    sweep.add_argument("model", nargs="?", default=None, help=SPEC_HELP + " (or in --file)")
    sweep.add_argument("--file", type=Path, default=None, help="a TOML sweep (flags override)")
    sweep.add_argument("--objectives", type=_name_list, default=None, help="e.g. fit_target")
    sweep.add_argument("--optimizers", type=_name_list, default=None, help="default: gp-ascent")
    sweep.add_argument("--penalties", type=_name_list, default=None, help="default: none,scales")
    sweep.add_argument("--seeds", type=_seed_list, default=None, help="e.g. 0,1,2 (default 0)")
    sweep.add_argument("--budget", type=int, default=None, help="evaluations per run (100)")
    sweep.add_argument("--batch-size", type=int, default=None)
    sweep.add_argument("--initial", type=int, default=None, help="initial design (GP methods)")
    sweep.add_argument("--alpha", type=float, default=None, help="penalty weight (0.5)")
    sweep.add_argument(
        "--ray", default=None, metavar="ADDRESS", help="Ray cluster address, or 'local'"
    )
    sweep.add_argument(
        "--workers", type=int, default=None, help="parallel runs (default: CPUs; Ray: all)"
    )
    sweep.add_argument("--store", type=Path, default=None, help=store_help)
    sweep.set_defaults(func=_sweep)
    score = commands.add_parser(
        "score",
        help="score a file of latents (ScaLES, baselines, validity, decodings, objectives) "
        "into Parquet, in one process or on a Ray cluster",
    )
    score.add_argument("model", help=SPEC_HELP)
    score.add_argument(
        "latents", type=Path, help=".npy (n x d), .npz (array z), .parquet or .csv (z_0 ..)"
    )
    score.add_argument("--out", type=Path, required=True, help="the Parquet file to write")
    score.add_argument(
        "--ray",
        default=None,
        metavar="ADDRESS",
        help="score on a Ray cluster at ADDRESS, or 'local' to start one here "
        "(pip install 'scales-viz[ray]')",
    )
    score.add_argument("--batch", type=int, default=2048, help="latents per chunk")
    score.set_defaults(func=_score)
    runs = commands.add_parser("runs", help="list, import or export stored LSO runs")
    runs.add_argument("--store", type=Path, default=None, help=store_help)
    actions = runs.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="list runs, newest first")
    listing.add_argument("--model", default=None)
    exporting = actions.add_parser("export", help="write runs as CSV, Parquet or JSON")
    exporting.add_argument("ids", nargs="+", help="run ids (see `runs list`)")
    exporting.add_argument("--format", choices=("csv", "parquet", "json"), default="csv")
    exporting.add_argument("--out", type=Path, required=True)
    importing = actions.add_parser(
        "import", help="import a run file (CSV, Parquet, JSON, NPZ), scoring it on a model"
    )
    importing.add_argument(
        "file", type=Path, help="the run file (or a weighted-retraining --result_root folder)"
    )
    importing.add_argument("--model", required=True, help=SPEC_HELP)
    importing.add_argument("--objective", required=True)
    importing.add_argument(
        "--format",
        default=None,
        choices=("csv", "parquet", "json", "npz", *FIELD_FORMAT_CHOICES),
        help="default: from the file (scales-viz's schema, or a field format it recognises: "
        "poli history JSON, weighted-retraining results.npz, MolScore scores.csv, a tracker "
        "CSV of step, string and objective)",
    )
    importing.add_argument(
        "--text-column", default=None, help="field formats: the column of proposed strings"
    )
    importing.add_argument(
        "--objective-column", default=None, help="field formats: the column of objective values"
    )
    runs.set_defaults(func=_runs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `scales-viz` console script."""
    from scales_viz.errors import ScalesVizError

    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ScalesVizError as exc:  # a bad spec, file or setting: one clear line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
