#!/usr/bin/env bash
# shutdown_inflight: the ordered shutdown while requests are in flight. A
# mixed load runs on the exposed file: fio (4 jobs of random O_DIRECT reads
# and writes of 4-64 KiB, an fsync every 8 writes), dd readers, two verifying
# writers (blocks.py: an fsync after every batch, a log of what each fsync
# acknowledged) and remapctl status/list polls (each with a flush) on the
# control channel, while MAIN write faults (always and with a seeded
# probability) remap sectors.
# SIGTERM and SIGINT come in the middle of it: the requests in flight finish
# (step 1 says how many), later ones fail, and the daemon exits within 30 s.
# `fusermount -u` refuses a mount with open files, so its round unmounts
# lazily (-z) during the load: the daemon keeps serving the open files, and
# stops in order once the load is stopped and the last file is closed, with
# control requests still coming. Every round: steps 1..6 in order, `remapctl
# check` passes, the set is marked clean, and after a remount every
# acknowledged block is there.
source "$(dirname "$0")/lib.sh"
setup
command -v fio >/dev/null || skip "needs fio"

SS=4096
BLK=16384
NB=256                     # each writer's ring: 4 MiB
BOUND=30
make_set si 128M 64M $SS
MNT=$T/mnt
FIO_OFF=$((64 * 1024 * 1024)) FIO_SIZE=$((32 * 1024 * 1024))

ROUNDS=(TERM INT unmount)
for (( r = 0; r < ${#ROUNDS[@]}; r++ )); do
  how=${ROUNDS[r]}
  log "=== round $r: $how under load"
  mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
  pid=$DAEMON_PID dlog=$LOG
  delayed_io_baseline "$pid"
  must "$REMAPCTL" fault clear "$MNT"
  # Faults in the writers' rings and in fio's range.
  for w in 0 1; do
    first=$(( (r * 2 + w) * NB * BLK / SS ))
    must "$REMAPCTL" fault add "$MNT" --device main --op write --sectors "$((first + 64))+32"
    must "$REMAPCTL" fault add "$MNT" --device main --op write --sectors "$((first + 300))+200" \
      --probability 0.2 --seed $((r * 2 + w + 1))
  done
  must "$REMAPCTL" fault add "$MNT" --device main --op write --sectors "$((FIO_OFF / SS + 1000))+2000" \
    --probability 0.05 --seed $((r + 7))

  load=()
  for w in 0 1; do
    start_bg python3 "$BLOCKS_PY" write "$EXPOSED" --base $(( (r * 2 + w) * NB * BLK )) --blk $BLK --nb $NB \
      --gen "r$r.w$w" --log "$T/log.$r.$w" --batch 4 --seed $((r * 2 + w)) 2>"$T/writer.$r.$w.err"
    load+=("$BG_PID")
  done
  start_bg fio --name=load --filename="$EXPOSED" --direct=1 --rw=randrw --bsrange=4k-64k --ioengine=psync \
    --iodepth=1 --numjobs=4 --offset=$FIO_OFF --size=$FIO_SIZE --fsync=8 --time_based --runtime=60 \
    --group_reporting --output="$T/fio.$r" >/dev/null 2>&1
  fio_pid=$BG_PID
  load+=("$fio_pid")
  for i in 1 2; do
    start_bg bash -c 'while dd if="$1" of=/dev/null bs=1M count=16 skip=$2 iflag=direct status=none; do :; done' \
      _ "$EXPOSED" $((i * 16)) 2>/dev/null
    load+=("$BG_PID")
  done
  # Given the DB, remapctl asks a running daemon for a flush, then the verb.
  start_bg bash -c 'while :; do "$1" status "$2" --json >/dev/null 2>&1; "$1" list "$2" --json >/dev/null 2>&1; done' \
    _ "$REMAPCTL" "$DB"
  poller=$BG_PID
  # At least a second of load, and a few fsyncs acknowledged to each writer.
  sleep 1
  for (( i = 0; i < 200; i++ )); do
    (( $(acked_count "$T/log.$r.0") >= 5 && $(acked_count "$T/log.$r.1") >= 5 )) && break
    sleep 0.1
  done
  for w in 0 1; do
    assert_ge "fsyncs acknowledged to writer $w before the stop" 5 "$(acked_count "$T/log.$r.$w")"
  done
  must "$REMAPCTL" status "$MNT" --json
  log "under load: $(jqr .counters.writes) writes, $(jqr .counters.reads) reads, $(jqr .remapped_sectors) remapped"

  if [[ $how == unmount ]]; then
    # Lazy: the mount leaves the namespace, the open files keep working.
    must fusermount3 -u -z "$MNT"
    sleep 0.5
    pid_alive "$pid" || fail "the daemon stopped while its files were still open"
    n0=$(acked_count "$T/log.$r.0")
    for (( i = 0; i < 100; i++ )); do
      (( $(acked_count "$T/log.$r.0") > n0 )) && break
      sleep 0.1
    done
    assert_ge "fsyncs acknowledged after the lazy unmount" $((n0 + 1)) "$(acked_count "$T/log.$r.0")"
    # Stopping the load closes the last file: that ends the session.
    for p in "${load[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    t0=$(now_ms)
    for (( i = 0; ; i++ )); do
      pid_alive "$pid" || break
      (( $(now_ms) - t0 < BOUND * 1000 )) || fail "the daemon still runs ${BOUND}s after its last file was closed"
      sleep 0.01
    done
    STOP_REASON="the filesystem was unmounted"
    log "daemon exited $(( $(now_ms) - t0 )) ms after the load was stopped"
  else
    # One request surely in flight (the load may be between two): a read held
    # 1 s by a delay rule.
    slow=$((FIO_OFF / SS + FIO_SIZE / SS + 10 + r))
    must "$REMAPCTL" fault add "$MNT" --device main --op read --sectors $slow --delay-ms 1000
    start_bg dd if="$EXPOSED" of=/dev/null bs=$SS skip=$slow count=1 iflag=direct status=none
    load+=("$BG_PID")
    wait_delayed_io "$pid" 1
    stop_daemon "$how" "$MNT" "$pid" $BOUND
    in_flight=$(sed -n 's/.*shutdown step 1: .* \([0-9][0-9]*\) in flight finished.*/\1/p' "$dlog")
    log "requests in flight at the stop: $in_flight; step 1 took $(step_ms "$dlog" 1) ms"
    assert_ge "requests in flight at the stop (step 1)" 1 "$in_flight"
  fi

  # The load ends: with errors once the daemon has stopped.
  for p in "${load[@]}"; do
    for i in $(seq 100); do pid_alive "$p" || break; sleep 0.1; done
    pid_alive "$p" && { kill -KILL "$p" 2>/dev/null; fail "a load process ($p) still runs 10 s after the stop"; }
    wait "$p" 2>/dev/null || true
  done
  kill -TERM "$poller" 2>/dev/null || true
  wait "$poller" 2>/dev/null || true
  after_orderly_stop "$MNT" "$DB" "$dlog"

  mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
  must "$REMAPCTL" status "$MNT" --json
  assert_eq "was_clean after the stop ($how)" true "$(jqr .was_clean)"
  assert_ge "sectors remapped under load" 32 "$(jqr .remapped_sectors)"
  for w in 0 1; do
    must blocks verify "$EXPOSED" --base $(( (r * 2 + w) * NB * BLK )) --blk $BLK --nb $NB --gen "r$r.w$w" \
      --log "$T/log.$r.$w" --batch 4 --sector $SS
    log "writer $w: $(OUT)"
  done
  unmount_set "$MNT"
done
must "$REMAPCTL" check "$DB"
