"""The `scales-viz` command line."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from scales_viz import __version__

APP = Path(__file__).resolve().parents[1] / "app.py"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501


def _serve(args: argparse.Namespace) -> int:
    if not APP.exists():
        print(f"error: the dashboard entry point {APP} is missing.", file=sys.stderr)
        return 2
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        args.host,
        "--server.port",
        str(args.port),
    ]
    return subprocess.call(command)


def _train(args: argparse.Namespace) -> int:
    import logging

    from scales_viz.models.registry import model_dir
    from scales_viz.training.recipes import train_builtin

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = args.out or model_dir(args.name)
    manifest = train_builtin(args.name, seed=args.seed, out=out, data_dir=args.data_dir)
    print(f"wrote {out}: metrics {manifest['metrics']}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from scales_viz.evaluation import evaluate_model, write_model_card
    from scales_viz.models.registry import load_model, model_dir

    model = load_model(args.name)
    with tqdm(total=100, desc="evaluate", unit="%") as bar:

        def progress(stage: str, fraction: float) -> None:
            bar.set_description(stage)
            bar.n = round(100 * fraction) if stage == "scales" else bar.n
            bar.refresh()

        evaluation = evaluate_model(
            model, group_size=args.group_size, seed=args.seed, progress=progress
        )
    out = args.out or model_dir(args.name)
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
    from scales_viz.models.registry import load_model

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    warnings.filterwarnings("ignore", module="linear_operator")
    warnings.filterwarnings("ignore", module="gpytorch")
    model = load_model(args.name)
    objective = args.objective or TASKS.get(args.name.split("-")[0])
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

        command = "scales-viz " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        path, summary = run_and_report(
            model,
            objective=objective,
            config=config,
            out=args.out,
            command=command.strip(),
            on_run=on_run,
            on_step=on_step,
        )
    print(summary.to_string(index=False))
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (sub-commands are added here as they land)."""
    parser = argparse.ArgumentParser(prog="scales-viz", description=__doc__)
    parser.add_argument("--version", action="version", version=f"scales-viz {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the dashboard")
    serve.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.set_defaults(func=_serve)
    train = commands.add_parser(
        "train", help="re-run a built-in model's training (deterministic on CPU for a seed)"
    )
    train.add_argument("name", help="built-in model name")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, default=None, help="default: assets/models/NAME")
    train.add_argument(
        "--data-dir",
        type=Path,
        default=Path.home() / ".cache" / "scales-viz",
        help="where downloaded training data (the molsets wheel) is kept",
    )
    train.set_defaults(func=_train)
    evaluate = commands.add_parser(
        "evaluate", help="measure a built-in model and write its model card (README.md)"
    )
    evaluate.add_argument("name", help="built-in model name")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--group-size", type=int, default=500, help="points per group")
    evaluate.add_argument("--out", type=Path, default=None, help="default: assets/models/NAME")
    evaluate.set_defaults(func=_evaluate)
    reproduce = commands.add_parser(
        "reproduce",
        help="run the paper's LSO comparison (penalties none/scales/prior/likelihood, L-BFGS) "
        "on a built-in model and write results.md",
    )
    reproduce.add_argument("name", help="built-in model name, e.g. expressions")
    reproduce.add_argument("--objective", default=None, help="default: the model's main task")
    reproduce.add_argument("--seeds", type=int, default=5)
    reproduce.add_argument("--rounds", type=int, default=20)
    reproduce.add_argument("--batch-size", type=int, default=10)
    reproduce.add_argument("--out", type=Path, default=Path("docs"), help="default: docs/")
    reproduce.set_defaults(func=_reproduce)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `scales-viz` console script."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code
