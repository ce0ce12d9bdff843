#!/usr/bin/env bash
# The GPU-relevant benchmarks in one command: batched retraining of K = 64 flip sets on CUDA versus the
# scikit-learn CPU loop, the hypergradient comparison and the oracle's cost in firm fits, all with --device cuda.
#
# Usage, from the repository root with fairflip's environment active (extra arguments go to benchmarks.run):
#     bash benchmarks/gpu_check.sh [OUT_JSON] [--set NAME.KEY=JSON ...]
# Set FAIRFLIP_DATA to a data home holding KDD census-income for the oracle benchmark on real data.
set -euo pipefail

out="${1:-benchmarks/results_gpu.json}"
shift || true

python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device visible to torch')"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
nproc

python -m benchmarks.run --device cuda --only retrain hypergrad oracle --out "$out" "$@"
