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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (sub-commands are added here as they land)."""
    parser = argparse.ArgumentParser(prog="scales-viz", description=__doc__)
    parser.add_argument("--version", action="version", version=f"scales-viz {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the dashboard")
    serve.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.set_defaults(func=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `scales-viz` console script."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code
