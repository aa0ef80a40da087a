#!/usr/bin/env bash
# Builds remapfs_bench (Release, in build-bench unless BUILD_DIR is given) and
# runs it: RemapTable memory per entry and lookup times at 1,000,000 remaps,
# the commit of 1M changes and Engine::Open of a set holding 1M remaps, and
# of a set with a 2 TiB spare. Ends with a summary block. Needs ~0.1 GB in
# $TMPDIR (the images are sparse; the filesystem must take a 2 TiB file).
# Usage: tests/bench/run.sh [BUILD_DIR] [benchmark args, e.g. --benchmark_filter=Find]
# Extra CMake arguments: REMAPFS_CMAKE_ARGS="..."
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-bench}
shift || true
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${REMAPFS_CMAKE_ARGS:-} >/dev/null
ninja -C "$build" remapfs_bench
exec "$build/tests/bench/remapfs_bench" "$@"
