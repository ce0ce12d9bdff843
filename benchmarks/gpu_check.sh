#!/usr/bin/env bash
# The GPU checks in one command: the CUDA-versus-CPU tests (tests/test_cuda.py and the CUDA test of the relaxed
# oracle), then the GPU-relevant benchmarks with --device cuda: batched retraining of K = 64 flip sets on CUDA
# versus the scikit-learn CPU loop, the hypergradient comparison and the oracle's cost in firm fits.
#
# Usage, from the repository root with fairflip's environment active (extra arguments go to benchmarks.run):
#     bash benchmarks/gpu_check.sh [OUT_JSON] [--set NAME.KEY=JSON ...]
# PYTHON names the interpreter (default: python). Set FAIRFLIP_DATA to a data home holding KDD census-income for
# the oracle benchmark on real data.
# Every step runs even when an earlier one fails; the script exits non-zero if any failed.
set -uo pipefail
py="${PYTHON:-python}"  # the interpreter holding fairflip

out="${1:-benchmarks/results_gpu.json}"
shift || true

"$py" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device visible to torch')" || exit 1
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
"$py" -c "import torch, os; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cpus', os.cpu_count())"

status=0
"$py" -m pytest -q -p no:cacheprovider tests/test_cuda.py "tests/test_relaxed.py::test_relaxed_oracle_on_cuda_matches_cpu" \
    || status=1
"$py" -m benchmarks.run --device cuda --only retrain hypergrad oracle --out "$out" "$@" || status=1
exit "$status"
