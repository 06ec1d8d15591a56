#!/usr/bin/env bash
# The wheel, installed as a user would (pip install 'scales-viz[chem]'), into a new virtual
# environment, and run from a folder outside the checkout: tests/installed/smoke.py checks
# that it loads every built-in model and serves every view. make test runs this.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
python="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$python" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$work/dist" "$repo"
wheel=("$work"/dist/scales_viz-*.whl)
echo "built ${wheel[0]##*/} ($(du -h "${wheel[0]}" | cut -f1))"
"$python" -m venv "$work/venv"
# constraints.txt pins torch to the CPU build on this machine (any other pulls CUDA wheels).
"$work/venv/bin/python" -m pip install --quiet -c "$repo/constraints.txt" "${wheel[0]}[chem]"
cd "$work"
"$work/venv/bin/python" "$repo/tests/installed/smoke.py"
