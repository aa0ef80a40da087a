#!/usr/bin/env bash
# Builds the Debian package into packaging/out/: the source tree is copied to
# a temp dir with packaging/debian as its debian/ directory.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v dh >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debhelper >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/remapfs-0.1.0"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$tmp/remapfs-0.1.0"
cp -r packaging/debian "$tmp/remapfs-0.1.0/debian"
(cd "$tmp/remapfs-0.1.0" && dpkg-buildpackage -us -uc -b >"$tmp/build.log" 2>&1) || { tail -40 "$tmp/build.log"; exit 1; }
mkdir -p packaging/out
cp "$tmp"/*.deb packaging/out/
ls packaging/out/*.deb
