#!/usr/bin/env bash
# Runs every test: installs the packages, builds, and runs ctest (unit tests
# of store/ and the integration tests that mount for real; those need root,
# /dev/fuse and loop devices, and are skipped with a message without them).
# Usage: tests/run.sh [BUILD_DIR] [extra ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
packaging/install-deps.sh
cmake -S . -B "$build" -G Ninja ${REMAPFS_CMAKE_ARGS:-} >/dev/null
ninja -C "$build"
ctest --test-dir "$build" --output-on-failure -j2 "$@"
