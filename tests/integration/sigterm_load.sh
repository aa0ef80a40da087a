#!/usr/bin/env bash
# sigterm_load: SIGTERM (then SIGINT) to the daemon while a writer fsyncs
# block after block through the mount and MAIN write faults force remaps
# (some slow). The daemon must exit within a bound after an ordered shutdown;
# after a remount every block whose fsync succeeded reads back exactly, and
# `remapctl check` passes.
source "$(dirname "$0")/lib.sh"
setup

SS=4096
BLK=16384                 # one write: 4 sectors
NB=512                    # blocks per round, reused in a ring: 8 MiB
REGION_SECTORS=8192       # each round writes in its own 32 MiB region
make_set sl 128M 32M $SS
MNT=$T/mnt

ROUNDS=(TERM INT)
declare -A REASON=([TERM]="signal Terminated" [INT]="signal Interrupt")

for (( r = 0; r < ${#ROUNDS[@]}; r++ )); do
  sig=${ROUNDS[r]}
  base_sector=$((r * REGION_SECTORS))
  base=$((base_sector * SS))
  log "=== round $r: SIG$sig"
  mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
  pid=$DAEMON_PID daemon_log=$LOG
  # Always-failing, sometimes-failing and slow MAIN writes in this region.
  must "$REMAPCTL" fault add "$MNT" --device main --sectors $((base_sector + 16))-$((base_sector + 79)) --op write
  must "$REMAPCTL" fault add "$MNT" --device main --sectors $((base_sector + 200))-$((base_sector + 711)) --op write \
    --probability 0.3 --seed $((r + 1))
  must "$REMAPCTL" fault add "$MNT" --device main --sectors $((base_sector + 1000))-$((base_sector + 1003)) --op write \
    --delay-ms 40
  # One very slow write, outside the writer's ring, to be in flight at the signal.
  slow_sector=$((base_sector + 3000))
  must "$REMAPCTL" fault add "$MNT" --device main --sectors $slow_sector --op write --delay-ms 1500 --times 1

  acked=$T/acked.$r
  start_bg python3 "$BLOCKS_PY" write "$EXPOSED" --base $base --blk $BLK --nb $NB --gen "$r" --log "$acked" 2>"$T/writer.$r.err"
  writer=$BG_PID
  sleep 1.5
  random_file "$T/slow.$r" $SS
  # Its close (a FUSE flush sent after the signal) is refused; the write is what counts.
  start_bg python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
print("opened", flush=True)
n = os.pwrite(fd, open(sys.argv[2], "rb").read(), int(sys.argv[3]))
print(f"slow write: {n} bytes", flush=True)
try:
    os.close(fd)
except OSError as e:
    print(f"slow write: close: {e}", flush=True)
sys.exit(0 if n == int(sys.argv[4]) else 1)' "$EXPOSED" "$T/slow.$r" $((slow_sector * SS)) $SS >"$T/slow.$r.out" 2>&1
  slow=$BG_PID
  # Python may take a while to start on a loaded machine: the signal must
  # come once the write is issued, not before the file is even open.
  for (( i = 0; i < 100; i++ )); do
    grep -q opened "$T/slow.$r.out" && break
    sleep 0.1
  done
  sleep 0.5
  pid_alive "$slow" || fail "the slow write finished before the signal (the delay rule did not hold it)"
  pid_alive "$writer" || { cat "$T/writer.$r.err" >&2; fail "the writer stopped before the signal"; }
  assert_ge "blocks acked before the signal" 20 "$(acked_count "$acked")"

  sent=$(date +%s.%N)
  kill -"$sig" "$pid"
  wait_pid_gone "$pid" 10
  log "daemon exited $(python3 -c "import time; print(f'{time.time() - $sent:.2f}')") s after SIG$sig"
  assert_shutdown_log "$daemon_log" "${REASON[$sig]}"
  # The request in flight at the signal was finished and answered.
  set +e
  wait "$slow"
  src=$?
  set -e
  assert_eq "exit status of the write in flight at SIG$sig ($(tr '\n' ' ' <"$T/slow.$r.out"))" 0 "$src"
  assert_contains "the write in flight at SIG$sig" "slow write: $SS bytes" "$(cat "$T/slow.$r.out")"
  in_flight=$(sed -n 's/.*shutdown step 1: .* \([0-9][0-9]*\) in flight finished.*/\1/p' "$daemon_log")
  assert_ge "requests in flight at SIG$sig (step 1)" 1 "$in_flight"

  # The writer gets an error once the daemon is gone, and not before.
  for i in $(seq 100); do pid_alive "$writer" || break; sleep 0.1; done
  pid_alive "$writer" && fail "the writer is still running 10 s after the daemon exited"
  set +e
  wait "$writer"
  wrc=$?
  set -e
  assert_eq "writer exit status" 3 "$wrc"
  stopped_at=$(sed -n 's/^stopped at block [0-9]* at \([0-9.]*\):.*/\1/p' "$T/writer.$r.err")
  [[ -n $stopped_at ]] || { cat "$T/writer.$r.err" >&2; fail "the writer did not say why it stopped"; }
  python3 -c "import sys; sys.exit(0 if $stopped_at >= $sent else 1)" ||
    fail "the writer failed before the signal: $(cat "$T/writer.$r.err")"
  log "writer: $(acked_count "$acked") blocks acked; $(cat "$T/writer.$r.err")"

  # Left dead (the daemon could not detach it): unmount.
  if is_mounted "$MNT"; then
    log "mount left after SIG$sig: fusermount3 -u"
    fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"
  fi
  wait_unmounted "$MNT" 10

  must "$REMAPCTL" check "$DB"
  assert_contains "check after SIG$sig" "ok:" "$(OUT)"

  mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
  must "$REMAPCTL" status "$MNT" --json
  assert_eq "was_clean after SIG$sig" true "$(jqr .was_clean)"
  must "$REMAPCTL" list "$MNT" --sectors "$base_sector+$REGION_SECTORS" --json
  assert_ge "sectors remapped under load" 64 "$(jqr '[.[] | select(.state == "remapped")] | length')"
  assert_eq "remapped outside the rules" 0 "$(jqr "[.[] | select(.sector < $((base_sector + 16)) or (.sector > $((base_sector + 79)) and .sector < $((base_sector + 200))) or .sector > $((base_sector + 711)))] | length")"
  must blocks verify "$EXPOSED" --base $base --blk $BLK --nb $NB --gen "$r" --log "$acked" --sector $SS
  log "$(OUT)"
  assert_eq "the write in flight at SIG$sig is durable" "$(sha_of "$T/slow.$r")" "$(sha_range "$EXPOSED" $((slow_sector * SS)) $SS)"
  unmount_set "$MNT"
done

# Both rounds again, from a last mount.
mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
for (( r = 0; r < ${#ROUNDS[@]}; r++ )); do
  must blocks verify "$EXPOSED" --base $((r * REGION_SECTORS * SS)) --blk $BLK --nb $NB --gen "$r" \
    --log "$T/acked.$r" --sector $SS
done
unmount_set "$MNT"
must "$REMAPCTL" check "$DB"
