#!/usr/bin/env bash
# gpu_checks.sh: everything that needs a GPU, in one run, with logs under $OUT (default
# ./gpu-logs). Used for the records in docs/gpu-checks.md:
#   1. build (CUDA detected), 2. every test incl. the GPU tests and the CPU-vs-CUDA parity
#   suite (one PASS/FAIL line per op and shape), 3. compute-sanitizer memcheck and racecheck
#   over the GPU tests, 4. benchmarks, 5. the demo trainer on CPU and on CUDA, 6. hf_check
#   (transformers parity) on CUDA, and the LM trainer and generator on CUDA.
# Usage: bash tests/gpu_checks.sh [--quick]   (--quick skips the sanitizer and benchmarks)
set -uo pipefail
out=${OUT:-gpu-logs}
mkdir -p "$out"
quick=0
[ "${1:-}" = "--quick" ] && quick=1
doctest_inc=/usr/include
[ -f /usr/include/doctest/doctest.h ] || doctest_inc=$PWD/.gpu-deps
jobs=$(nproc)
# The fixtures live in ../shared beside the checkout; a machine without it gets the copy carried
# in .gpu-deps/shared.
[ -d ../shared/fixtures ] || [ ! -d .gpu-deps/shared ] || ln -s "$PWD/.gpu-deps/shared" ../shared

step() { echo; echo "==== $* ($(date -u +%H:%M:%S))"; }

step build
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
make -j"$jobs" DOCTEST_INC="$doctest_inc" all build/run_tests >"$out/build.log" 2>&1 ||
  { tail -40 "$out/build.log"; exit 1; }
head -1 "$out/build.log"
grep -c warning "$out/build.log" | sed 's/^/compiler warnings: /'

step tests
# Line-buffered output and a time limit: a hung kernel ends the run with the log intact.
# TEST_ARGS passes doctest filters, e.g. TEST_ARGS="-sf=*test_cuda_matmul*".
timeout "${TEST_TIMEOUT:-600}" stdbuf -oL bash tests/run.sh build/run_tests -d ${TEST_ARGS:-} \
  >"$out/tests.log" 2>&1
tests_status=$?
[ $tests_status -eq 124 ] && echo "tests: TIMED OUT after ${TEST_TIMEOUT:-600} s; last lines:" &&
  tail -5 "$out/tests.log"
grep -E '^(PASS|FAIL) ' "$out/tests.log" >"$out/parity.log"
echo "parity lines: $(grep -c '^PASS' "$out/parity.log") PASS, $(grep -c '^FAIL' "$out/parity.log") FAIL"
grep '^FAIL' "$out/parity.log" | head -20
grep -E 'ERROR|FATAL' -A3 "$out/tests.log" | head -60
tail -1 "$out/tests.log"

if [ $quick -eq 0 ]; then
  step compute-sanitizer
  for tool in memcheck racecheck; do
    timeout "${SANITIZER_TIMEOUT:-300}" \
      compute-sanitizer --tool $tool --error-exitcode 99 build/run_tests -tc='cuda*' \
      >"$out/sanitizer-$tool.log" 2>&1
    echo "$tool: exit $? ; $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitizer-$tool.log" | tail -1)"
    tail -1 "$out/sanitizer-$tool.log"
  done

  step benchmarks
  for b in build/bench_scan build/bench_s4 build/bench_cuda build/bench_matmul; do
    [ -x $b ] && timeout "${BENCH_TIMEOUT:-120}" $b 2>&1 | tee "$out/$(basename $b).log" | tail -25
  done
fi

step trainer
timeout 120 build/train_mlp --device cpu --steps 200 --out "$out/mlp-cpu" >"$out/train-cpu.log" 2>&1
timeout 120 build/train_mlp --device cuda --steps 200 --out "$out/mlp-cuda" >"$out/train-cuda.log" 2>&1
tail -n 3 "$out/train-cpu.log" "$out/train-cuda.log"
paste -d' ' <(grep -o '"loss":[^,]*' "$out/mlp-cpu/metrics.jsonl" | head -5) \
  <(grep -o '"loss":[^,]*' "$out/mlp-cuda/metrics.jsonl" | head -5) | sed 's/^/cpu vs cuda: /'

step hf_check
fixture=../shared/fixtures/hf_mamba_tiny
for dtype in float64 float32; do
  timeout 120 build/hf_check $fixture $fixture/reference.safetensors --device cuda --dtype $dtype \
    >"$out/hf_check-cuda-$dtype.log" 2>&1
  echo "hf_check cuda $dtype: exit $? ; $(tail -1 "$out/hf_check-cuda-$dtype.log")"
done

step train_lm
[ -x build/train_lm ] && timeout 300 build/train_lm --device cuda --out "$out/lm-cuda" \
  >"$out/train_lm-cuda.log" 2>&1
echo "train_lm cuda: exit $?"; tail -n 6 "$out/train_lm-cuda.log"
[ -x build/generate ] && timeout 120 build/generate --model "$out/lm-cuda/checkpoint" \
  --prompt "The selective scan" --max-new-tokens 200 --device cuda >"$out/generate-cuda.log" 2>&1
echo "generate cuda: exit $?"; tail -n 4 "$out/generate-cuda.log"
exit $tests_status
