#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) in build-fuzz and runs
# each for SECONDS (default 30) on a copy of its seed corpus, so that the
# repository is never modified. Prints the executions of every target; exits
# non-zero if one crashed, leaked, hung or ran out of memory, and keeps what
# it found in build-fuzz/fuzz-artifacts/TARGET/ with the log.
# Usage: tests/fuzz/run.sh [SECONDS_PER_TARGET]
# Reproduce a finding: build-fuzz/tests/fuzz/TARGET build-fuzz/fuzz-artifacts/TARGET/crash-...
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-30}
build=${REMAPFS_FUZZ_BUILD:-build-fuzz}
targets=(fuzz_parse fuzz_control fuzz_open fuzz_engine fuzz_formats)

cxx=${REMAPFS_FUZZ_CXX:-clang++}
if ! command -v "$cxx" >/dev/null; then
  echo "run.sh: $cxx not found; install clang and its fuzzer runtime (Debian: clang libclang-rt-dev)" >&2
  exit 2
fi
cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DREMAPFS_FUZZ=ON >/dev/null
ninja -C "$build" "${targets[@]}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
  cp -r "tests/fuzz/corpus/$t/." "$work/$t/corpus/"
  log="$work/$t/log"
  status=ok
  extra=()
  # Operation sequences: let inputs be long (about 100 operations) at once.
  [ "$t" = fuzz_engine ] && extra=(-max_len=600 -len_control=0)
  # -timeout: one input may take at most 25 s (a hang); -rss_limit_mb: 2 GiB.
  if ! "$build/tests/fuzz/$t" -max_total_time="$secs" -print_final_stats=1 -timeout=25 -rss_limit_mb=2048 \
      ${extra[@]+"${extra[@]}"} -artifact_prefix="$work/$t/artifacts/" "$work/$t/corpus" >"$log" 2>&1; then
    status=FAILED
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  printf '%-13s %-6s %10s executions in %s s\n' "$t" "$status" "${execs:-?}" "$secs"
  if [ "$status" != ok ]; then
    failed=1
    keep="$build/fuzz-artifacts/$t"
    mkdir -p "$keep"
    cp "$work/$t/artifacts/." "$keep/" -r
    cp "$log" "$keep/log"
    grep -E 'ERROR|fuzz check failed|runtime error|SUMMARY' "$log" | head -20 >&2 || true
    echo "  log and input kept in $keep/" >&2
  fi
done
exit "$failed"
