#!/usr/bin/env bash
# The one prepared script for a lent GPU (15 minutes of device time, start-up included): CUDA tests,
# the GPU training benchmark and the original report's full study, each under its own time limit.
#
# Before (on the CPU machine): pip download --no-deps -d .whl pyro-ppl pyro-api opt-einsum tqdm
# Then:  run(command="bash benchmarks/gpu_session.sh", carry=[".whl"], timeout_s=600)
# and copy $OUT/* into benchmarks/results/ (the files name their device and date).
set -uo pipefail
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
pip install --no-deps --quiet .whl/*.whl                      # Pyro & co. (pure Python; the image lacks them)
pip install --no-deps --quiet -e .
nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/device.txt" 2>&1
timeout 150 python -m pytest -m cuda -q -p no:cacheprovider tests/test_cuda_path.py tests/test_vae_train.py \
    tests/test_vae_model.py tests/test_vae_evaluate.py > "$OUT/cuda_tests.txt" 2>&1
timeout 90 python benchmarks/bench_train.py --device cuda --steps 50 --rounds 3 \
    --record "$OUT/train_bench_cuda.txt" > /dev/null 2>&1
timeout 330 python benchmarks/gpu_study.py --device cuda --out /tmp/gpu_study \
    --record "$OUT/gpu_study_cuda.json" > "$OUT/gpu_study_log.txt" 2>&1
cp /tmp/gpu_study/report.md "$OUT/gpu_study_report.md" 2>/dev/null || true
tail -n 3 "$OUT/cuda_tests.txt"
