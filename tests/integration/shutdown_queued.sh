#!/usr/bin/env bash
# shutdown_queued: the ordered shutdown (fusermount -u, SIGTERM, SIGINT) while
# thousands of table changes are queued and not committed: a long commit
# interval (commit_ms=600000) and writes, without fsync, over MAIN sectors
# under a write fault, so every sector is remapped and its mapping and event
# wait in the metadata writer's queue (checked live: the daemon has them, the
# DB does not). The writes come through a loop device on the exposed file
# (detached before the unmount: a loop device releases the file without a
# FUSE flush, a process's close would commit) or through a process that holds
# the file open. A stuck control client (at the unmount one that never reads
# its reply, at SIGTERM one that never sends its request) must not hold up
# the shutdown, nor (at SIGINT) another process reading the DB. Each stop must finish within 30 s, log steps 1..6 in order,
# and leave a set that passes `remapctl check`, is marked clean, and after a
# remount holds every write and every remap.
source "$(dirname "$0")/lib.sh"
setup

SS=512
MIB=4                              # per round: 4 MiB, 8192 sectors remapped
PER=$((MIB * 1024 * 1024 / SS))
make_set sq 64M 32M $SS
MNT=$T/mnt
BOUND=30

ROUNDS=(unmount TERM INT)
total=0
for (( r = 0; r < ${#ROUNDS[@]}; r++ )); do
  how=${ROUNDS[r]}
  log "=== round $r: $how with $PER remaps queued"
  mount_set "$MAIN" "$SPARE" "$DB" "$MNT" "commit_ms=600000"
  pid=$DAEMON_PID dlog=$LOG
  first=$((r * PER))
  off=$((first * SS))
  must "$REMAPCTL" fault add "$MNT" --device main --op write --sectors "$first+$PER"
  random_file "$T/data.$r" $((MIB * 1024 * 1024))
  holder=""
  case $how in
    unmount | TERM)
      attach_loop "$EXPOSED" --direct-io=on
      loop=$LOOP_DEV
      must dd if="$T/data.$r" of="$loop" bs=1M seek=$((off / 1048576)) oflag=direct status=none
      ;;
    INT)
      start_holder "$EXPOSED" "$T/data.$r" $off "$T/holder.$r"
      holder=$BG_PID
      for i in $(seq 200); do grep -q written "$T/holder.$r" && break; sleep 0.05; done
      grep -q written "$T/holder.$r" || fail "the writer holding the file did not finish its writes"
      ;;
  esac
  # Queued, not committed.
  if [[ $how == unmount ]]; then detach_loop "$loop"; fi
  must "$REMAPCTL" status "$MNT" --json
  assert_eq "remapped sectors (live)" $((total + PER)) "$(jqr .remapped_sectors)"
  assert_eq "write errors answered" 0 "$(jqr .counters.write_eio)"
  assert_eq "sectors committed to the DB before the stop" "$total" "$(committed_sectors "$DB")"
  log "$PER remaps (and their events) queued, $total committed"

  # A stuck control client, served when the stop comes: at the unmount one
  # that asked for the whole table (larger than the socket buffer) and does
  # not read it; at SIGTERM one that never sends its request.
  stuck=""
  if [[ $how == unmount || $how == TERM ]]; then
    if [[ $how == unmount ]]; then
      start_bg python3 "$CONTROL_PY" "$DB" noread '{"verb": "list"}'
    else
      start_bg python3 "$CONTROL_PY" "$DB" silent
    fi >"$T/stuck.$r"
    stuck=$BG_PID
    for i in $(seq 100); do [[ -s $T/stuck.$r ]] && break; sleep 0.02; done
    sleep 0.3
  fi

  # At SIGINT another process reads the DB (an open read transaction): the
  # checkpoint of step 5 must not wait for it.
  reader=""
  if [[ $how == INT ]]; then
    start_bg python3 -c 'import signal, sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True, isolation_level=None)
c.execute("BEGIN")
print(c.execute("SELECT count(*) FROM sectors").fetchone()[0], flush=True)
while True:
    signal.pause()' "$DB" >"$T/reader.$r"
    reader=$BG_PID
    for i in $(seq 100); do [[ -s $T/reader.$r ]] && break; sleep 0.02; done
  fi

  stop_daemon "$how" "$MNT" "$pid" $BOUND
  log "step 4 (final commit): $(step_ms "$dlog" 4) ms; step 2: $(step_ms "$dlog" 2) ms"
  case $how in
    TERM) detach_loop "$loop" ;;
    INT) kill -KILL "$holder"; wait "$holder" 2>/dev/null || true ;;
  esac
  if [[ -n $stuck ]]; then
    for i in $(seq 50); do pid_alive "$stuck" || break; sleep 0.1; done
    pid_alive "$stuck" && fail "the stuck control client was not disconnected by the shutdown"
    assert_eq "the stuck control client" closed "$(tail -1 "$T/stuck.$r")"
    step2=$(step_ms "$dlog" 2)
    (( step2 < 2000 )) || fail "step 2 waited ${step2} ms for a stuck control client"
    if [[ $how == unmount ]]; then
      assert_file_contains "daemon log" "control channel: a client did not take its reply; dropped it" "$dlog"
    fi
  fi
  if [[ -n $reader ]]; then
    step5=$(step_ms "$dlog" 5)
    (( step5 < 2000 )) || fail "step 5 waited ${step5} ms for a reader of the DB"
    kill -TERM "$reader"; wait "$reader" 2>/dev/null || true
  fi
  after_orderly_stop "$MNT" "$DB" "$dlog"
  assert_eq "sectors committed by the stop" $((total + PER)) "$(committed_sectors "$DB")"
  total=$((total + PER))

  mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
  must "$REMAPCTL" status "$MNT" --json
  assert_eq "was_clean after the stop ($how)" true "$(jqr .was_clean)"
  assert_eq "remapped after the stop ($how)" $total "$(jqr .remapped_sectors)"
  for (( q = 0; q <= r; q++ )); do
    assert_eq "data of round $q after round $r" "$(sha_of "$T/data.$q")" \
      "$(sha_range "$EXPOSED" $((q * PER * SS)) $((MIB * 1024 * 1024)))"
  done
  unmount_set "$MNT"
done

# The whole table, live: a reply of more than 1 MiB (remapctl once refused
# replies that long).
mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
must "$REMAPCTL" list "$MNT" --json
assert_ge "bytes of the live list" $((1 << 20)) "$(wc -c <"$T/out")"
assert_eq "entries of the live list" $total "$(jqr length)"
unmount_set "$MNT"

must "$REMAPCTL" check "$DB"
must "$REMAPCTL" events "$DB" --json --limit 100000
assert_eq "remap events" $total "$(jqr '[.[] | select(.kind == "remapped")] | length')"
