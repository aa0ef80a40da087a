#!/usr/bin/env bash
# health_metrics: `remapctl health` and `status --check` exit with a bit per
# condition (degraded 4, pending 8, spare-low 16, spare-exhausted 32,
# unclean-stop 128; store-failing 64 is in sync_failure.sh), live and
# offline; `remapctl metrics` and the daemon's metrics file (-o metrics=)
# parse with the Prometheus client's parser and say what the set says; the
# file is replaced atomically, written a last time at the stop; status
# shows the paths and the daemon (pid, mountpoint, uptime); and the small
# verbs: --version, flush, list in ranges.
source "$(dirname "$0")/functions.sh"
"$PYTHON" -c "import prometheus_client" 2>/dev/null || skip "needs python3-prometheus-client"

SS=4096
main=$T/main.img spare=$T/spare.img db=$T/set.db mnt=$T/mnt prom=$T/prom/set.prom
# 20 slots: 1 free is spare-low (under a tenth), none exhausted.
make_set "$main" "$spare" "$db" 16M $(( (20 + 1) * SS ))
slots=$(must "$REMAPCTL" status "$db" --json | jq -r .slots.total)
assert_eq "slots" 20 "$slots"

assert_contains "remapctl --version" "remapctl " "$(must "$REMAPCTL" --version)"
assert_contains "remapfs --version" "remapfs " "$(must "$REMAPFS" --version)"

# health_is TARGET BITS LINE_PART: health exits BITS and its line holds LINE_PART.
health_is() {
  local rc
  rc=$(run "$T/health" "$REMAPCTL" health "$1")
  [[ $rc == "$2" ]] || { show_output "$T/health"; fail "health $1: exit $rc, expected $2"; }
  assert_contains "health line" "$3" "$(cat "$T/health.out")"
  assert_eq "one line" 1 "$(wc -l <"$T/health.out")"
}

health_is "$db" 0 "state=ok remapped_sectors=0 pending_sectors=0 slots_free=20 slots_total=20"
assert_contains "offline flush" "nothing to flush" "$(must "$REMAPCTL" flush "$db")"

mkdir -p "$T/prom"
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount.log" "metrics=$prom,metrics_every=1")
f=$mnt/main.img
assert_eq "metrics at the mount" "0 0 1" "$(metric "$prom" remapfs_remapped_sectors remapfs_pending_sectors 'remapfs_state{state=ok}' | xargs)"

# Sectors 8..15 fail on MAIN: remapped (degraded). Sector 100: pending.
must "$REMAPCTL" fault add "$mnt" --sectors 8-15 --op write >/dev/null
must dd if=/dev/urandom of="$f" bs=$SS seek=8 count=8 oflag=direct conv=notrunc,fsync status=none
health_is "$mnt" 4 "state=degraded remapped_sectors=8 pending_sectors=0 slots_free=12"
must "$REMAPCTL" mark-pending "$mnt" 100 >/dev/null
health_is "$mnt" 12 "conditions=degraded,pending"
assert_eq "status --check" 12 "$(run "$T/st" "$REMAPCTL" status "$mnt" --check)"
assert_eq "health --json" 12 "$(run "$T/hj" "$REMAPCTL" health "$mnt" --json)"
assert_eq "its conditions" "12 degraded,pending" "$(jq -r '"\(.exit_status) \(.conditions | join(","))"' "$T/hj.out")"
assert_contains "live flush" "flushed" "$(must "$REMAPCTL" flush "$mnt")"
# status says where the parts are and which daemon serves them.
assert_eq "live status: place" "$main $spare $db $mnt $pid" \
  "$(must "$REMAPCTL" status "$mnt" --json | jq -r '"\(.main) \(.spare) \(.db) \(.mountpoint) \(.pid)"')"
assert_contains "live status: daemon" "pid $pid, mounted at $mnt, up " "$(must "$REMAPCTL" status "$mnt")"
assert_eq "list in ranges" "8-15 8 remapped 0-7|100 1 pending -" \
  "$(must "$REMAPCTL" list "$mnt" | tail -n +2 | awk '{print $1, $2, $3, $4}' | paste -sd'|')"

# The file follows within its interval; remapctl metrics says the same.
remapped_in_file() { [[ $(metric "$prom" remapfs_remapped_sectors) == "$1" ]]; }
wait_until 5 remapped_in_file 8 || fail "the metrics file did not follow: $(metric "$prom" remapfs_remapped_sectors)"
samples=(remapfs_remapped_sectors remapfs_pending_sectors remapfs_remaps_total remapfs_pending_marked_total
         'remapfs_slots{state=free}' 'remapfs_health_condition{condition=pending}' 'remapfs_state{state=degraded}')
assert_eq "the file" "8 1 8 1 12 1 1" "$(metric "$prom" "${samples[@]}" | xargs)"
assert_eq "remapctl metrics" "8 1 8 1 12 1 1" "$(must "$REMAPCTL" metrics "$mnt" | metric - "${samples[@]}" | xargs)"
assert_eq "nothing else in its directory" "set.prom" "$(ls -A "$T/prom")"

# Spare low (under a tenth free), then exhausted.
must "$REMAPCTL" fault add "$mnt" --sectors 200-299 --op write >/dev/null
must dd if=/dev/urandom of="$f" bs=$SS seek=200 count=11 oflag=direct conv=notrunc,fsync status=none
health_is "$mnt" $((4 | 8 | 16)) "slots_free=1"
run "$T/full" dd if=/dev/urandom of="$f" bs=$SS seek=210 count=10 oflag=direct conv=notrunc,fsync status=none >/dev/null
health_is "$mnt" $((4 | 8 | 16 | 32)) "state=spare-exhausted"

# The stop writes the file a last time; a new write shows in it.
must dd if=/dev/urandom of="$f" bs=$SS seek=50 count=1 oflag=direct conv=notrunc,fsync status=none
writes=$(must "$REMAPCTL" status "$mnt" --json | jq -r .counters.writes)
unmount_set "$mnt" "$pid" "$T/mount.log"
assert_file_contains "step 2 names it" "(control channel, scrub, metrics)" "$T/mount.log"
assert_eq "the last file" "$writes" "$(metric "$prom" remapfs_writes_total)"
assert_eq "remapctl metrics offline" "$(metric "$prom" "${samples[@]}" remapfs_writes_total | xargs)" \
  "$(must "$REMAPCTL" metrics "$db" | metric - "${samples[@]}" remapfs_writes_total | xargs)"
health_is "$db" $((4 | 8 | 16 | 32)) "was_clean=true"
assert_eq "offline status: place" "$main $spare $db  0" \
  "$(must "$REMAPCTL" status "$db" --json | jq -r '"\(.main) \(.spare) \(.db) \(.mountpoint) \(.pid)"')"
assert_contains "offline status: daemon" "none (offline" "$(must "$REMAPCTL" status "$db")"

# kill -9: the next look says the stop was not clean.
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount2.log")
kill -9 "$pid"
wait_pid_gone "$pid" 10
umount -l "$mnt"
health_is "$db" $((4 | 8 | 16 | 32 | 128)) "was_clean=false conditions=degraded,pending,spare-low,spare-exhausted,unclean-stop"
