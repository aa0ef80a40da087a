#!/usr/bin/env bash
# Sets up remapfs and runs it: installs the packages, builds, then mounts.
#
#   tools/run.sh                         a demo set in a temp dir, with faults
#   tools/run.sh MAIN SPARE MOUNTPOINT   your set; made first if SPARE.db does
#                                        not exist (SPARE is created as a 64 MiB
#                                        file if missing)
#
# Needs root (or sudo) for the packages and for FUSE mounts.
set -euo pipefail
cd "$(dirname "$0")/.."
packaging/install-deps.sh
cmake -S . -B build -G Ninja >/dev/null
ninja -C build remapfs remapctl >/dev/null
bin=$PWD/build
remapfs=$bin/fuse/remapfs
remapctl=$bin/tools/remapctl

if [ $# -eq 3 ]; then
  main=$1 spare=$2 mnt=$3
  [ -e "$spare.db" ] || "$remapctl" create "$main" "$spare" --spare-size 64M
  "$remapfs" "$main" "$mnt" -o "spare=$spare"
  echo "mounted: $(ls "$mnt")"
  echo "inspect: $remapctl status $mnt"
  echo "unmount: fusermount -u $mnt"
  exit 0
elif [ $# -ne 0 ]; then
  echo "usage: tools/run.sh [MAIN SPARE MOUNTPOINT]" >&2
  exit 2
fi

dir=$(mktemp -d /tmp/remapfs-demo.XXXXXX)
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { echo "\$ $*"; "$@"; }

say "A 256 MiB MAIN and a 16 MiB SPARE in $dir, 4096-byte sectors"
truncate -s 256M "$dir/main.img"
run "$remapctl" create "$dir/main.img" "$dir/spare.img" --spare-size 16M
mkdir "$dir/mnt"
run "$remapfs" "$dir/main.img" "$dir/mnt" -o "spare=$dir/spare.img,log=$dir/remapfs.log"
run ls -l "$dir/mnt"

say "MAIN goes bad: writes to sectors 256-319 fail, reads of sector 8192 fail"
run "$remapctl" fault add "$dir/mnt" --device main --sectors 256-319 --op write
run "$remapctl" fault add "$dir/mnt" --device main --sectors 8192 --op read

say "Write 4 MiB across the bad area: the writes succeed, the bad sectors are remapped"
head -c 4M /dev/urandom >"$dir/data"
run dd if="$dir/data" of="$dir/mnt/main.img" bs=1M conv=notrunc,fsync status=none
run cmp "$dir/data" <(dd if="$dir/mnt/main.img" bs=1M count=4 iflag=direct status=none)
echo "identical"

say "A read of the unreadable sector fails with EIO, and the sector becomes pending"
dd if="$dir/mnt/main.img" of=/dev/null bs=4096 skip=8192 count=1 iflag=direct status=none || true
run "$remapctl" list "$dir/mnt" --sectors 8190-8199

say "Writing the pending sector remaps it"
run dd if=/dev/zero of="$dir/mnt/main.img" bs=4096 seek=8192 count=1 conv=notrunc,fsync status=none
run "$remapctl" list "$dir/mnt" --sectors 8190-8199

say "The set's health"
run "$remapctl" status "$dir/mnt"

say "Try it yourself"
cat <<EOT
The image is $dir/mnt/main.img; put a filesystem on it:
  L=\$(losetup -f --show $dir/mnt/main.img) && mkfs.ext4 \$L && mount \$L /mnt
Steer it:    $remapctl fault add $dir/mnt --sectors 1000-1099 --op write
Inspect it:  $remapctl status $dir/mnt ; $remapctl list $dir/mnt ; $remapctl events $dir/mnt
The log:     $dir/remapfs.log
Unmount:     fusermount -u $dir/mnt        (detach any loop device first)
Clean up:    rm -r $dir
EOT
