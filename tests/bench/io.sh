#!/usr/bin/env bash
# I/O through remapfs against an image used directly, in one run (so the
# ratios hold on a noisy machine): sequential 1 MiB writes and reads, 4 KiB
# random reads and writes, all O_DIRECT on the file fio opens, with fio.
# remapfs runs twice: MAIN in the page cache (the default for regular files)
# and MAIN opened O_DIRECT (-o direct). Needs root and /dev/fuse.
# Usage: tests/bench/io.sh [BUILD_DIR] [SIZE, default 512M]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
size=${2:-512M}
ninja -C "$build" remapfs remapctl >/dev/null
dir=$(mktemp -d)
mnt=$dir/mnt
cleanup() {
  fusermount3 -u "$mnt" 2>/dev/null || true
  fusermount3 -u "$dir/mnt-direct" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

truncate -s "$size" "$dir/main.img"
"$build/tools/remapctl" create "$dir/main.img" "$dir/spare.img" --spare-size 64M >/dev/null
mkdir "$mnt"
mkdir "$dir/mnt-direct"
# One set cannot be mounted twice (it is locked): the -o direct run uses a
# second set of the same size.
truncate -s "$size" "$dir/main2.img"
"$build/tools/remapctl" create "$dir/main2.img" "$dir/spare2.img" --spare-size 64M >/dev/null
"$build/fuse/remapfs" "$dir/main.img" "$mnt" -o "spare=$dir/spare.img,log=$dir/log"
"$build/fuse/remapfs" "$dir/main2.img" "$dir/mnt-direct" -o "spare=$dir/spare2.img,log=$dir/log2,direct"

# fio_run FILE RW BS: bandwidth and IOPS of 5 s of that workload.
fio_run() {
  fio --name=b --filename="$1" --rw="$2" --bs="$3" --size="$size" --direct=1 --ioengine=psync \
      --numjobs=1 --time_based --runtime=5 --output-format=json 2>/dev/null |
    python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; op="write" if j["write"]["io_bytes"] else "read"; print("%.0f MiB/s %.0f IOPS" % (j[op]["bw"]/1024, j[op]["iops"]))'
}
printf '%-14s %-24s %-24s %-24s\n' workload "image file, O_DIRECT" "remapfs (page cache)" "remapfs -o direct"
for w in "write 1M" "read 1M" "randread 4k" "randwrite 4k"; do
  set -- $w
  printf '%-14s %-24s %-24s %-24s\n' "$1 $2" "$(fio_run "$dir/main.img" "$1" "$2")" \
    "$(fio_run "$mnt/main.img" "$1" "$2")" "$(fio_run "$dir/mnt-direct/main2.img" "$1" "$2")"
done
