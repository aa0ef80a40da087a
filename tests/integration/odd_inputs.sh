#!/usr/bin/env bash
# odd_inputs: a set whose DB was edited by hand and paths with commas.
# 1. Damaged fault rules (unknown device or op, set with sqlite3) do not
#    brick the set: `check` reports them (exit 1), `fault remove` and `fault
#    clear` work, the mount drops them with a warning.
# 2. The human `status` shows store_error and previous_store_error.
# 3. MAIN, SPARE and DB paths holding commas mount (\, in -o).
# 4. SIGTERMs right after a clean stop (the signal thread must not outlive
#    the daemon's state; a sanitizer build reports it if it does).
source "$(dirname "$0")/functions.sh"
requires sqlite3 --version

SS=4096
main=$T/o.img spare=$T/o.spare db=$T/o.db mnt=$T/mnt
make_set "$main" "$spare" "$db" 16M 2M $SS
damage() {  # damage ID DEVICE OP: a fault_rules row no `fault add` makes
  sqlite3 "$db" "INSERT INTO fault_rules VALUES ($1, '$2', 1, 1, '$3', 0, 1.0, 0, 0)"
}

# --- 1. damaged fault rules, offline ---------------------------------------
must "$REMAPCTL" fault add "$db" --sectors 5 --op write
must "$REMAPCTL" fault add "$db" --sectors 6 --op read
damage 40 disk write
damage 41 main erase
rc=$(run "$T/check" "$REMAPCTL" check "$db")
assert_eq "check with damaged rules: exit" 1 "$rc"
assert_contains "check names the bad device" "fault rule 40 is invalid (device 'disk' is not main or spare)" "$(cat "$T/check.out")"
assert_contains "check names the bad op" "fault rule 41 is invalid (op 'erase' is not read, write or both)" "$(cat "$T/check.out")"
must "$REMAPCTL" fault remove "$db" 1
rules=$(must "$REMAPCTL" fault list "$db" --json)
assert_eq "rules after remove (the damaged ones dropped by its open)" "2" "$(jq -r '[.[].id] | map(tostring) | join(" ")' <<<"$rules")"
must "$REMAPCTL" check "$db"
damage 42 disk erase
must "$REMAPCTL" fault remove "$db" 42
damage 43 spare erase
must "$REMAPCTL" fault clear "$db"
rules=$(must "$REMAPCTL" fault list "$db" --json)
assert_eq "rules after clear" 0 "$(jq -r length <<<"$rules")"
must "$REMAPCTL" check "$db"

# --- 1b. damaged fault rules, at mount --------------------------------------
must "$REMAPCTL" fault add "$db" --sectors 7 --op write
damage 50 disk write
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount1.log")
assert_file_contains "mount log" "fault rule 50 is invalid (device 'disk' is not main or spare); dropped" "$T/mount1.log"
rules=$(must "$REMAPCTL" fault list "$mnt" --json)
assert_eq "live rules" "main 7 write" "$(jq -r '.[] | "\(.device) \(.first) \(.op)"' <<<"$rules")"
must "$REMAPCTL" fault clear "$mnt"
unmount_set "$mnt" "$pid" "$T/mount1.log"
must "$REMAPCTL" check "$db"

# --- 2. errors in the human status ------------------------------------------
# As a stop whose commit failed records it (MetaStore::SetLastError).
sqlite3 "$db" "UPDATE set_info SET last_error = 'commit: disk I/O error (test)', clean = 0"
out=$(must "$REMAPCTL" status "$db")
assert_contains "offline human status" "store_error" "$out"
assert_contains "offline human status" "commit: disk I/O error (test)" "$out"
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount2.log")
out=$(must "$REMAPCTL" status "$mnt")
assert_contains "live human status" "previous_store_error" "$out"
assert_contains "live human status" "commit: disk I/O error (test)" "$out"
unmount_set "$mnt" "$pid" "$T/mount2.log"

# --- 3. commas in paths -------------------------------------------------------
c_main="$T/a,b.img" c_spare="$T/c,d.spare" c_db="$T/e,f.db"
truncate -s 16M "$c_main"
out=$(must "$REMAPCTL" create "$c_main" "$c_spare" --db "$c_db" --spare-size 2M)
assert_contains "create's mount hint escapes commas" "spare=${c_spare//,/\\,},db=${c_db//,/\\,}" "$out"
pid=$(mount_set "$c_main" "${c_spare//,/\\,}" "${c_db//,/\\,}" "$mnt" "$T/mount3.log")
random_file "$T/d" $((4 * SS))
must dd if="$T/d" of="$mnt/a,b.img" bs=$SS seek=3 conv=notrunc,fsync status=none
must "$REMAPCTL" remap "$mnt" 4
st=$(must "$REMAPCTL" status "$c_db" --json)
assert_eq "remapped in the set with commas" 1 "$(jq -r .remapped_sectors <<<"$st")"
assert_eq "data in the set with commas" "$(sha_of "$T/d")" "$(sha_range "$mnt/a,b.img" $((3 * SS)) $((4 * SS)))"

# --- 4. SIGTERM right after a clean stop --------------------------------------
must fusermount3 -u "$mnt"
# As fast as bash goes, until the daemon is gone: some land after its stop.
sent=0
while kill -TERM "$pid" 2>/dev/null; do sent=$((sent + 1)); done
log "sent $sent SIGTERMs during and after the stop"
wait_pid_gone "$pid" 10
wait_unmounted "$mnt" 10
reason=$(sed -n 's/.*shutdown requested: //p' "$T/mount3.log" | head -1)
assert_shutdown_log "$T/mount3.log" "$reason"
must "$REMAPCTL" check "$c_db"
st=$(must "$REMAPCTL" status "$c_db" --json)
assert_eq "was_clean after the stop" true "$(jq -r .was_clean <<<"$st")"
