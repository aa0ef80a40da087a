#!/usr/bin/env bash
# remapfs beside its peers, in one run: fio (O_DIRECT, libaio) on copies of
# one random image exposed by each target, then the ratios that the
# performance targets are stated in. Columns (targets):
#   raw             the image file itself: the disk's limit
#   pthp            libfuse's example passthrough_hp (binary from PTHP=): the
#                   FUSE limit for a page-cached backing file; "-" without it
#   nbdfuse         nbdkit's file plugin behind nbdfuse; "-" without them
#   remapfs         remapfs, MAIN in the page cache (the default)
#   remapfs-direct  remapfs -o direct
#   loop/X          X again through a loop device with --direct-io=on
# Jobs: 4k randread/randwrite at QD16 and QD1 (k IOPS), 1M read/write at QD4
# (GB/s). Each cell is the best of REPS runs of RT seconds; the runs of a job
# are interleaved (rep 1 of every target, then rep 2 ...), so that a drift of
# this noisy machine hits every target alike.
# Usage: sudo tests/bench/peers.sh [BUILD_DIR] [--json FILE]
#   env: SIZE=256M RT=3 REPS=2 PTHP=/path/to/passthrough_hp JSON=FILE
# Needs root, /dev/fuse, fio, free loop devices and about 10 x SIZE in
# $TMPDIR. A benchmark, not a test: not registered with ctest.
set -euo pipefail

build=build
json=${JSON:-}
while (($#)); do
  case $1 in
    --json) json=${2:?--json needs a FILE}; shift 2 ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *) build=$1; shift ;;
  esac
done
# Paths given by the caller are relative to where it ran, not to the repo.
[[ -z $json ]] || json=$(realpath -m "$json")
pthp=${PTHP:-}
[[ -z $pthp ]] || pthp=$(realpath -m "$pthp")
cd "$(dirname "$0")/../.."

size=${SIZE:-256M}
rt=${RT:-3}
reps=${REPS:-2}
[[ $EUID -eq 0 && -c /dev/fuse ]] || { echo "peers.sh: needs root and /dev/fuse" >&2; exit 1; }
command -v fio >/dev/null || { echo "peers.sh: needs fio (apt-get install fio)" >&2; exit 1; }
bytes=$(numfmt --from=iec "$size")
# 1M jobs must fit whole blocks, and remapfs exposes whole 4 KiB sectors.
((bytes >= 1048576 && bytes % 1048576 == 0)) || { echo "peers.sh: SIZE must be a multiple of 1M" >&2; exit 1; }
ninja -C "$build" remapfs remapctl >/dev/null
remapfs=$PWD/$build/fuse/remapfs remapctl=$PWD/$build/tools/remapctl

notes=()
note() { notes+=("$*"); }
progress() { echo "peers.sh: $*" >&2; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/remapfs-bench-peers.XXXXXX")
loops=() mounts=() nbdfuse_pid="" nbdkit_pidfile=$dir/nbdkit.pid
# Loops first (they hold files inside the FUSE mounts), then the mounts, then
# nbdkit (nbdfuse talks to it until its unmount), then the files.
cleanup() {
  local l m i
  # A second Ctrl-C must not cut the teardown short.
  trap '' INT TERM HUP
  for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
  for m in "${mounts[@]}"; do
    mountpoint -q "$m" || continue
    # A just-detached loop device can keep the file open for a moment.
    for i in 1 2 3 4 5 6 7 8 9 10; do
      fusermount3 -u "$m" 2>/dev/null && break
      sleep 0.2
    done
    if mountpoint -q "$m"; then fusermount3 -uz "$m" 2>/dev/null || true; fi
  done
  [[ -z $nbdfuse_pid ]] || wait "$nbdfuse_pid" 2>/dev/null || true
  if [[ -s $nbdkit_pidfile ]]; then
    local pid
    pid=$(<"$nbdkit_pidfile")
    kill "$pid" 2>/dev/null || true
    for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -rf --one-file-system "$dir"
}
trap cleanup EXIT
# Without these, a signal would end bash without running the EXIT trap.
trap 'exit 130' INT
trap 'exit 143' TERM HUP

have_pthp=0 have_nbd=0
if [[ -n $pthp && -x $pthp ]]; then
  have_pthp=1
else
  note "pthp: set PTHP=/path/to/passthrough_hp to fill these columns: libfuse 3.14's" \
    "example/passthrough_hp.cc, changed so that sfs_open sets fi->direct_io = 1 (FOPEN_DIRECT_IO)" \
    "and opens the backing file without O_DIRECT (fi->flags & ~O_DIRECT)."
fi
if command -v nbdkit >/dev/null && command -v nbdfuse >/dev/null; then
  have_nbd=1
else
  note "nbdfuse: needs nbdkit and nbdfuse (apt-get install nbdkit libnbd-bin)."
fi

# One random image (random so that no target reads holes), one copy per
# target: no target runs on another's page cache or writes.
progress "copies of a random $size image in $dir"
head -c "$bytes" /dev/urandom >"$dir/seed.img"
copy() { cp --sparse=never --reflink=never "$dir/seed.img" "$1"; }
mkdir "$dir/pthp-src"
copy "$dir/raw.img"
copy "$dir/loop-raw.img"
if ((have_pthp)); then
  copy "$dir/pthp-src/pthp.img"
  copy "$dir/pthp-src/loop-pthp.img"
fi
((have_nbd == 0)) || copy "$dir/nbd.img"
for s in rfs rfsd loop-rfs loop-rfsd; do
  copy "$dir/$s.img"
  "$remapctl" create "$dir/$s.img" "$dir/$s.spare" --db "$dir/$s.db" --spare-size 16M >/dev/null
done
rm "$dir/seed.img"
# Nothing dirty left to be written back under the first runs.
sync

# wait_for PATH: until PATH exists (a mount is up), 10 s at most.
wait_for() {
  local i
  for ((i = 0; i < 100; i++)); do [[ -e $1 ]] && return 0; sleep 0.1; done
  echo "peers.sh: $1 did not appear" >&2
  return 1
}
declare -A path
path[raw]=$dir/raw.img
path[loop/raw]=$dir/loop-raw.img
if ((have_pthp)); then
  mkdir "$dir/mnt-pthp"
  mounts+=("$dir/mnt-pthp")
  "$pthp" "$dir/pthp-src" "$dir/mnt-pthp"
  wait_for "$dir/mnt-pthp/pthp.img"
  path[pthp]=$dir/mnt-pthp/pthp.img
  path[loop/pthp]=$dir/mnt-pthp/loop-pthp.img
fi
if ((have_nbd)); then
  mkdir "$dir/mnt-nbd"
  nbdkit -U "$dir/nbd.sock" -P "$nbdkit_pidfile" file "$dir/nbd.img"
  mounts+=("$dir/mnt-nbd")
  # nbdfuse stays in the foreground; its -P file says when it serves.
  nbdfuse -P "$dir/nbdfuse.pid" "$dir/mnt-nbd/nbd.img" --unix "$dir/nbd.sock" </dev/null >"$dir/nbdfuse.log" 2>&1 &
  nbdfuse_pid=$!
  wait_for "$dir/nbdfuse.pid"
  path[nbdfuse]=$dir/mnt-nbd/nbd.img
fi
# mount_set SET TARGET [OPTION]: SET's remapfs mount; its file is TARGET.
mount_set() {
  local s=$1 opts="spare=$dir/$1.spare,db=$dir/$1.db,log=$dir/$1.log${3:+,$3}"
  mkdir "$dir/mnt-$s"
  mounts+=("$dir/mnt-$s")
  "$remapfs" "$dir/$s.img" "$dir/mnt-$s" -o "$opts"
  wait_for "$dir/mnt-$s/$s.img"
  path[$2]=$dir/mnt-$s/$s.img
}
mount_set rfs remapfs
mount_set rfsd remapfs-direct direct
mount_set loop-rfs loop/remapfs
mount_set loop-rfsd loop/remapfs-direct direct
# The loop devices replace the paths of the loop/ targets.
for t in loop/raw loop/pthp loop/remapfs loop/remapfs-direct; do
  [[ -n ${path[$t]:-} ]] || continue
  l=$(losetup -f --show --direct-io=on "${path[$t]}")
  loops+=("$l")
  [[ $(cat "/sys/block/${l#/dev/}/loop/dio") == 1 ]] || note "$t: the loop device fell back to buffered I/O"
  path[$t]=$l
done
sync

targets=(raw pthp nbdfuse remapfs remapfs-direct loop/raw loop/pthp loop/remapfs loop/remapfs-direct)
# name|rw|bs|iodepth
jobs=("4k randread QD16|randread|4k|16" "4k randwrite QD16|randwrite|4k|16"
  "4k randread QD1|randread|4k|1" "4k randwrite QD1|randwrite|4k|1"
  "1M read QD4|read|1M|4" "1M write QD4|write|1M|4")

# fio_run FILE RW BS QD: prints IOPS for 4k, bytes/s for 1M.
fio_run() {
  fio --name=peers --filename="$1" --rw="$2" --bs="$3" --iodepth="$4" --size="$bytes" \
    --direct=1 --ioengine=libaio --numjobs=1 --time_based --runtime="$rt" \
    --invalidate=0 --fallocate=none --randrepeat=0 --norandommap --output-format=json |
    python3 -c 'import json, sys
j = json.load(sys.stdin)["jobs"][0]
op = "write" if j["write"]["io_bytes"] else "read"
print(j[op]["iops"] if sys.argv[1] == "4k" else j[op]["bw_bytes"])' "$3"
}

declare -A cell
for jb in "${jobs[@]}"; do
  IFS='|' read -r name rw bs qd <<<"$jb"
  for ((r = 1; r <= reps; r++)); do
    for t in "${targets[@]}"; do
      [[ -n ${path[$t]:-} ]] || continue
      progress "$name, rep $r/$reps: $t"
      # The page-cached targets' writes of the run before are not this run's.
      sync
      if v=$(fio_run "${path[$t]}" "$rw" "$bs" "$qd" 2>"$dir/fio.err"); then
        cell[$name,$t]=$(awk -v a="$v" -v b="${cell[$name,$t]:-0}" 'BEGIN { print (a > b) ? a : b }')
      else
        note "$t, $name: fio failed: $(head -c 300 "$dir/fio.err" | tr '\n' ' ')"
      fi
    done
  done
done

# show JOB TARGET: the cell in its unit (k IOPS or GB/s), "-" if missing.
show() {
  local v=${cell[$1,$2]:-}
  if [[ -z $v ]]; then echo -; elif [[ $1 == 4k* ]]; then awk -v v="$v" 'BEGIN { printf "%.1f", v / 1000 }'
  else awk -v v="$v" 'BEGIN { printf "%.2f", v / 1e9 }'; fi
}
# ratio JOB A B: A/B to two places, "-" if either is missing.
ratio() {
  local a=${cell[$1,$2]:-} b=${cell[$1,$3]:-}
  if [[ -z $a || -z $b ]]; then echo -; else awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }'; fi
}
# verdict RATIO MIN: RATIO with "ok" or "LOW" against MIN.
verdict() {
  [[ $1 != - && -n $2 ]] || { echo "$1"; return; }
  awk -v r="$1" -v m="$2" 'BEGIN { printf "%s %s", r, (r >= m) ? "ok" : "LOW" }'
}

echo "fio O_DIRECT libaio on a $size image; best of $reps runs of ${rt}s; 4k: k IOPS, 1M: GB/s"
printf '%-18s' job
for t in "${targets[@]}"; do printf ' %*s' $((${#t} > 6 ? ${#t} : 6)) "$t"; done
echo
for jb in "${jobs[@]}"; do
  name=${jb%%|*}
  printf '%-18s' "$name"
  for t in "${targets[@]}"; do printf ' %*s' $((${#t} > 6 ? ${#t} : 6)) "$(show "$name" "$t")"; done
  echo
done

# name|numerator|denominator|minimum at QD16 and 1M|minimum at QD1
ratios=("remapfs/pthp|remapfs|pthp|1.0|1.0"
  "remapfs-direct/raw|remapfs-direct|raw|0.9|0.8"
  "loop/remapfs / loop/pthp|loop/remapfs|loop/pthp|1.0|1.0"
  "loop/remapfs-direct / loop/raw|loop/remapfs-direct|loop/raw||")
echo
# The last column is padded too: strip the trailing blanks.
{
  printf '%-18s' "ratios (targets)"
  for x in "${ratios[@]}"; do n=${x%%|*}; printf '  %-*s' ${#n} "$n"; done
  echo
  printf '%-18s' ""
  for x in "${ratios[@]}"; do
    IFS='|' read -r n _ _ lo lo1 <<<"$x"
    if [[ -z $lo ]]; then m="no target"; elif [[ $lo == "$lo1" ]]; then m=">= $lo"; else m=">= $lo, QD1 $lo1"; fi
    printf '  %-*s' ${#n} "$m"
  done
  echo
  for jb in "${jobs[@]}"; do
    name=${jb%%|*}
    printf '%-18s' "$name"
    for x in "${ratios[@]}"; do
      IFS='|' read -r n a b lo lo1 <<<"$x"
      [[ $name != *QD1 ]] || lo=$lo1
      printf '  %-*s' ${#n} "$(verdict "$(ratio "$name" "$a" "$b")" "$lo")"
    done
    echo
  done
} | sed 's/ *$//'
if ((${#notes[@]})); then
  echo
  printf 'note: %s\n' "${notes[@]}"
fi

if [[ -n $json ]]; then
  {
    printf '{"size": %s, "runtime_s": %s, "reps": %s, "units": {"4k": "IOPS", "1M": "bytes/s"}, "cells": {' \
      "$bytes" "$rt" "$reps"
    sep=""
    for jb in "${jobs[@]}"; do
      name=${jb%%|*}
      printf '%s\n  "%s": {' "$sep" "$name"
      s2=""
      for t in "${targets[@]}"; do printf '%s"%s": %s' "$s2" "$t" "${cell[$name,$t]:-null}"; s2=", "; done
      printf '}'
      sep=","
    done
    printf '\n}, "ratios": {'
    sep=""
    for jb in "${jobs[@]}"; do
      name=${jb%%|*}
      printf '%s\n  "%s": {' "$sep" "$name"
      s2=""
      for x in "${ratios[@]}"; do
        IFS='|' read -r n a b _ _ <<<"$x"
        v=$(ratio "$name" "$a" "$b")
        printf '%s"%s": %s' "$s2" "$n" "${v/#-/null}"
        s2=", "
      done
      printf '}'
      sep=","
    done
    printf '\n}}\n'
  } >"$json"
  progress "wrote $json"
fi
