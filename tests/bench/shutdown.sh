#!/usr/bin/env bash
# Shutdown latency of the remapfs daemon: the time from the unmount request
# (just before `fusermount3 -u`) to the daemon's exit (its /proc entry gone or
# a zombie, polled every 0.2 ms), as the median of RUNS runs, for
#   idle:   a mounted set with nothing queued;
#   queued: REMAPS remaps queued and not committed: a fresh set of 512-byte
#           sectors per run, commit_ms=600000, a MAIN write-fault rule and
#           REMAPS sectors written through a loop device on the exposed file
#           (detached before the unmount: no FUSE flush). Checked live before
#           each unmount: `remapctl status` shows REMAPS remapped sectors, the
#           DB holds none. The data the remaps point to is synced from outside
#           first (as the kernel's writeback would have done by then), so the
#           figure is the daemon's own work: the final commit of REMAPS
#           mappings and REMAPS events, checkpoint, close. PRESYNC=0 leaves it
#           to the daemon's step 3.
# Also prints the median of each shutdown step, from the daemon's log.
# Needs root, /dev/fuse, a free loop device, ~0.1 GB per run in $TMPDIR.
# Usage: tests/bench/shutdown.sh [BUILD_DIR]   (env: RUNS=7 REMAPS=100000 PRESYNC=1)
# Not a test (not registered with ctest).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
runs=${RUNS:-7}
remaps=${REMAPS:-100000}
presync=${PRESYNC:-1}
[[ $EUID -eq 0 && -c /dev/fuse ]] || { echo "shutdown.sh: needs root and /dev/fuse" >&2; exit 1; }
ninja -C "$build" remapfs remapctl >/dev/null
remapfs=$PWD/$build/fuse/remapfs remapctl=$PWD/$build/tools/remapctl
dir=$(mktemp -d "${TMPDIR:-/tmp}/remapfs-bench-shutdown.XXXXXX")
mnt=$dir/mnt
loop=""
cleanup() {
  [[ -n $loop ]] && losetup -d "$loop" 2>/dev/null
  fusermount3 -u "$mnt" 2>/dev/null || true
  rm -rf --one-file-system "$dir"
}
trap cleanup EXIT
mkdir "$mnt"

# unmount_ms MNT PID: fusermount3 -u, then polls until PID has exited.
unmount_ms() {
  python3 - "$1" "$2" <<'EOF'
import os, subprocess, sys, time
mnt, pid = sys.argv[1], sys.argv[2]
def alive():
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
t0 = time.monotonic()
subprocess.run(["fusermount3", "-u", mnt], check=True)
while alive():
    if time.monotonic() - t0 > 60:
        sys.exit("the daemon did not exit within 60 s")
    time.sleep(0.0002)
print(f"{(time.monotonic() - t0) * 1000:.1f}")
EOF
}

# mount_daemon MAIN SPARE DB LOG [OPTS]: mounts; prints the daemon's pid.
mount_daemon() {
  "$remapfs" "$1" "$mnt" -o "spare=$2,db=$3,log=$4${5:+,$5}"
  pgrep -f -x "$remapfs $1 $mnt -o spare=$2,db=$3,log=$4${5:+,$5}"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
steps_of() {  # LOG: "s1 s2 s3 s4 s5 s6" in ms
  local n out=""
  for n in 1 2 3 4 5 6; do
    out+="$(sed -n "s/.*\] shutdown step $n: .* in \([0-9.]*\) ms.*/\1/p" "$1" | tail -1) "
  done
  echo "$out"
}
step_medians() {  # FILE of "s1 .. s6" lines
  local n out=""
  for n in 1 2 3 4 5 6; do out+="$n: $(awk -v n=$n '{ print $n }' "$1" | median) ms  "; done
  echo "$out"
}

# --- idle --------------------------------------------------------------------
truncate -s 64M "$dir/idle.img"
"$remapctl" create "$dir/idle.img" "$dir/idle.spare" --db "$dir/idle.db" --spare-size 16M >/dev/null
: >"$dir/idle.times"; : >"$dir/idle.steps"
for (( i = 1; i <= runs; i++ )); do
  pid=$(mount_daemon "$dir/idle.img" "$dir/idle.spare" "$dir/idle.db" "$dir/idle.$i.log")
  sleep 0.2
  ms=$(unmount_ms "$mnt" "$pid")
  echo "$ms" >>"$dir/idle.times"
  steps_of "$dir/idle.$i.log" >>"$dir/idle.steps"
  echo "idle run $i: $ms ms" >&2
done

# --- queued ------------------------------------------------------------------
bytes=$((remaps * 512))
: >"$dir/queued.times"; : >"$dir/queued.steps"
for (( i = 1; i <= runs; i++ )); do
  m=$dir/q.img s=$dir/q.spare d=$dir/q.db
  rm -f "$m" "$s" "$d" "$d-wal" "$d-shm"
  truncate -s $((bytes + 1048576)) "$m"
  "$remapctl" create "$m" "$s" --db "$d" --sector-size 512 --spare-size $((bytes + 1048576)) >/dev/null
  pid=$(mount_daemon "$m" "$s" "$d" "$dir/queued.$i.log" commit_ms=600000)
  "$remapctl" fault add "$mnt" --device main --op write --sectors "0+$remaps" >/dev/null
  loop=$(losetup -f --show --direct-io=on "$mnt/q.img")
  # O_DIRECT whole blocks only: GNU dd writes a short last block without
  # O_DIRECT, and closing the loop device then flushes it (an fsync: commit).
  head -c "$bytes" /dev/urandom >"$dir/data"
  dd if="$dir/data" of="$loop" bs=1M count=$((bytes / 1048576)) oflag=direct status=none
  dd if="$dir/data" of="$loop" bs=512 skip=$((bytes / 1048576 * 2048)) seek=$((bytes / 1048576 * 2048)) \
    count=$(( (bytes % 1048576) / 512 )) oflag=direct status=none
  losetup -d "$loop"
  loop=""
  live=$("$remapctl" status "$mnt" --json | jq .remapped_sectors)
  committed=$(python3 -c 'import sqlite3, sys
print(sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True).execute("SELECT count(*) FROM sectors").fetchone()[0])' "$d")
  if [[ $live != "$remaps" || $committed != 0 ]]; then
    echo "shutdown.sh: expected $remaps remaps queued, found $live live and $committed committed" >&2
    exit 1
  fi
  if [[ $presync == 1 ]]; then
    python3 -c 'import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY); os.fdatasync(fd); os.close(fd)' "$s" "$m"
  fi
  ms=$(unmount_ms "$mnt" "$pid")
  echo "$ms" >>"$dir/queued.times"
  steps_of "$dir/queued.$i.log" >>"$dir/queued.steps"
  echo "queued run $i: $live remaps queued ($committed committed): $ms ms" >&2
done
"$remapctl" check "$dir/q.db" >/dev/null || { echo "shutdown.sh: remapctl check failed after the last run" >&2; exit 1; }

echo "steps (median) idle:   $(step_medians "$dir/idle.steps")"
echo "steps (median) queued: $(step_medians "$dir/queued.steps")"
echo "shutdown idle: median $(median <"$dir/idle.times") ms ($runs runs); with $remaps queued remaps: median $(median <"$dir/queued.times") ms"
