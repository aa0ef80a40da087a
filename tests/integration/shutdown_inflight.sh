#!/usr/bin/env bash
# shutdown_inflight sigterm|sigint|unmount: the ordered shutdown while
# requests are in flight. A mixed load runs on the exposed file: fio (4 jobs
# of random O_DIRECT reads and writes of 4-64 KiB, an fsync every 8 writes),
# dd readers, two verifying writers (blocks.py: an fsync after every batch,
# a log of what each fsync acknowledged) and remapctl status/list polls (each
# with a flush) on the control channel, while MAIN write faults (always and
# with a seeded probability) remap sectors.
# SIGTERM or SIGINT comes in the middle of it: the requests in flight finish
# (step 1 says how many), later ones fail, and the daemon exits within 30 s.
# `fusermount -u` refuses a mount with open files, so the unmount case
# unmounts lazily (-z) during the load: the daemon keeps serving the open
# files, and stops in order once the load is stopped and the last file is
# closed, with control requests still coming. Then: steps 1..6 in order,
# `remapctl check` passes, the set is marked clean, and after a remount
# every acknowledged block is there.
source "$(dirname "$0")/functions.sh"
how=$(one_of "${1:-}" sigterm sigint unmount)
requires fio --version

SS=4096
BLK=16384
NB=256                     # each writer's ring: 4 MiB
BOUND=30
main=$T/si.img spare=$T/si.spare db=$T/si.db mnt=$T/mnt f=$T/mnt/si.img
make_set "$main" "$spare" "$db" 128M 64M $SS
FIO_OFF=$((64 * 1024 * 1024)) FIO_SIZE=$((32 * 1024 * 1024))

log "$how under load"
dlog=$T/mount1.log
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$dlog")
own_sleepers=$(delayed_io_baseline "$pid")
# Faults in the writers' rings and in fio's range.
for w in 0 1; do
  first=$(( w * NB * BLK / SS ))
  must "$REMAPCTL" fault add "$mnt" --device main --op write --sectors "$((first + 64))+32"
  must "$REMAPCTL" fault add "$mnt" --device main --op write --sectors "$((first + 300))+200" \
    --probability 0.2 --seed $((w + 1))
done
must "$REMAPCTL" fault add "$mnt" --device main --op write --sectors "$((FIO_OFF / SS + 1000))+2000" \
  --probability 0.05 --seed 7

load=()
for w in 0 1; do
  start_bg writer "$PYTHON" "$BLOCKS_PY" write "$f" --base $(( w * NB * BLK )) --blk $BLK --nb $NB \
    --gen "w$w" --log "$T/log.$w" --batch 4 --seed $w 2>"$T/writer.$w.err"
  load+=("$writer")
done
start_bg fio_job fio --name=load --filename="$f" --direct=1 --rw=randrw --bsrange=4k-64k --ioengine=psync \
  --iodepth=1 --numjobs=4 --offset=$FIO_OFF --size=$FIO_SIZE --fsync=8 --time_based --runtime=60 \
  --group_reporting --output="$T/fio" >/dev/null 2>&1
load+=("$fio_job")
for i in 1 2; do
  start_bg reader bash -c 'while dd if="$1" of=/dev/null bs=1M count=16 skip=$2 iflag=direct status=none; do :; done' \
    _ "$f" $((i * 16)) 2>/dev/null
  load+=("$reader")
done
# Given the DB, remapctl asks a running daemon for a flush, then the verb.
start_bg poller bash -c 'while :; do "$1" status "$2" --json >/dev/null 2>&1; "$1" list "$2" --json >/dev/null 2>&1; done' \
  _ "$REMAPCTL" "$db"
# At least a second of load, and a few fsyncs acknowledged to each writer.
sleep 1
both_acked() { (( $(acked_count "$T/log.0") >= 5 && $(acked_count "$T/log.1") >= 5 )); }
wait_until 20 both_acked || true
for w in 0 1; do
  assert_ge "fsyncs acknowledged to writer $w before the stop" 5 "$(acked_count "$T/log.$w")"
done
st=$(must "$REMAPCTL" status "$mnt" --json)
log "under load: $(jq -r '"\(.counters.writes) writes, \(.counters.reads) reads, \(.remapped_sectors) remapped"' <<<"$st")"

if [[ $how == unmount ]]; then
  # Lazy: the mount leaves the namespace, the open files keep working.
  must fusermount3 -u -z "$mnt"
  sleep 0.5
  pid_alive "$pid" || fail "the daemon stopped while its files were still open"
  n0=$(acked_count "$T/log.0")
  acked_more() { (( $(acked_count "$T/log.0") > n0 )); }
  wait_until 10 acked_more || true
  assert_ge "fsyncs acknowledged after the lazy unmount" $((n0 + 1)) "$(acked_count "$T/log.0")"
  # Stopping the load closes the last file: that ends the session.
  for p in "${load[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  t0=$(now_ms)
  while pid_alive "$pid"; do
    (( $(now_ms) - t0 < BOUND * 1000 )) || fail "the daemon still runs ${BOUND}s after its last file was closed"
    sleep 0.01
  done
  log "daemon exited $(( $(now_ms) - t0 )) ms after the load was stopped"
else
  # One request surely in flight (the load may be between two): a read held
  # 1 s by a delay rule.
  slow=$((FIO_OFF / SS + FIO_SIZE / SS + 10))
  must "$REMAPCTL" fault add "$mnt" --device main --op read --sectors $slow --delay-ms 1000
  start_bg slow_read dd if="$f" of=/dev/null bs=$SS skip=$slow count=1 iflag=direct status=none
  load+=("$slow_read")
  wait_delayed_io "$pid" 1 "$own_sleepers"
  stop_daemon "$how" "$mnt" "$pid" "$dlog" $BOUND
  in_flight=$(in_flight_at_stop "$dlog")
  log "requests in flight at the stop: $in_flight; step 1 took $(step_ms "$dlog" 1) ms"
  assert_ge "requests in flight at the stop (step 1)" 1 "$in_flight"
fi

# The load ends: with errors once the daemon has stopped.
for p in "${load[@]}"; do
  wait_until 10 _not pid_alive "$p" || { kill -KILL "$p" 2>/dev/null; fail "a load process ($p) still runs 10 s after the stop"; }
  wait "$p" 2>/dev/null || true
done
kill -TERM "$poller" 2>/dev/null || true
wait "$poller" 2>/dev/null || true
after_orderly_stop "$how" "$mnt" "$db" "$dlog"

pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount2.log")
st=$(must "$REMAPCTL" status "$mnt" --json)
assert_eq "was_clean after the stop ($how)" true "$(jq -r .was_clean <<<"$st")"
assert_ge "sectors remapped under load" 32 "$(jq -r .remapped_sectors <<<"$st")"
for w in 0 1; do
  log "writer $w: $(must blocks verify "$f" --base $(( w * NB * BLK )) --blk $BLK --nb $NB --gen "w$w" \
    --log "$T/log.$w" --batch 4 --sector $SS)"
done
unmount_set "$mnt" "$pid" "$T/mount2.log"
must "$REMAPCTL" check "$db"
