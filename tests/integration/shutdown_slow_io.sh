#!/usr/bin/env bash
# shutdown_slow_io sigterm|sigint|unmount: the ordered shutdown while slow
# I/O is in flight. Delay rules (--delay-ms 4000) on MAIN hold a reader (a
# read of a slow sector), a writer (a write to a slow sector) and a
# `remapctl remap` (the control channel, a background worker, blocked
# reading a slow sector) when SIGTERM or SIGINT arrives; at `fusermount -u`
# (which a mount with open files refuses) the remapctl is the one in flight.
# Each must be finished and answered, not abandoned: the read returns the
# sector's bytes, the write and the remap succeed and are durable. The
# daemon must exit within 30 s, log steps 1..6 in order, and leave a set
# that passes `remapctl check`, is marked clean and after a remount holds
# the data.
source "$(dirname "$0")/functions.sh"
how=$(one_of "${1:-}" sigterm sigint unmount)

SS=4096
DELAY=4000
BOUND=30
main=$T/so.img spare=$T/so.spare db=$T/so.db mnt=$T/mnt f=$T/mnt/so.img
# Known bytes in the sectors used: MAIN holds them when the set is made.
random_file "$T/init" $((4 * 1024 * 1024))
cp "$T/init" "$main"
make_set "$main" "$spare" "$db" 64M 16M $SS
init_sector() { dd if="$T/init" bs=$SS skip="$1" count=1 status=none | sha256sum | cut -d' ' -f1; }

# In three 1 MiB regions of the engine's locks, so that they do not wait
# for one another.
A=10 B=266 C=522
log "$how with slow I/O in flight (read $A, write $B, remapctl remap $C)"
dlog=$T/mount1.log
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$dlog")
own_sleepers=$(delayed_io_baseline "$pid")
must "$REMAPCTL" fault add "$mnt" --device main --op read --sectors $A --delay-ms $DELAY
must "$REMAPCTL" fault add "$mnt" --device main --op write --sectors $B --delay-ms $DELAY
must "$REMAPCTL" fault add "$mnt" --device main --op read --sectors $C --delay-ms $DELAY
t0=$(now_ms)
if [[ $how != unmount ]]; then
  # Their close (a FUSE flush sent after the stop began) is refused; the
  # read and the write are what count.
  start_bg reader "$PYTHON" "$FILEIO_PY" pread "$f" "$T/read" $SS $((A * SS)) >"$T/reader.out" 2>&1
  random_file "$T/new" $SS
  start_bg writer "$PYTHON" "$FILEIO_PY" pwrite "$f" "$T/new" $((B * SS)) >"$T/writer.out" 2>&1
  # Python starts slowly on a busy machine: both must be held before the
  # remap starts, so that all three overlap.
  wait_delayed_io "$pid" 2 "$own_sleepers"
fi
start_bg remap "$REMAPCTL" remap "$mnt" $C >"$T/remap.out" 2>&1
if [[ $how == unmount ]]; then
  wait_delayed_io "$pid" 1 "$own_sleepers"
  pid_alive "$remap" || fail "the slow remap finished before the stop (the delay rule did not hold it)"
else
  wait_delayed_io "$pid" 3 "$own_sleepers"
  for p in "$remap" "$reader" "$writer"; do
    pid_alive "$p" || fail "a slow request finished before the stop (the delay rule did not hold it)"
  done
fi

stop_daemon "$how" "$mnt" "$pid" "$dlog" $BOUND
elapsed=$(( $(now_ms) - t0 ))
(( elapsed >= DELAY - 100 )) || fail "the daemon exited ${elapsed} ms after the slow requests started: it did not wait for them"
log "steps: 1 $(step_ms "$dlog" 1) ms, 2 $(step_ms "$dlog" 2) ms, 4 $(step_ms "$dlog" 4) ms"

# Everything in flight was finished and answered.
rrc=0
wait "$remap" || rrc=$?
assert_eq "remapctl remap in flight at the stop ($(cat "$T/remap.out"))" 0 "$rrc"
if [[ $how != unmount ]]; then
  wait "$reader" || true
  wait "$writer" || true
  assert_contains "read in flight at the stop" "read $SS" "$(cat "$T/reader.out")"
  assert_eq "bytes of the read in flight" "$(init_sector $A)" "$(sha_of "$T/read")"
  assert_contains "write in flight at the stop" "wrote $SS" "$(cat "$T/writer.out")"
  assert_ge "FUSE requests in flight at the stop (step 1)" 2 "$(in_flight_at_stop "$dlog")"
else
  # Step 1 had nothing to wait for; step 2 finished the remapctl request.
  assert_ge "step 2 (waited for the control channel's slow remap), ms" 1000 "$(step_ms "$dlog" 2)"
fi
after_orderly_stop "$how" "$mnt" "$db" "$dlog"

pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount2.log")
st=$(must "$REMAPCTL" status "$mnt" --json)
assert_eq "was_clean after the stop ($how)" true "$(jq -r .was_clean <<<"$st")"
must "$REMAPCTL" fault clear "$mnt"
list=$(must "$REMAPCTL" list "$mnt" --sectors "$C" --json)
assert_eq "the remap in flight at the stop is durable" remapped "$(jq -r '.[0].state' <<<"$list")"
assert_eq "the remapped sector's bytes" "$(init_sector $C)" "$(sha_range "$f" $((C * SS)) $SS)"
if [[ $how != unmount ]]; then
  assert_eq "the write in flight at the stop is durable" "$(sha_of "$T/new")" "$(sha_range "$f" $((B * SS)) $SS)"
else
  assert_eq "sector $B" "$(init_sector $B)" "$(sha_range "$f" $((B * SS)) $SS)"
fi
unmount_set "$mnt" "$pid" "$T/mount2.log"
must "$REMAPCTL" check "$db"
