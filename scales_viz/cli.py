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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `scales-viz` console script."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code
