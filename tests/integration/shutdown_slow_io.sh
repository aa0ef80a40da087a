#!/usr/bin/env bash
# shutdown_slow_io: the ordered shutdown while slow I/O is in flight. Delay
# rules (--delay-ms 4000) on MAIN hold a reader (a read of a slow sector), a
# writer (a write to a slow sector) and a `remapctl remap` (the control
# channel, a background worker, blocked reading a slow sector) when SIGTERM
# or SIGINT arrives; at `fusermount -u` (which a mount with open files
# refuses) the remapctl is the one in flight. Each must be finished and
# answered, not abandoned: the read returns the sector's bytes, the write
# and the remap succeed and are durable. The daemon must exit within 30 s,
# log steps 1..6 in order, and leave a set that passes `remapctl check`, is
# marked clean and after a remount holds the data.
source "$(dirname "$0")/lib.sh"
setup

SS=4096
DELAY=4000
BOUND=30
make_set so 64M 16M $SS
MNT=$T/mnt

# Known bytes in the sectors the rounds use.
random_file "$T/init" $((16 * 1024 * 1024))
mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
must dd if="$T/init" of="$EXPOSED" bs=1M conv=notrunc,fsync status=none
unmount_set "$MNT"
init_sector() { dd if="$T/init" bs=$SS skip="$1" count=1 status=none | sha256sum | cut -d' ' -f1; }

ROUNDS=(TERM INT unmount)
for (( r = 0; r < ${#ROUNDS[@]}; r++ )); do
  how=${ROUNDS[r]}
  # In three 1 MiB regions of the engine's locks, so that they do not wait
  # for one another.
  A=$((r * 1024 + 10)) B=$((r * 1024 + 266)) C=$((r * 1024 + 522))
  log "=== round $r: $how with slow I/O in flight (read $A, write $B, remapctl remap $C)"
  mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
  pid=$DAEMON_PID dlog=$LOG
  delayed_io_baseline "$pid"
  must "$REMAPCTL" fault add "$MNT" --device main --op read --sectors $A --delay-ms $DELAY
  must "$REMAPCTL" fault add "$MNT" --device main --op write --sectors $B --delay-ms $DELAY
  must "$REMAPCTL" fault add "$MNT" --device main --op read --sectors $C --delay-ms $DELAY
  t0=$(now_ms)
  reader="" writer=""
  if [[ $how != unmount ]]; then
    # Their close (a FUSE flush sent after the stop began) is refused; the
    # read and the write are what count.
    start_bg python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
import mmap
buf = mmap.mmap(-1, int(sys.argv[3]))
n = os.preadv(fd, [buf], int(sys.argv[3]) * int(sys.argv[4]))
open(sys.argv[2], "wb").write(buf[:n])
print(f"read {n}", flush=True)
try:
    os.close(fd)
except OSError as e:
    print(f"close: {e}", flush=True)' "$EXPOSED" "$T/read.$r" $SS $A >"$T/reader.$r" 2>&1
    reader=$BG_PID
    random_file "$T/new.$r" $SS
    start_bg python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
n = os.pwrite(fd, open(sys.argv[2], "rb").read(), int(sys.argv[3]))
print(f"wrote {n}", flush=True)
try:
    os.close(fd)
except OSError as e:
    print(f"close: {e}", flush=True)' "$EXPOSED" "$T/new.$r" $((B * SS)) >"$T/writer.$r" 2>&1
    writer=$BG_PID
    # Python starts slowly on a busy machine: both must be held before the
    # remap starts, so that all three overlap.
    wait_delayed_io "$pid" 2
  fi
  start_bg "$REMAPCTL" remap "$MNT" $C >"$T/remap.$r" 2>&1
  remap=$BG_PID
  if [[ $how == unmount ]]; then wait_delayed_io "$pid" 1; else wait_delayed_io "$pid" 3; fi
  for p in $remap $reader $writer; do
    pid_alive "$p" || fail "a slow request finished before the stop (the delay rule did not hold it)"
  done

  stop_daemon "$how" "$MNT" "$pid" $BOUND
  elapsed=$(( $(now_ms) - t0 ))
  (( elapsed >= DELAY - 100 )) || fail "the daemon exited ${elapsed} ms after the slow requests started: it did not wait for them"
  log "steps: 1 $(step_ms "$dlog" 1) ms, 2 $(step_ms "$dlog" 2) ms, 4 $(step_ms "$dlog" 4) ms"

  # Everything in flight was finished and answered.
  set +e
  wait "$remap"; rrc=$?
  set -e
  assert_eq "remapctl remap in flight at the stop ($(cat "$T/remap.$r"))" 0 "$rrc"
  if [[ $how != unmount ]]; then
    wait "$reader" || true
    wait "$writer" || true
    assert_contains "read in flight at the stop" "read $SS" "$(cat "$T/reader.$r")"
    assert_eq "bytes of the read in flight" "$(init_sector $A)" "$(sha_of "$T/read.$r")"
    assert_contains "write in flight at the stop" "wrote $SS" "$(cat "$T/writer.$r")"
    in_flight=$(sed -n 's/.*shutdown step 1: .* \([0-9][0-9]*\) in flight finished.*/\1/p' "$dlog")
    assert_ge "FUSE requests in flight at the stop (step 1)" 2 "$in_flight"
  else
    # Step 1 had nothing to wait for; step 2 finished the remapctl request.
    assert_ge "step 2 (waited for the control channel's slow remap), ms" 1000 "$(step_ms "$dlog" 2)"
  fi
  after_orderly_stop "$MNT" "$DB" "$dlog"

  mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
  must "$REMAPCTL" status "$MNT" --json
  assert_eq "was_clean after the stop ($how)" true "$(jqr .was_clean)"
  must "$REMAPCTL" fault clear "$MNT"
  must "$REMAPCTL" list "$MNT" --sectors "$C" --json
  assert_eq "the remap in flight at the stop is durable" remapped "$(jqr '.[0].state')"
  assert_eq "the remapped sector's bytes" "$(init_sector $C)" "$(sha_range "$EXPOSED" $((C * SS)) $SS)"
  if [[ $how != unmount ]]; then
    assert_eq "the write in flight at the stop is durable" "$(sha_of "$T/new.$r")" "$(sha_range "$EXPOSED" $((B * SS)) $SS)"
  else
    assert_eq "sector $B" "$(init_sector $B)" "$(sha_range "$EXPOSED" $((B * SS)) $SS)"
  fi
  unmount_set "$MNT"
done
must "$REMAPCTL" check "$DB"
