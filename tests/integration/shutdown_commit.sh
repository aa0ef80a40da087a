#!/usr/bin/env bash
# shutdown_commit: the ordered shutdown (fusermount -u, SIGTERM, SIGINT) while
# the metadata writer is in the middle of a big commit: 65536 remaps and
# their events are queued (commit_ms=600000, writes under a MAIN write fault,
# no fsync), then a flush starts their commit (an fsync of the exposed file,
# or at the unmount, which a mount with open files refuses, a flush request
# on the control channel), and the stop comes while that commit runs (a
# quarter of the commit time measured first; checked: the flush was sent
# before the stop and answered after it; when a loaded machine made the stop
# late, the round is done again, up to 3 times). The flush must succeed; the daemon must exit
# within 30 s, log steps 1..6 in order and leave a set that passes `remapctl
# check`, is marked clean, and after a remount holds every write and remap.
source "$(dirname "$0")/lib.sh"
setup

SS=512
MIB=32
PER=$((MIB * 1024 * 1024 / SS))   # 65536 remaps per round
BOUND=30
ATTEMPTS=3                        # per round, when the stop missed the commit
NREG=$((1 + 3 * ATTEMPTS))
make_set sc $((NREG * MIB))M $((NREG * MIB + 8))M $SS
MNT=$T/mnt

# queue_writes ROUND HOW: PER remaps queued in region ROUND, written from
# $T/data.ROUND through a loop device (detached for the unmount) or, for
# SIGINT, by a process that keeps the file open (HOLDER).
queue_writes() {
  local r=$1 how=$2 first=$(($1 * PER))
  must "$REMAPCTL" fault add "$MNT" --device main --op write --sectors "$first+$PER"
  random_file "$T/data.$r" $((MIB * 1024 * 1024))
  HOLDER="" LOOP=""
  if [[ $how == INT ]]; then
    start_holder "$EXPOSED" "$T/data.$r" $((first * SS)) "$T/holder.$r"
    HOLDER=$BG_PID
    for i in $(seq 400); do grep -q written "$T/holder.$r" && break; sleep 0.05; done
    grep -q written "$T/holder.$r" || fail "the writer holding the file did not finish its writes"
  else
    attach_loop "$EXPOSED" --direct-io=on
    LOOP=$LOOP_DEV
    must dd if="$T/data.$r" of="$LOOP" bs=1M seek=$((first * SS / 1048576)) oflag=direct status=none
    if [[ $how != TERM ]]; then detach_loop "$LOOP"; LOOP=""; fi
  fi
  # The data the remaps point to is on disk: the commit is what remains.
  presync "$SPARE" "$MAIN"
}

# start_flush HOW: a flush in the background (prints "sending", then a JSON
# line with the times it was sent and answered); waits until it is sent.
start_flush() {
  local how=$1 out=$2
  if [[ $how == unmount ]]; then
    start_bg python3 "$CONTROL_PY" "$DB" call '{"verb": "flush"}' >"$out"
  else
    start_bg python3 -c 'import json, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
print("sending", flush=True)
sent = time.time()
try:
    os.fsync(fd)
    reply = {"ok": True}
except OSError as e:
    reply = {"ok": False, "error": str(e)}
print(json.dumps({"sent": sent, "replied": time.time(), "reply": reply}), flush=True)
try:
    os.close(fd)
except OSError:
    pass' "$EXPOSED" >"$out"
  fi
  FLUSHER=$BG_PID
  for i in $(seq 500); do grep -q sending "$out" && return 0; sleep 0.01; done
  fail "the flush did not start"
}

# How long a flush of PER queued remaps takes here.
mount_set "$MAIN" "$SPARE" "$DB" "$MNT" "commit_ms=600000"
queue_writes 0 unmount
start_flush unmount "$T/flush.cal"
wait "$FLUSHER" || fail "the calibration flush failed: $(cat "$T/flush.cal")"
D=$(tail -1 "$T/flush.cal" | jq '(.replied - .sent) * 1000 | floor')
log "a flush of $PER queued remaps takes $D ms"
unmount_set "$MNT"
total=$PER

ROUNDS=(unmount TERM INT)
region=0
for (( r = 0; r < ${#ROUNDS[@]}; r++ )); do
  how=${ROUNDS[r]}
  for (( attempt = 1; ; attempt++ )); do
    region=$((region + 1))
    log "=== round $r: $how during the commit of $PER remaps (attempt $attempt)"
    mount_set "$MAIN" "$SPARE" "$DB" "$MNT" "commit_ms=600000"
    pid=$DAEMON_PID dlog=$LOG
    queue_writes $region "$how"
    assert_eq "sectors committed before the flush" $total "$(committed_sectors "$DB")"
    start_flush "$how" "$T/flush.$region"
    sleep "$(awk -v d="$D" 'BEGIN { printf "%.3f", (d / 4 > 10 ? d / 4 : 10) / 1000 }')"
    stop_at=$(now_ms)
    stop_daemon "$how" "$MNT" "$pid" $BOUND
    set +e
    wait "$FLUSHER"
    frc=$?
    set -e
    f=$(tail -1 "$T/flush.$region")
    assert_eq "the flush in flight at the stop ($f)" 0 "$frc"
    sent=$(jq '.sent * 1000 | floor' <<<"$f") replied=$(jq '.replied * 1000 | floor' <<<"$f")
    log "flush sent $((stop_at - sent)) ms before the stop, answered $((replied - stop_at)) ms after it;" \
      "steps: 1 $(step_ms "$dlog" 1) ms, 2 $(step_ms "$dlog" 2) ms, 4 $(step_ms "$dlog" 4) ms"
    (( sent <= stop_at )) || fail "the flush was sent after the stop"
    if [[ -n $LOOP ]]; then detach_loop "$LOOP"; fi
    if [[ -n $HOLDER ]]; then kill -KILL "$HOLDER"; wait "$HOLDER" 2>/dev/null || true; fi
    after_orderly_stop "$MNT" "$DB" "$dlog"
    total=$((total + PER))
    assert_eq "sectors committed after the stop" $total "$(committed_sectors "$DB")"

    mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
    must "$REMAPCTL" status "$MNT" --json
    assert_eq "was_clean after the stop ($how)" true "$(jqr .was_clean)"
    assert_eq "remapped after the stop ($how)" $total "$(jqr .remapped_sectors)"
    assert_eq "data of round $r" "$(sha_of "$T/data.$region")" \
      "$(sha_range "$EXPOSED" $((region * PER * SS)) $((MIB * 1024 * 1024)))"
    unmount_set "$MNT"
    (( replied >= stop_at )) && break
    (( attempt < ATTEMPTS )) || fail "the stop came after the commit in $ATTEMPTS attempts (the machine is too loaded?)"
    log "the commit was over before the stop came; again"
  done
done
must "$REMAPCTL" check "$DB"
