#!/usr/bin/env bash
# Builds remapfs_bench (Release, in build-bench unless BUILD_DIR is given) and
# runs it: RemapTable memory per entry and lookup times at 1,000,000 remaps,
# the commit of 1M changes and Engine::Open of a set holding 1M remaps and
# of a set with a 2 TiB spare; then a big table (every other sector
# remapped): lookups and Engine I/O at 1M and 10M remaps against an empty
# table, Engine::Open at 10M. Ends with a summary block. Needs ~6 GB in
# $TMPDIR: the images are sparse (the filesystem must take a 2 TiB file),
# but the SPARE of the 10M-remap set is reserved (5 GB; cheap on ext4 or
# XFS, RAM on tmpfs).
# Usage: tests/bench/run.sh [BUILD_DIR] [benchmark args, e.g. --benchmark_filter=Find]
# Extra CMake arguments: REMAPFS_CMAKE_ARGS="..."
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-bench}
shift || true
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${REMAPFS_CMAKE_ARGS:-} >/dev/null
ninja -C "$build" remapfs_bench
exec "$build/tests/bench/remapfs_bench" "$@"
