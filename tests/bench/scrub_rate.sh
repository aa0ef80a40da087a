#!/usr/bin/env bash
# The scrub's rate limit, and what a scrub costs a workload. On one mounted
# set (a SIZE image of random data):
#   for each RATES limit (MB/s, 0: none): a pass of SECS seconds (or until
#   it ends), the rate achieved (scrub_bytes read over the time it ran)
#   beside the limit;
#   then fio 4k random reads at QD4 (O_DIRECT, libaio) for SECS seconds
#   alone, and again while a pass runs at the default 50 MB/s: the
#   workload's IOPS in both, and what the scrub read meanwhile (it gives way
#   to requests: a step a second while they keep coming).
# Needs root, /dev/fuse, fio, jq. Not a test (not registered with ctest).
# Usage: sudo tests/bench/scrub_rate.sh [BUILD_DIR]   (env: SIZE=512M SECS=5 RATES="10 50 200 0")
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
size=${SIZE:-512M}
secs=${SECS:-5}
rates=${RATES:-10 50 200 0}
[[ $EUID -eq 0 && -c /dev/fuse ]] || { echo "scrub_rate.sh: needs root and /dev/fuse" >&2; exit 1; }
ninja -C "$build" remapfs remapctl >/dev/null
remapfs=$PWD/$build/fuse/remapfs remapctl=$PWD/$build/tools/remapctl
dir=$(mktemp -d "${TMPDIR:-/tmp}/remapfs-bench-scrub.XXXXXX")
mnt=$dir/mnt
cleanup() {
  fusermount3 -u "$mnt" 2>/dev/null || true
  rm -rf --one-file-system "$dir"
}
trap cleanup EXIT
mkdir "$mnt"
truncate -s "$size" "$dir/main.img"
"$remapctl" create "$dir/main.img" "$dir/spare.img" --spare-size 16M >/dev/null
"$remapfs" "$dir/main.img" "$mnt" -o "spare=$dir/spare.img,log=$dir/log"
dd if=/dev/urandom of="$mnt/main.img" bs=1M count=$(( $(stat -c %s "$dir/main.img") >> 20 )) conv=fsync status=none

scrub_bytes() { "$remapctl" status "$mnt" --json | jq -r .counters.scrub_bytes; }
scrub_state() { "$remapctl" scrub status "$mnt" --json | jq -r .state; }
now_s() { date +%s.%N; }

# pass RATE: runs a pass for SECS seconds, or until it ends; prints the MB/s
# it read while it ran.
pass() {
  local b0 t0 b1 t1 end
  "$remapctl" scrub start "$mnt" --rate "$1" >/dev/null
  b0=$(scrub_bytes) t0=$(now_s)
  end=$(awk -v t="$t0" -v s="$secs" 'BEGIN { print t + s }')
  while [[ $(scrub_state) == running ]] && awk -v n="$(now_s)" -v e="$end" 'BEGIN { exit !(n < e) }'; do
    sleep 0.1
  done
  b1=$(scrub_bytes) t1=$(now_s)
  [[ $(scrub_state) == idle ]] || "$remapctl" scrub stop "$mnt" >/dev/null
  echo "$b0 $b1 $t0 $t1" | awk '{ printf "%.1f", ($2 - $1) / ($4 - $3) / 1e6 }'
}

fio_iops() {
  fio --name=w --filename="$mnt/main.img" --rw=randread --bs=4k --iodepth=4 --ioengine=libaio --direct=1 \
    --time_based --runtime="$secs" --output-format=json 2>/dev/null | jq -r '.jobs[0].read.iops | floor'
}

echo "scrub rate limit on a $size image, ${secs}s a run (MB = 10^6 bytes)"
printf '%-12s %12s\n' "limit MB/s" "achieved"
for r in $rates; do
  printf '%-12s %12s\n' "$([[ $r == 0 ]] && echo none || echo "$r")" "$(pass "$r")"
done

echo
echo "4k random reads QD4 for ${secs}s, alone and during a pass at 50 MB/s"
alone=$(fio_iops)
"$remapctl" scrub start "$mnt" --rate 50 >/dev/null
b0=$(scrub_bytes)
during=$(fio_iops)
b1=$(scrub_bytes)
"$remapctl" scrub stop "$mnt" >/dev/null
printf 'fio alone: %s IOPS; during a scrub: %s IOPS (%s); the scrub read %.1f MB/s meanwhile\n' \
  "$alone" "$during" "$(awk -v a="$alone" -v d="$during" 'BEGIN { printf "%.2fx", d / a }')" \
  "$(awk -v a="$b0" -v b="$b1" -v s="$secs" 'BEGIN { print (b - a) / s / 1e6 }')"
