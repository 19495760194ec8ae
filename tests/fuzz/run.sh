#!/usr/bin/env bash
# Builds the libFuzzer targets if needed (clang, RELAYQ_FUZZ=ON) and runs each for N seconds
# (argument 1, default 60) on a scratch copy of its seed corpus: tests/fuzz/corpus is never
# written. Further arguments name the targets to run (default: all). Exits 1 when any target
# finds a crash, a leak, undefined behaviour or a timeout, printing the saved input's path.
#   FUZZ_BUILD  the build directory (default: build-fuzz at the top of the repository)
#   FUZZ_JOBS   ninja's -j (default 2)
#   FUZZ_WORK   where corpora, logs and crash inputs go (default: a new directory under /tmp)
set -euo pipefail

seconds=${1:-60}
shift || true
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${FUZZ_BUILD:-$root/build-fuzz}
jobs=${FUZZ_JOBS:-2}
work=${FUZZ_WORK:-$(mktemp -d /tmp/relayq-fuzz.XXXXXX)}

if [[ ! -f "$build/build.ninja" ]]; then
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DRELAYQ_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
ninja -C "$build" -j "$jobs" fuzz_targets

if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  targets=()
  for source in "$here"/*_fuzz.cpp; do targets+=("$(basename "$source" .cpp)"); done
fi

# UBSan reports count as failures; ASan's leak check stays on (libFuzzer reports leaks).
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0}

failed=0
echo "fuzzing ${#targets[@]} targets for ${seconds}s each; work directory $work"
for target in "${targets[@]}"; do
  binary="$build/fuzz/$target"
  if [[ ! -x "$binary" ]]; then
    echo "FAIL $target: not built"
    failed=1
    continue
  fi
  corpus="$work/$target/corpus"
  artifacts="$work/$target/artifacts/"
  log="$work/$target/log"
  mkdir -p "$corpus" "$artifacts"
  if [[ -d "$here/corpus/$target" ]]; then cp -r "$here/corpus/$target/." "$corpus/"; fi
  status=0
  # -max_total_time ends the run; timeout(1) only guards against a hung process.
  timeout --kill-after=10 $((seconds + 60)) "$binary" "$corpus" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -dict="$here/smtp.dict" \
    -artifact_prefix="$artifacts" -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  crash=$(find "$artifacts" -type f | head -1)
  if [[ $status -ne 0 || -n "$crash" ]]; then
    failed=1
    echo "FAIL $target (exit $status): input ${crash:-none saved}; log $log"
    [[ -n "$crash" ]] && echo "     once fixed, save it as tests/fuzz/corpus/$target/crash-<what it broke>"
    grep -m1 -A30 -E '^==[0-9]+==ERROR|runtime error|fuzz invariant|deadly signal' "$log" || tail -30 "$log"
  else
    echo "ok   $target: ${runs:-?} runs, ${rate:-?} exec/s, corpus $(find "$corpus" -type f | wc -l) files"
  fi
done
exit $failed
