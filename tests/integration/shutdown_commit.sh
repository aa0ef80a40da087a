#!/usr/bin/env bash
# shutdown_commit unmount|sigterm|sigint: the ordered shutdown while the
# metadata writer is in the middle of a big commit: 65536 remaps and their
# events are queued (commit_ms=600000, writes under a MAIN write fault, no
# fsync), then a flush starts their commit (an fsync of the exposed file, or
# at the unmount, which a mount with open files refuses, a flush request on
# the control channel), and the stop comes while that commit runs: a quarter
# of the commit time measured first after the flush was sent, sent by the
# flushing process itself (so that a loaded machine does not delay it);
# checked: the flush was answered after the stop; when it was not, it is done
# again, up to 3 times. The flush must succeed; the daemon must
# exit within 30 s, log steps 1..6 in order and leave a set that passes
# `remapctl check`, is marked clean, and after a remount holds every write
# and remap. The unmount case also lists the whole table live afterwards: a
# reply of more than 1 MiB (remapctl once refused replies that long).
source "$(dirname "$0")/functions.sh"
how=$(one_of "${1:-}" unmount sigterm sigint)

SS=512
MIB=32
PER=$((MIB * 1024 * 1024 / SS))   # 65536 remaps per region
BOUND=30
ATTEMPTS=3                        # when the stop missed the commit
NREG=$((1 + ATTEMPTS))            # the measurement's region, then one per attempt
main=$T/sc.img spare=$T/sc.spare db=$T/sc.db mnt=$T/mnt f=$T/mnt/sc.img
make_set "$main" "$spare" "$db" $((NREG * MIB))M $((NREG * MIB + 8))M $SS

# queue_writes REGION HOW: PER remaps queued in REGION, written from
# $T/data.REGION through a loop device (detached unless HOW is sigterm; its
# device is then in $T/loop.REGION) or, for sigint, by a process that keeps
# the file open (its pid in the variable holder).
queue_writes() {
  local reg=$1 how=$2 first=$(($1 * PER)) loop
  must "$REMAPCTL" fault add "$mnt" --device main --op write --sectors "$first+$PER"
  random_file "$T/data.$reg" $((MIB * 1024 * 1024))
  if [[ $how == sigint ]]; then
    start_bg holder "$PYTHON" "$FILEIO_PY" pwrite "$f" "$T/data.$reg" $((first * SS)) --hold >"$T/holder.$reg"
    wait_until 20 has_text "$T/holder.$reg" wrote || fail "the writer holding the file did not finish its writes"
  else
    loop=$(attach_loop "$f" --direct-io=on)
    must dd if="$T/data.$reg" of="$loop" bs=1M seek=$((first * SS / 1048576)) oflag=direct status=none
    if [[ $how == sigterm ]]; then echo "$loop" >"$T/loop.$reg"; else detach_loop "$loop"; fi
  fi
  # The data the remaps point to is on disk (fdatasync from outside): the
  # commit is what remains.
  sync --data "$spare" "$main"
}

# start_flush HOW OUT [--then MS CMD...]: a flush in the background (prints
# "sending", then a JSON line with the times it was sent and answered, and
# when CMD ran MS ms after the sending; its pid in the variable flusher);
# returns once it is sent.
start_flush() {
  local how=$1 out=$2
  shift 2
  if [[ $how == unmount ]]; then
    start_bg flusher "$PYTHON" "$CONTROL_PY" "$db" call '{"verb": "flush"}' "$@" >"$out"
  else
    start_bg flusher "$PYTHON" "$FILEIO_PY" fsync "$f" "$@" >"$out"
  fi
  wait_until 10 has_text "$out" sending || fail "the flush did not start"
}

# How long a flush of PER queued remaps takes here.
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount.measure.log" "commit_ms=600000")
queue_writes 0 unmount
start_flush unmount "$T/flush.measure"
wait "$flusher" || fail "the measuring flush failed: $(cat "$T/flush.measure")"
D=$(tail -1 "$T/flush.measure" | jq '(.replied - .sent) * 1000 | floor')
log "a flush of $PER queued remaps takes $D ms"
unmount_set "$mnt" "$pid" "$T/mount.measure.log"
total=$PER

for (( region = 1; ; region++ )); do
  attempt=$region
  log "$how during the commit of $PER remaps (attempt $attempt)"
  dlog=$T/mount.$region.log
  pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$dlog" "commit_ms=600000")
  queue_writes $region "$how"
  assert_eq "sectors committed before the flush" $total "$(committed_sectors "$db")"
  case $how in
    unmount) stop=(fusermount3 -u "$mnt") ;;
    sigterm) stop=(kill -TERM "$pid") ;;
    sigint) stop=(kill -INT "$pid") ;;
  esac
  start_flush "$how" "$T/flush.$region" --then $(( D / 4 > 10 ? D / 4 : 10 )) "${stop[@]}"
  wait_daemon_exit "$pid" "$dlog" $BOUND "$how"
  frc=0
  wait "$flusher" || frc=$?
  reply=$(tail -1 "$T/flush.$region")
  assert_eq "the flush in flight at the stop ($reply)" 0 "$frc"
  assert_eq "the stop ($how, run by the flusher)" 0 "$(jq -r .then.rc <<<"$reply")"
  sent=$(jq '.sent * 1000 | floor' <<<"$reply") replied=$(jq '.replied * 1000 | floor' <<<"$reply")
  stop_at=$(jq '.then.at * 1000 | floor' <<<"$reply")
  log "flush sent $((stop_at - sent)) ms before the stop, answered $((replied - stop_at)) ms after it;" \
    "steps: 1 $(step_ms "$dlog" 1) ms, 2 $(step_ms "$dlog" 2) ms, 4 $(step_ms "$dlog" 4) ms"
  (( sent <= stop_at )) || fail "the flush was sent after the stop"
  if [[ -f $T/loop.$region ]]; then detach_loop "$(cat "$T/loop.$region")"; fi
  if [[ $how == sigint ]]; then kill -KILL "$holder"; wait "$holder" 2>/dev/null || true; fi
  after_orderly_stop "$how" "$mnt" "$db" "$dlog"
  total=$((total + PER))
  assert_eq "sectors committed after the stop" $total "$(committed_sectors "$db")"

  pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount.$region.after.log")
  st=$(must "$REMAPCTL" status "$mnt" --json)
  assert_eq "was_clean after the stop ($how)" true "$(jq -r .was_clean <<<"$st")"
  assert_eq "remapped after the stop ($how)" $total "$(jq -r .remapped_sectors <<<"$st")"
  assert_eq "data of the region written before the stop" "$(sha_of "$T/data.$region")" \
    "$(sha_range "$f" $((region * PER * SS)) $((MIB * 1024 * 1024)))"
  if (( replied >= stop_at )) && [[ $how == unmount ]]; then
    # The whole table, live: a reply of more than 1 MiB.
    list=$(must "$REMAPCTL" list "$mnt" --json)
    assert_ge "bytes of the live list" $((1 << 20)) "${#list}"
    assert_eq "entries of the live list" $total "$(jq -r length <<<"$list")"
  fi
  unmount_set "$mnt" "$pid" "$T/mount.$region.after.log"
  (( replied >= stop_at )) && break
  (( attempt < ATTEMPTS )) || fail "the stop came after the commit in $ATTEMPTS attempts (the machine is too loaded?)"
  log "the commit was over before the stop came; again"
done
must "$REMAPCTL" check "$db"
