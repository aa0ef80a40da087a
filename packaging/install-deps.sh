#!/usr/bin/env bash
# Installs what remapfs needs to build, test and run, from Debian's packages.
# Idempotent; skips apt-get when everything is already there.
set -euo pipefail

PACKAGES=(
  cmake ninja-build g++ clang libclang-rt-dev pkg-config
  libfuse3-dev fuse3 liburing-dev libsqlite3-dev sqlite3 libspdlog-dev libfmt-dev
  libcli11-dev nlohmann-json3-dev libgtest-dev libbenchmark-dev
  e2fsprogs util-linux fio psmisc procps jq python3 python3-prometheus-client nbdkit libnbd-bin gddrescue
  librsvg2-bin python3-pil
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
