#!/usr/bin/env bash
# The GPU check (issue 18): one script for a bare GPU machine that reaches no registry.
#
#   bash bench/gpu_check.sh OUT_DIR
#
# It runs that machine's own python3 (PyTorch with CUDA, numpy, pandas, pytest, hypothesis,
# tqdm, safetensors are there; Streamlit and Plotly are not) on the library from the checkout
# (PYTHONPATH=.), and installs any wheels found in .whl/ first (carry them with the checkout;
# none are needed on the nvidia-h200 image as of 2026-11). In about 5 minutes it writes to
# OUT_DIR: nvidia-smi's report, the CUDA tests, bench_scales.py on the GPU, a 256x256 slice
# of the expressions model and the throughput of scoring 10^6 prior latents
# (bench/bench_gpu.py). Each step has its own time limit; a failed step is recorded and the
# script goes on, then exits non-zero if any step failed.
set -uo pipefail
out="${1:?usage: bash bench/gpu_check.sh OUT_DIR}"
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONPATH=.
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=.:/tmp/site
fi
failed=0
step() {  # step NAME SECONDS COMMAND...: run with a limit, output to OUT_DIR/NAME.txt
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout "$limit" "$@" > "$out/$name.txt" 2>&1
    local rc=$?
    echo "$name: exit $rc in $((SECONDS - start)) s" | tee -a "$out/steps.txt"
    [ "$rc" -eq 0 ] || failed=1
}
step nvidia-smi 30 nvidia-smi
step versions 60 python3 -c "import torch, numpy; print(torch.__version__, torch.version.cuda, \
torch.cuda.is_available(), torch.cuda.get_device_name(0), numpy.__version__)"
step cuda-tests 150 python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_score.py \
    tests/test_tangents.py
step bench-scales 150 python3 bench/bench_scales.py --device cuda --no-write
step slice-and-throughput 180 python3 bench/bench_gpu.py --out "$out" --device cuda
echo "gpu check: $([ $failed -eq 0 ] && echo all steps passed || echo some steps FAILED)" \
    | tee -a "$out/steps.txt"
exit $failed
