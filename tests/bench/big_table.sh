#!/usr/bin/env bash
# "A big table costs nothing": 4 KiB random I/O through remapfs with an
# empty table against the same with every other sector remapped, in one run
# (so the ratios hold on a noisy machine). Both sets: an 8 GiB sparse MAIN of
# 4096-byte sectors (2M sectors; the big table remaps 1M of them), fio
# O_DIRECT libaio at QD16 over the first GiB, remapfs in its default
# page-cache mode; the best of two runs of each job. Prints IOPS and the
# big/empty ratio. Needs root, /dev/fuse and ~1 GB in $TMPDIR (sparse files).
# A benchmark, not a test: not registered with ctest.
# Usage: tests/bench/big_table.sh [BUILD_DIR] [RUNTIME_S, default 10]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
runtime=${2:-10}
ninja -C "$build" remapfs remapctl >/dev/null
dir=$(mktemp -d)
cleanup() {
  for m in "$dir"/mnt-*; do fusermount3 -u "$m" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

remaps=$((1 << 20))
# make_set NAME REMAPS: a set in $dir/NAME with every other sector of its
# first 2*REMAPS remapped, mounted on $dir/mnt-NAME. The rows go straight
# into the closed set's DB (a million remapctl calls would take hours): a
# sector mapped to slot i, as a remap in sector order leaves it. Remapping
# copies MAIN's sector into its slot, and both are holes here, so the data
# is the same too.
make_set() {
  local name=$1 count=$2
  truncate -s 8G "$dir/$name.img"
  "$build/tools/remapctl" create "$dir/$name.img" "$dir/$name-spare.img" --spare-size $((4096 * (remaps + 256))) \
    >/dev/null
  [ "$count" -eq 0 ] || python3 - "$dir/$name-spare.img.db" "$count" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?) "
           "INSERT INTO sectors(sector, slot) SELECT 2 * i, i FROM n", (int(sys.argv[2]),))
db.commit()
PY
  mkdir "$dir/mnt-$name"
  "$build/fuse/remapfs" "$dir/$name.img" "$dir/mnt-$name" -o "spare=$dir/$name-spare.img,log=$dir/$name.log"
}
make_set empty 0
make_set big "$remaps"

# iops FILE RW: IOPS of RUNTIME_S seconds of 4 KiB RW at QD16 over the first GiB.
iops() {
  fio --name=b --filename="$1" --rw="$2" --bs=4k --offset=0 --size=1G --direct=1 --ioengine=libaio --iodepth=16 \
    --numjobs=1 --time_based --runtime="$runtime" --output-format=json 2>/dev/null |
    python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; print("%.0f" % (j["read"]["iops"] + j["write"]["iops"]))'
}
best() { printf '%s\n' "$@" | sort -n | tail -1; }

printf '%-22s %12s %12s %8s\n' "job (QD16, 1st GiB)" "empty table" "1M remaps" ratio
for rw in randread randwrite; do
  # Alternate the two sets, so that a drift of the machine hits both.
  e1=$(iops "$dir/mnt-empty/empty.img" $rw); b1=$(iops "$dir/mnt-big/big.img" $rw)
  b2=$(iops "$dir/mnt-big/big.img" $rw); e2=$(iops "$dir/mnt-empty/empty.img" $rw)
  e=$(best "$e1" "$e2") b=$(best "$b1" "$b2")
  printf '%-22s %12s %12s %8s\n' "4k $rw" "$e" "$b" "$(python3 -c "print('%.2fx' % ($b / $e))")"
done
