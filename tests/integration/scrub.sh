#!/usr/bin/env bash
# scrub VARIANT: the background scan on a real mount, its faults made by
# fault rules (the real read path).
#   finds:    a pass makes an unreadable sector pending, rescues a sector
#             that reads only after retries and a slow one (their data
#             intact), retires a dead slot (its sector pending) and a
#             marginal one (its sector moved, data intact); counters, events,
#             `status`; the progress bar on a terminal, lines otherwise.
#   resume:   a pass killed with kill -9 resumes, at the next mount, from the
#             position the DB had, and ends.
#   shutdown: fusermount -u while a pass reads slow sectors: step 2 ends it
#             within about one read, the position is saved, and the next
#             mount goes on from there.
source "$(dirname "$0")/functions.sh"

variant=${1:?variant: finds, resume or shutdown}
main=$T/s.img spare=$T/s.spare db=$T/s.db mnt=$T/mnt f=$T/mnt/s.img
make_set "$main" "$spare" "$db" 64M 8M 4096
random_file "$T/data" $((64 << 20))
must dd if="$T/data" of="$main" bs=1M conv=notrunc status=none

# sector_sha FILE SECTOR: sha256 of one 4 KiB sector of FILE, O_DIRECT.
sector_sha() { dd if="$1" bs=4096 skip="$2" count=1 iflag=direct status=none | sha256sum | cut -d' ' -f1; }
scrub_json() { must "$REMAPCTL" scrub status "$mnt" --json; }
scrub_position() { jq -r .position <<<"$(scrub_json)"; }
scrub_past() { (( $(scrub_position) >= $1 )); }
# saved_past N: the DB holds a running pass committed at sector N or later.
saved_past() { [[ $(committed_scrub "$db") =~ ^running\ ([0-9]+)$ ]] && (( BASH_REMATCH[1] >= $1 )); }

case $variant in
finds)
  pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/m1.log" "scrub_slow_ms=200")
  # Sectors 9000 and 9001 live in slots 0 and 1.
  must "$REMAPCTL" remap "$mnt" 9000
  must "$REMAPCTL" remap "$mnt" 9001
  must "$REMAPCTL" fault add "$mnt" --sectors 100 --op read                # dead
  must "$REMAPCTL" fault add "$mnt" --sectors 2000 --op read --times 3     # reads at the last try
  must "$REMAPCTL" fault add "$mnt" --sectors 5000 --op read --delay-ms 400  # slow
  must "$REMAPCTL" fault add "$mnt" --device spare --sectors 0 --op read   # slot of 9000: dead
  must "$REMAPCTL" fault add "$mnt" --device spare --sectors 1 --op read --times 1  # slot of 9001: marginal
  out=$(must "$REMAPCTL" scrub start "$mnt" --rate 0 --wait)
  assert_contains "scrub start --wait, not on a terminal" "scrub: idle, last full pass 20" "$out"
  must "$REMAPCTL" fault clear "$mnt"

  list=$(must "$REMAPCTL" list "$mnt" --json)
  assert_eq "pending" "100 9000" "$(jq -r '[.[] | select(.state == "pending") | .sector] | map(tostring) | join(" ")' <<<"$list")"
  assert_eq "remapped" "2000 5000 9001" \
    "$(jq -r '[.[] | select(.state == "remapped") | .sector] | map(tostring) | join(" ")' <<<"$list")"
  assert_eq "9001 left slot 1" 0 "$(jq '[.[] | select(.sector == 9001 and (.slot == 1 or .slot == 0))] | length' <<<"$list")"
  for s in 2000 5000 9001; do
    assert_eq "data of rescued sector $s" "$(sector_sha "$T/data" $s)" "$(sector_sha "$f" $s)"
  done
  st=$(must "$REMAPCTL" status "$mnt" --json)
  assert_eq "bad slots" 2 "$(jq -r .slots.bad <<<"$st")"
  for c in scrub_unreadable:1 scrub_rescued:3 scrub_slots_retired:2 scrub_passes:1; do
    assert_eq "counter ${c%%:*}" "${c##*:}" "$(jq -r ".counters.${c%%:*}" <<<"$st")"
  done
  assert_ge "scrub_bytes" $((64 << 20)) "$(jq -r .counters.scrub_bytes <<<"$st")"
  assert_eq "scrub state in status" idle "$(jq -r .scrub.state <<<"$st")"
  must sync "$f"  # an fsync: what the scrub changed is committed
  events=$(must "$REMAPCTL" events "$db" --json)
  assert_eq "rescued events" "2000 5000 9001" \
    "$(jq -r '[.[] | select(.kind == "rescued") | .sector] | map(tostring) | join(" ")' <<<"$events")"
  assert_eq "slot-bad events" "0 1" "$(jq -r '[.[] | select(.kind == "slot-bad") | .slot] | map(tostring) | join(" ")' <<<"$events")"

  # On a terminal: a progress bar with rate and ETA. 1 MB/s: it runs a while.
  must "$REMAPCTL" scrub start "$mnt" --rate 1
  out=$(timeout 5 script -qec "$REMAPCTL scrub status $mnt --wait" /dev/null || true)
  assert_contains "progress bar" "] " "$out"
  assert_contains "progress bar's rate" " MB/s  ETA " "$out"
  [[ $out == *$'\r['* ]] || fail "no carriage-return progress bar in: $out"
  must "$REMAPCTL" scrub stop "$mnt"
  out=$(must "$REMAPCTL" scrub status "$mnt")
  assert_contains "after scrub stop" "scrub: idle" "$out"
  unmount_set "$mnt" "$pid" "$T/m1.log"
  must "$REMAPCTL" check "$db"
  ;;

resume)
  pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/m1.log")
  must "$REMAPCTL" scrub start "$mnt" --rate 4  # 64 MiB in ~17 s
  wait_until 30 saved_past 4096 || fail "no committed scrub position past sector 4096: $(committed_scrub "$db")"
  kill -9 "$pid"
  wait_pid_gone "$pid" 10
  saved=$(committed_scrub "$db")
  log "killed at committed position: $saved"
  fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"
  pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/m2.log")
  assert_file_contains "resumed" "scrub: resuming the pass at sector ${saved#running }" "$T/m2.log"
  st=$(scrub_json)
  assert_eq "state after the restart" running "$(jq -r .state <<<"$st")"
  assert_ge "position after the restart" "${saved#running }" "$(jq -r .position <<<"$st")"
  out=$(must_fail_one_line "$REMAPCTL" scrub resume "$mnt" --rate 0)
  assert_contains "resume of a running pass" "running already" "$out"
  must "$REMAPCTL" scrub pause "$mnt"
  must "$REMAPCTL" scrub resume "$mnt" --rate 0
  out=$(must "$REMAPCTL" scrub status "$mnt" --wait)
  assert_contains "the pass ended" "scrub: idle, last full pass 20" "$out"
  st=$(must "$REMAPCTL" status "$mnt" --json)
  assert_eq "passes" 1 "$(jq -r .counters.scrub_passes <<<"$st")"
  unmount_set "$mnt" "$pid" "$T/m2.log"
  ;;

shutdown)
  pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/m1.log" "scrub_slow_ms=60000")
  # Every read of MAIN takes 300 ms: a region read, and each sector after
  # a slow one, is one such read.
  must "$REMAPCTL" fault add "$mnt" --sectors 0-16383 --op read --delay-ms 300
  must "$REMAPCTL" scrub start "$mnt" --rate 0
  wait_until 20 scrub_past 64 || fail "the scrub did not move"
  stop_daemon unmount "$mnt" "$pid" "$T/m1.log" 10
  after_orderly_stop unmount "$mnt" "$db" "$T/m1.log"
  assert_file_contains "step 2 names the scrub" "background workers (control channel, scrub) stopped" "$T/m1.log"
  (( $(step_ms "$T/m1.log" 2) < 1500 )) || fail "step 2 took $(step_ms "$T/m1.log" 2) ms: more than one read (300 ms)"
  saved_past 64 || fail "saved scrub: $(committed_scrub "$db")"
  saved=$(committed_scrub "$db")
  pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/m2.log")
  # The rule is back with the set: the pass goes on slowly from where it was.
  assert_ge "position after the remount" "${saved#running }" "$(scrub_position)"
  must "$REMAPCTL" fault clear "$mnt"
  out=$(must "$REMAPCTL" scrub status "$mnt" --wait)
  assert_contains "the pass ended" "scrub: idle, last full pass 20" "$out"
  assert_eq "passes" 1 "$(must "$REMAPCTL" status "$mnt" --json | jq -r .counters.scrub_passes)"
  unmount_set "$mnt" "$pid" "$T/m2.log"
  ;;
*) fail "unknown variant $variant" ;;
esac
