#!/usr/bin/env bash
# kill9: the process-level crash campaign (store/DESIGN.md, durability 4). Cycle
# after cycle: mount, run verifying writers (generation-stamped blocks, an
# fsync after every batch, a log of what each fsync acknowledged) while MAIN
# write faults (always, seeded --probability, --times) and sometimes SPARE
# write faults force remaps, and `kill -9` the daemon at a seeded random
# moment (half the time inside a burst of unsynced writes that queues
# hundreds of remaps; the commit interval and worker threads vary by cycle
# too). Then the dead mount ("Transport endpoint is not connected") is
# unmounted; the set must say it was not stopped cleanly (offline status,
# was_clean false), pass `remapctl check`, and after a remount (whose log says
# it was not shut down cleanly, status was_clean false) hold every
# acknowledged block; blocks in flight at the kill hold, sector by sector, the
# old or the new bytes, and keep them from then on (every region is checked
# again against what it held, in later cycles and at the end).
#
# KILL9_CYCLES (default 20) cycles, KILL9_SEED (default 1) for the kill
# moments, rules and options; both are logged to rerun a failure (the exact
# instant a kill lands still depends on the machine). A longer campaign:
#   KILL9_CYCLES=300 IT_TIMEOUT=3600 REMAPFS=... REMAPCTL=... bash kill9.sh
source "$(dirname "$0")/lib.sh"
setup

CYCLES=${KILL9_CYCLES:-20}
SEED=${KILL9_SEED:-1}
[[ $CYCLES =~ ^[0-9]+$ && $CYCLES -ge 1 ]] || fail "KILL9_CYCLES must be a positive number"
RANDOM=$SEED
log "$CYCLES cycles, seed $SEED (KILL9_CYCLES, KILL9_SEED)"

SS=512
BLK=8192                  # one block: 16 sectors
NB=256                    # ring of each writer: 2 MiB
RSEC=$((NB * BLK / SS))   # sectors per region
NREG=32                   # regions, reused round-robin: 64 MiB
WRITERS=2
NOISE_NB=32               # a burst of unsynced writes: 256 KiB, 512 remaps
NNOISE=64                 # slices for the bursts, after the regions: 16 MiB
NOISE0=$((NREG * NB * BLK))
make_set k9 $((NOISE0 + NNOISE * NOISE_NB * BLK)) 96M $SS
MNT=$T/mnt

region_base() { echo $(($1 * NB * BLK)); }
# verify_region REGION GEN LOG: the region holds its acknowledged blocks and,
# elsewhere, what it held after the last check; then that is its new baseline.
verify_region() {
  local reg=$1 gen=$2 logf=$3
  must blocks verify "$EXPOSED" --base "$(region_base "$reg")" --blk $BLK --nb $NB --gen "$gen" --log "$logf" \
    --sector $SS --batch 4 --baseline "$T/baseline.$reg" --save-baseline "$T/baseline.$reg"
  log "region $reg: $(OUT)"
}
# verify_baselines: every region written so far holds what it held at its
# last check.
verify_baselines() {
  local reg regions=()
  for (( reg = 0; reg < NREG; reg++ )); do
    if [[ -f $T/baseline.$reg ]]; then regions+=(--region "$(region_base "$reg"):$T/baseline.$reg"); fi
  done
  must blocks baselines "$EXPOSED" "${regions[@]}"
  log "$(OUT)"
}
# lost_remaps KILLED_LOG: sectors the killed daemon logged as remapped that
# the remounted set does not have remapped: table changes still queued (never
# acknowledged) when it died.
lost_remaps() {
  must "$REMAPCTL" list "$MNT" --json
  jqr '.[] | select(.state == "remapped") | .sector' | sort -u >"$T/durable"
  sed -n 's/.*\] sector \([0-9]*\) remapped to slot .*/\1/p' "$1" | sort -u | comm -23 - "$T/durable" | wc -l
}

killed_with_queue=0 total_fsyncs=0 in_flight_at_kill=0
declare -a PREV_REGIONS=() PREV_LOGS=() PREV_GENS=()
for (( c = 0; c < CYCLES; c++ )); do
  commit_ms=$(( (RANDOM % 4 == 0) ? 1000 : (RANDOM % 4 == 1) ? 5 : 50 + RANDOM % 200 ))
  threads=$((1 << (RANDOM % 4)))
  mount_set "$MAIN" "$SPARE" "$DB" "$MNT" "commit_ms=$commit_ms,threads=$threads"
  pid=$DAEMON_PID
  must "$REMAPCTL" status "$MNT" --json
  if (( c == 0 )); then
    assert_eq "was_clean of a new set" true "$(jqr .was_clean)"
  else
    assert_eq "was_clean after kill -9 (cycle $((c - 1)))" false "$(jqr .was_clean)"
    assert_file_contains "log of the mount after kill -9" "was not shut down cleanly" "$LOG"
    lost=$(lost_remaps "$prev_log")
    if (( lost > 0 )); then killed_with_queue=$((killed_with_queue + 1)); fi
    log "remaps queued, not yet committed, at the kill: $lost"
    for (( w = 0; w < ${#PREV_REGIONS[@]}; w++ )); do
      verify_region "${PREV_REGIONS[w]}" "${PREV_GENS[w]}" "${PREV_LOGS[w]}"
    done
  fi
  must "$REMAPCTL" fault clear "$MNT"

  # This cycle's regions, rules and writers.
  PREV_REGIONS=() PREV_LOGS=() PREV_GENS=()
  writers=()
  for (( w = 0; w < WRITERS; w++ )); do
    reg=$(( (c * WRITERS + w) % NREG ))
    first=$((reg * RSEC))
    must "$REMAPCTL" fault add "$MNT" --device main --op write --sectors "$((first + RANDOM % (RSEC - 64)))+64"
    must "$REMAPCTL" fault add "$MNT" --device main --op write --sectors "$((first + RANDOM % (RSEC - 512)))+512" \
      --probability "0.$((1 + RANDOM % 5))" --seed $RANDOM
    must "$REMAPCTL" fault add "$MNT" --device main --op write --sectors "$((first + RANDOM % (RSEC - 256)))+256" \
      --times $((1 + RANDOM % 40))
    gen="c$c.w$w"
    logf=$T/log.$c.$w
    start_bg python3 "$BLOCKS_PY" write "$EXPOSED" --base "$(region_base "$reg")" --blk $BLK --nb $NB --gen "$gen" \
      --log "$logf" --batch 4 --seed $RANDOM 2>"$T/writer.$c.$w.err"
    writers+=("$BG_PID")
    PREV_REGIONS+=("$reg") PREV_LOGS+=("$logf") PREV_GENS+=("$gen")
  done
  # Half the kills land in a burst of remaps that no fsync acknowledges (the
  # table changes are queued, or in the commit of some writer's fsync).
  burst=$((RANDOM % 2))
  noise=$(( NOISE0 + (c % NNOISE) * NOISE_NB * BLK ))
  must "$REMAPCTL" fault add "$MNT" --device main --op write --sectors "$((noise / SS))+$((NOISE_NB * BLK / SS))"
  if (( c % 3 == 2 )); then
    # Slot writes fail too: bad slots, the sector moves to another slot.
    must "$REMAPCTL" status "$MNT" --json
    next=$(( $(jqr .slots.used) + $(jqr .slots.bad) ))
    must "$REMAPCTL" fault add "$MNT" --device spare --op write --sectors "$next+2000" \
      --probability 0.05 --seed $RANDOM
  fi
  # Every writer has been acknowledged at least once, then a random moment.
  for (( i = 0; i < 100; i++ )); do
    ok=1
    for (( w = 0; w < WRITERS; w++ )); do
      (( $(acked_count "$T/log.$c.$w") >= 1 )) || ok=0
    done
    (( ok )) && break
    sleep 0.05
  done
  (( ok )) || fail "cycle $c: a writer got no fsync acknowledged in 5 s"
  sleep "$(printf '0.%03d' $((RANDOM % 900)))"
  if (( burst )); then
    start_bg python3 "$BLOCKS_PY" write "$EXPOSED" --base $noise --blk $BLK --nb $NOISE_NB --gen "noise$c" \
      --log "$T/noise.$c" --no-fsync --count $NOISE_NB 2>/dev/null
    writers+=("$BG_PID")
    for (( i = 0; i < 200; i++ )); do
      (( $(acked_count "$T/noise.$c") >= 1 )) && break
      sleep 0.005
    done
    sleep "$(printf '0.%03d' $((RANDOM % 20)))"
  fi
  prev_log=$LOG
  kill -KILL "$pid"
  wait_pid_gone "$pid" 10

  # The writers fail once the daemon is dead (the burst may have finished).
  if (( burst )); then
    wp=${writers[WRITERS]}
    for (( i = 0; i < 100; i++ )); do pid_alive "$wp" || break; sleep 0.1; done
    pid_alive "$wp" && fail "cycle $c: the burst writer is still running 10 s after kill -9"
    wait "$wp" || true
  fi
  for (( w = 0; w < WRITERS; w++ )); do
    wp=${writers[w]}
    for (( i = 0; i < 100; i++ )); do pid_alive "$wp" || break; sleep 0.1; done
    pid_alive "$wp" && fail "cycle $c: writer $w is still running 10 s after kill -9"
    set +e
    wait "$wp"
    wrc=$?
    set -e
    [[ $wrc == 3 ]] || { cat "$T/writer.$c.$w.err" >&2; fail "cycle $c: writer $w exited $wrc, expected 3"; }
    n=$(acked_count "$T/log.$c.$w")
    total_fsyncs=$((total_fsyncs + n))
    if [[ $(tail -1 "$T/log.$c.$w") == w* ]]; then in_flight_at_kill=$((in_flight_at_kill + 1)); fi
  done
  log "cycle $c: commit_ms=$commit_ms threads=$threads; killed; fsyncs acknowledged: $(acked_count "$T/log.$c.0") + $(acked_count "$T/log.$c.1")"

  # The mount is left dead.
  is_mounted "$MNT" || fail "cycle $c: the mount went away with the killed daemon"
  run stat "$MNT/$(basename "$MAIN")"
  assert_contains "stat on the dead mount" "Transport endpoint is not connected" "$(ERR)"
  must fusermount3 -u "$MNT"
  wait_unmounted "$MNT" 10

  must "$REMAPCTL" status "$DB" --json
  assert_eq "was_clean in the DB after kill -9" false "$(jqr .was_clean)"
  must "$REMAPCTL" check "$DB"
  assert_contains "check after kill -9 (cycle $c)" "ok:" "$(OUT)"
done

# The last kill, then every region once more; then an orderly stop.
mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
must "$REMAPCTL" status "$MNT" --json
assert_eq "was_clean after the last kill -9" false "$(jqr .was_clean)"
assert_file_contains "log of the mount after the last kill -9" "was not shut down cleanly" "$LOG"
remapped=$(jqr .remapped_sectors)
bad_slots=$(jqr .slots.bad)
lost=$(lost_remaps "$prev_log")
if (( lost > 0 )); then killed_with_queue=$((killed_with_queue + 1)); fi
log "remaps queued, not yet committed, at the kill: $lost"
for (( w = 0; w < ${#PREV_REGIONS[@]}; w++ )); do
  verify_region "${PREV_REGIONS[w]}" "${PREV_GENS[w]}" "${PREV_LOGS[w]}"
done
verify_baselines
must "$REMAPCTL" fault clear "$MNT"
unmount_set "$MNT"
must "$REMAPCTL" check "$DB"
mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
must "$REMAPCTL" status "$MNT" --json
assert_eq "was_clean after the orderly stop" true "$(jqr .was_clean)"
assert_eq "remapped after the orderly stop" "$remapped" "$(jqr .remapped_sectors)"
verify_baselines
unmount_set "$MNT"
must "$REMAPCTL" check "$DB"

assert_ge "sectors remapped in the campaign" $((CYCLES * 20)) "$remapped"
log "campaign: $CYCLES kill -9 cycles (seed $SEED), $total_fsyncs fsyncs acknowledged and verified," \
  "$in_flight_at_kill writers with a batch in flight at the kill, $killed_with_queue kills lost queued remaps" \
  "(never acknowledged), $remapped sectors remapped, $bad_slots bad slots"
