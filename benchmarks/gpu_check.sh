#!/usr/bin/env bash
# The GPU checks of issue 18 as one prepared run, for a lent GPU machine (CI has none):
#   bash benchmarks/gpu_check.sh [STEPS] [bench seconds]
# STEPS: a comma-separated choice of tests (tests marked gpu and the device tests), parity (`ember parity`),
# cli (`ember train mlp|lenet|gpt --device cuda`, short) and bench (benchmarks/bench_gpu.py); default all.
# Results go to $OUT (the device tool's folder) or benchmarks/results/gpu-run/; commit what matters
# under benchmarks/results/. Data: $EMBER_DATA, else ./.devdata (mnist/, tinyshakespeare/).
set -u
STEPS=,${1:-tests,parity,cli,bench},
BENCH_S=${2:-240}
OUT=${OUT:-benchmarks/results/gpu-run}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export EMBER_DATA=${EMBER_DATA:-$PWD/.devdata}
PY=${PYTHON:-python3}
start=$(date +%s)
stamp() { echo "== $1 ($(( $(date +%s) - start )) s)"; }

stamp machine
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  $PY -c "import sys, numpy, cupy; print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'cupy', cupy.__version__)"
  $PY -c "import ember; print('ember kernels:', ember.kernels.backend(), 'cuda available:', ember.cuda_available())"
} 2>&1 | tee "$OUT/machine.txt"

if [[ $STEPS == *,tests,* ]]; then
stamp "GPU tests"
timeout 240 $PY -m pytest -q -p no:cacheprovider -rs tests/gpu tests/kernels/test_cuda_sources.py tests/testing tests/autograd/test_devices.py \
  2>&1 | tee "$OUT/gpu_tests.log" | tail -40

fi

if [[ $STEPS == *,parity,* ]]; then
stamp "ember parity"
timeout 300 $PY -m ember parity --device cuda --json > "$OUT/parity.jsonl" 2> "$OUT/parity.err"
echo "parity exit $?"
grep -v '^{' "$OUT/parity.jsonl" | tail -60
fi

if [[ $STEPS == *,cli,* ]]; then
  stamp "ember train --device cuda"
  { timeout 90 $PY -m ember train mlp --device cuda --epochs 1 --no-progress --json
    timeout 90 $PY -m ember train lenet --device cuda --epochs 1 --no-progress --json
    timeout 120 $PY -m ember train gpt --device cuda --max-iters 200 --eval-interval 100 --eval-iters 10 \
      --out /tmp/ember-gpt-run
  } 2>&1 | tee "$OUT/cli.log" | tail -20
fi

if [[ $STEPS == *,bench,* ]]; then
  stamp "bench_gpu ($BENCH_S s)"
  timeout $(( BENCH_S + 60 )) $PY benchmarks/bench_gpu.py --budget-s "$BENCH_S" --out "$OUT/gpu.json" \
    2>&1 | tee "$OUT/bench.log" | tail -40
fi
stamp done
