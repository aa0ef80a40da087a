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
source "$(dirname "$0")/functions.sh"

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
main=$T/k9.img spare=$T/k9.spare db=$T/k9.db mnt=$T/mnt f=$T/mnt/k9.img
make_set "$main" "$spare" "$db" $((NOISE0 + NNOISE * NOISE_NB * BLK)) 96M $SS

region_base() { echo $(($1 * NB * BLK)); }
# verify_region REGION GEN LOG: the region holds its acknowledged blocks and,
# elsewhere, what it held after the last check; then that is its new baseline.
verify_region() {
  local reg=$1 gen=$2 logf=$3 out
  out=$(must blocks verify "$f" --base "$(region_base "$reg")" --blk $BLK --nb $NB --gen "$gen" --log "$logf" \
    --sector $SS --batch 4 --baseline "$T/baseline.$reg" --save-baseline "$T/baseline.$reg")
  log "region $reg: $out"
}
# verify_baselines: every region written so far holds what it held at its
# last check.
verify_baselines() {
  local reg regions=()
  for (( reg = 0; reg < NREG; reg++ )); do
    if [[ -f $T/baseline.$reg ]]; then regions+=(--region "$(region_base "$reg"):$T/baseline.$reg"); fi
  done
  log "$(must blocks baselines "$f" "${regions[@]}")"
}
# lost_remaps KILLED_LOG: sectors the killed daemon logged as remapped that
# the remounted set does not have remapped: table changes still queued (never
# acknowledged) when it died. A lower bound: in a storm the log names only
# the first 10 remaps of each 10 s.
lost_remaps() {
  must "$REMAPCTL" list "$mnt" --json | jq -r '.[] | select(.state == "remapped") | .sector' | sort -u >"$T/durable"
  sed -n 's/.*\] sector \([0-9]*\) remapped to slot .*/\1/p' "$1" | sort -u | comm -23 - "$T/durable" | wc -l
}

killed_with_queue=0 total_fsyncs=0 in_flight_at_kill=0
prev_regions=() prev_logs=() prev_gens=()
for (( c = 0; c < CYCLES; c++ )); do
  commit_ms=$(( (RANDOM % 4 == 0) ? 1000 : (RANDOM % 4 == 1) ? 5 : 50 + RANDOM % 200 ))
  threads=$((1 << (RANDOM % 4)))
  dlog=$T/mount.$c.log
  pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$dlog" "commit_ms=$commit_ms,threads=$threads")
  st=$(must "$REMAPCTL" status "$mnt" --json)
  if (( c == 0 )); then
    assert_eq "was_clean of a new set" true "$(jq -r .was_clean <<<"$st")"
  else
    assert_eq "was_clean after kill -9 (cycle $((c - 1)))" false "$(jq -r .was_clean <<<"$st")"
    assert_file_contains "log of the mount after kill -9" "was not shut down cleanly" "$dlog"
    lost=$(lost_remaps "$prev_log")
    if (( lost > 0 )); then killed_with_queue=$((killed_with_queue + 1)); fi
    log "remaps queued, not yet committed, at the kill: $lost"
    for (( w = 0; w < ${#prev_regions[@]}; w++ )); do
      verify_region "${prev_regions[w]}" "${prev_gens[w]}" "${prev_logs[w]}"
    done
  fi
  must "$REMAPCTL" fault clear "$mnt"

  # This cycle's regions, rules and writers.
  prev_regions=() prev_logs=() prev_gens=()
  writers=()
  for (( w = 0; w < WRITERS; w++ )); do
    reg=$(( (c * WRITERS + w) % NREG ))
    first=$((reg * RSEC))
    must "$REMAPCTL" fault add "$mnt" --device main --op write --sectors "$((first + RANDOM % (RSEC - 64)))+64"
    must "$REMAPCTL" fault add "$mnt" --device main --op write --sectors "$((first + RANDOM % (RSEC - 512)))+512" \
      --probability "0.$((1 + RANDOM % 5))" --seed "$RANDOM"
    must "$REMAPCTL" fault add "$mnt" --device main --op write --sectors "$((first + RANDOM % (RSEC - 256)))+256" \
      --times $((1 + RANDOM % 40))
    gen="c$c.w$w"
    logf=$T/log.$c.$w
    start_bg writer "$PYTHON" "$BLOCKS_PY" write "$f" --base "$(region_base "$reg")" --blk $BLK --nb $NB --gen "$gen" \
      --log "$logf" --batch 4 --seed "$RANDOM" 2>"$T/writer.$c.$w.err"
    writers+=("$writer")
    prev_regions+=("$reg") prev_logs+=("$logf") prev_gens+=("$gen")
  done
  # Half the kills land in a burst of remaps that no fsync acknowledges (the
  # table changes are queued, or in the commit of some writer's fsync).
  burst=$((RANDOM % 2))
  noise=$(( NOISE0 + (c % NNOISE) * NOISE_NB * BLK ))
  must "$REMAPCTL" fault add "$mnt" --device main --op write --sectors "$((noise / SS))+$((NOISE_NB * BLK / SS))"
  if (( c % 3 == 2 )); then
    # Slot writes fail too: bad slots, the sector moves to another slot.
    st=$(must "$REMAPCTL" status "$mnt" --json)
    next=$(( $(jq -r .slots.used <<<"$st") + $(jq -r .slots.bad <<<"$st") ))
    must "$REMAPCTL" fault add "$mnt" --device spare --op write --sectors "$next+2000" \
      --probability 0.05 --seed "$RANDOM"
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
    start_bg noise_writer "$PYTHON" "$BLOCKS_PY" write "$f" --base $noise --blk $BLK --nb $NOISE_NB --gen "noise$c" \
      --log "$T/noise.$c" --no-fsync --count $NOISE_NB 2>/dev/null
    writers+=("$noise_writer")
    for (( i = 0; i < 200; i++ )); do
      (( $(acked_count "$T/noise.$c") >= 1 )) && break
      sleep 0.005
    done
    sleep "$(printf '0.%03d' $((RANDOM % 20)))"
  fi
  prev_log=$dlog
  kill -KILL "$pid"
  wait_pid_gone "$pid" 10

  # The writers fail once the daemon is dead (the burst may have finished).
  if (( burst )); then
    wp=${writers[WRITERS]}
    wait_until 10 _not pid_alive "$wp" || fail "cycle $c: the burst writer is still running 10 s after kill -9"
    wait "$wp" || true
  fi
  for (( w = 0; w < WRITERS; w++ )); do
    wp=${writers[w]}
    wait_until 10 _not pid_alive "$wp" || fail "cycle $c: writer $w is still running 10 s after kill -9"
    wrc=0
    wait "$wp" || wrc=$?
    [[ $wrc == 3 ]] || { cat "$T/writer.$c.$w.err" >&2; fail "cycle $c: writer $w exited $wrc, expected 3"; }
    n=$(acked_count "$T/log.$c.$w")
    total_fsyncs=$((total_fsyncs + n))
    if [[ $(tail -1 "$T/log.$c.$w") == w* ]]; then in_flight_at_kill=$((in_flight_at_kill + 1)); fi
  done
  log "cycle $c: commit_ms=$commit_ms threads=$threads; killed; fsyncs acknowledged: $(acked_count "$T/log.$c.0") + $(acked_count "$T/log.$c.1")"

  # The mount is left dead.
  is_mounted "$mnt" || fail "cycle $c: the mount went away with the killed daemon"
  err=$(must_fail stat "$f")
  assert_contains "stat on the dead mount" "Transport endpoint is not connected" "$err"
  must fusermount3 -u "$mnt"
  wait_unmounted "$mnt" 10

  st=$(must "$REMAPCTL" status "$db" --json)
  assert_eq "was_clean in the DB after kill -9" false "$(jq -r .was_clean <<<"$st")"
  out=$(must "$REMAPCTL" check "$db")
  assert_contains "check after kill -9 (cycle $c)" "ok:" "$out"
done

# The last kill, then every region once more; then an orderly stop.
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount.last.log")
st=$(must "$REMAPCTL" status "$mnt" --json)
assert_eq "was_clean after the last kill -9" false "$(jq -r .was_clean <<<"$st")"
assert_file_contains "log of the mount after the last kill -9" "was not shut down cleanly" "$T/mount.last.log"
remapped=$(jq -r .remapped_sectors <<<"$st")
bad_slots=$(jq -r .slots.bad <<<"$st")
lost=$(lost_remaps "$prev_log")
if (( lost > 0 )); then killed_with_queue=$((killed_with_queue + 1)); fi
log "remaps queued, not yet committed, at the kill: $lost"
for (( w = 0; w < ${#prev_regions[@]}; w++ )); do
  verify_region "${prev_regions[w]}" "${prev_gens[w]}" "${prev_logs[w]}"
done
verify_baselines
must "$REMAPCTL" fault clear "$mnt"
unmount_set "$mnt" "$pid" "$T/mount.last.log"
must "$REMAPCTL" check "$db"
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount.clean.log")
st=$(must "$REMAPCTL" status "$mnt" --json)
assert_eq "was_clean after the orderly stop" true "$(jq -r .was_clean <<<"$st")"
assert_eq "remapped after the orderly stop" "$remapped" "$(jq -r .remapped_sectors <<<"$st")"
verify_baselines
unmount_set "$mnt" "$pid" "$T/mount.clean.log"
must "$REMAPCTL" check "$db"

assert_ge "sectors remapped in the campaign" $((CYCLES * 20)) "$remapped"
log "campaign: $CYCLES kill -9 cycles (seed $SEED), $total_fsyncs fsyncs acknowledged and verified," \
  "$in_flight_at_kill writers with a batch in flight at the kill, $killed_with_queue kills lost queued remaps" \
  "(never acknowledged), $remapped sectors remapped, $bad_slots bad slots"
