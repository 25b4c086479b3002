#!/usr/bin/env bash
# The GPU check of the device-resident pipeline: CUDA tests, the bench matrix (light and edge
# x fp32/fp16 x CUDA graphs off/on, camera 1024x2048) and a stage-size sweep, as JSON under
# the output folder. Within 8 minutes on one GPU (the driver stops starting cells at 7).
#
#   benchmarks/gpu_check.sh [--out DIR]     # on the GPU machine (default DIR: $OUT, else
#                                            # benchmarks/results/gpu-<UTC time>)
#   benchmarks/gpu_check.sh --cpu-tiny      # the same steps on the CPU at tiny sizes, first
#
# Python: $PYTHON, else .venv/bin/python of the checkout, else python3; the checkout is put on
# PYTHONPATH, so nothing needs installing where torch, OpenCV, tqdm and pytest are present.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; else python=python3; fi
fi
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "$python" "$root/benchmarks/gpu_check.py" "$@"
