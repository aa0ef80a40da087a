#!/usr/bin/env bash
# shutdown_queued unmount|sigterm|sigint: the ordered shutdown while
# thousands of table changes are queued and not committed: a long commit
# interval (commit_ms=600000) and writes, without fsync, over MAIN sectors
# under a write fault, so every sector is remapped and its mapping and event
# wait in the metadata writer's queue (checked live: the daemon has them, the
# DB does not). The writes come through a loop device on the exposed file
# (unmount, sigterm; detached before the unmount: a loop device releases the
# file without a FUSE flush, a process's close would commit) or (sigint)
# through a process that holds the file open. A stuck control client (at the
# unmount one that never reads its reply, at SIGTERM one that never sends its
# request) must not hold up the shutdown, nor (at SIGINT) another process
# reading the DB. The stop must finish within 30 s, log steps 1..6 in order,
# and leave a set that passes `remapctl check`, is marked clean, and after a
# remount holds every write and every remap.
source "$(dirname "$0")/functions.sh"
how=$(one_of "${1:-}" unmount sigterm sigint)

SS=512
MIB=4                              # 4 MiB, 8192 sectors remapped
PER=$((MIB * 1024 * 1024 / SS))
BOUND=30
main=$T/sq.img spare=$T/sq.spare db=$T/sq.db mnt=$T/mnt f=$T/mnt/sq.img
make_set "$main" "$spare" "$db" 64M 32M $SS
dlog=$T/mount1.log

log "$how with $PER remaps queued"
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$dlog" "commit_ms=600000")
must "$REMAPCTL" fault add "$mnt" --device main --op write --sectors "0+$PER"
random_file "$T/data" $((MIB * 1024 * 1024))
if [[ $how == sigint ]]; then
  start_bg holder "$PYTHON" "$FILEIO_PY" pwrite "$f" "$T/data" 0 --hold >"$T/holder.out"
  wait_until 10 has_text "$T/holder.out" wrote || fail "the writer holding the file did not finish its writes"
else
  loop=$(attach_loop "$f" --direct-io=on)
  must dd if="$T/data" of="$loop" bs=1M oflag=direct status=none
  if [[ $how == unmount ]]; then detach_loop "$loop"; fi
fi
# Queued, not committed.
st=$(must "$REMAPCTL" status "$mnt" --json)
assert_eq "remapped sectors (live)" $PER "$(jq -r .remapped_sectors <<<"$st")"
assert_eq "write errors answered" 0 "$(jq -r .counters.write_eio <<<"$st")"
assert_eq "sectors committed to the DB before the stop" 0 "$(committed_sectors "$db")"
log "$PER remaps (and their events) queued, none committed"

# A stuck control client, served when the stop comes: at the unmount one
# that asked for the whole table (larger than the socket buffer) and does
# not read it; at SIGTERM one that never sends its request.
case $how in
  unmount) start_bg stuck "$PYTHON" "$CONTROL_PY" "$db" noread '{"verb": "list"}' >"$T/stuck" ;;
  sigterm) start_bg stuck "$PYTHON" "$CONTROL_PY" "$db" silent >"$T/stuck" ;;
esac
if [[ $how != sigint ]]; then
  wait_until 10 test -s "$T/stuck" || fail "the stuck control client did not connect"
  sleep 0.3
fi
# At SIGINT another process reads the DB (an open read transaction): the
# checkpoint of step 5 must not wait for it.
if [[ $how == sigint ]]; then
  start_bg reader "$PYTHON" "$DBREAD_PY" "$db" hold >"$T/reader"
  wait_until 10 test -s "$T/reader" || fail "the reader did not open its transaction"
fi

stop_daemon "$how" "$mnt" "$pid" "$dlog" $BOUND
log "step 4 (final commit): $(step_ms "$dlog" 4) ms; step 2: $(step_ms "$dlog" 2) ms"
case $how in
  sigterm) detach_loop "$loop" ;;
  sigint) kill -KILL "$holder"; wait "$holder" 2>/dev/null || true ;;
esac
if [[ $how != sigint ]]; then
  wait_until 5 _not pid_alive "$stuck" || fail "the stuck control client was not disconnected by the shutdown"
  assert_eq "the stuck control client" closed "$(tail -1 "$T/stuck")"
  step2=$(step_ms "$dlog" 2)
  (( step2 < 2000 )) || fail "step 2 waited ${step2} ms for a stuck control client"
  if [[ $how == unmount ]]; then
    assert_file_contains "daemon log" "control channel: a client did not take its reply; dropped it" "$dlog"
  fi
else
  step5=$(step_ms "$dlog" 5)
  (( step5 < 2000 )) || fail "step 5 waited ${step5} ms for a reader of the DB"
  kill -TERM "$reader"; wait "$reader" 2>/dev/null || true
fi
after_orderly_stop "$how" "$mnt" "$db" "$dlog"
assert_eq "sectors committed by the stop" $PER "$(committed_sectors "$db")"

pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount2.log")
st=$(must "$REMAPCTL" status "$mnt" --json)
assert_eq "was_clean after the stop ($how)" true "$(jq -r .was_clean <<<"$st")"
assert_eq "remapped after the stop ($how)" $PER "$(jq -r .remapped_sectors <<<"$st")"
assert_eq "data after the stop ($how)" "$(sha_of "$T/data")" "$(sha_range "$f" 0 $((MIB * 1024 * 1024)))"
unmount_set "$mnt" "$pid" "$T/mount2.log"

must "$REMAPCTL" check "$db"
events=$(must "$REMAPCTL" events "$db" --json --limit 100000)
assert_eq "remap events" $PER "$(jq -r '[.[] | select(.kind == "remapped")] | length' <<<"$events")"
