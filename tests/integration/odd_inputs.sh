#!/usr/bin/env bash
# odd_inputs: a set whose DB was edited by hand and paths with commas.
# 1. Damaged fault rules (unknown device or op, set with sqlite3) do not
#    brick the set: `check` reports them (exit 1), `fault remove` and `fault
#    clear` work, the mount drops them with a warning.
# 2. The human `status` shows store_error and previous_store_error.
# 3. MAIN, SPARE and DB paths holding commas mount (\, in -o).
# 4. SIGTERMs right after a clean stop (the signal thread must not outlive
#    the daemon's state; a sanitizer build reports it if it does).
source "$(dirname "$0")/lib.sh"
setup
command -v sqlite3 >/dev/null || skip "needs sqlite3"

SS=4096
make_set o 16M 2M $SS
MNT=$T/mnt
damage() {  # damage ID DEVICE OP: a fault_rules row no `fault add` makes
  sqlite3 "$DB" "INSERT INTO fault_rules VALUES ($1, '$2', 1, 1, '$3', 0, 1.0, 0, 0)"
}

# --- 1. damaged fault rules, offline ---------------------------------------
must "$REMAPCTL" fault add "$DB" --sectors 5 --op write
must "$REMAPCTL" fault add "$DB" --sectors 6 --op read
damage 40 disk write
damage 41 main erase
run "$REMAPCTL" check "$DB"
assert_eq "check with damaged rules: exit" 1 "$RC"
assert_contains "check names the bad device" "fault rule 40 is invalid (device 'disk' is not main or spare)" "$(OUT)"
assert_contains "check names the bad op" "fault rule 41 is invalid (op 'erase' is not read, write or both)" "$(OUT)"
must "$REMAPCTL" fault remove "$DB" 1
must "$REMAPCTL" fault list "$DB" --json
assert_eq "rules after remove (the damaged ones dropped by its open)" "2" "$(jqr '[.[].id] | map(tostring) | join(" ")')"
must "$REMAPCTL" check "$DB"
damage 42 disk erase
must "$REMAPCTL" fault remove "$DB" 42
damage 43 spare erase
must "$REMAPCTL" fault clear "$DB"
must "$REMAPCTL" fault list "$DB" --json
assert_eq "rules after clear" 0 "$(jqr length)"
must "$REMAPCTL" check "$DB"

# --- 1b. damaged fault rules, at mount --------------------------------------
must "$REMAPCTL" fault add "$DB" --sectors 7 --op write
damage 50 disk write
mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
assert_file_contains "mount log" "fault rule 50 is invalid (device 'disk' is not main or spare); dropped" "$LOG"
must "$REMAPCTL" fault list "$MNT" --json
assert_eq "live rules" "main 7 write" "$(jqr '.[] | "\(.device) \(.first) \(.op)"')"
must "$REMAPCTL" fault clear "$MNT"
unmount_set "$MNT"
must "$REMAPCTL" check "$DB"

# --- 2. errors in the human status ------------------------------------------
# As a stop whose commit failed records it (MetaStore::SetLastError).
sqlite3 "$DB" "UPDATE set_info SET last_error = 'commit: disk I/O error (test)', clean = 0"
must "$REMAPCTL" status "$DB"
assert_contains "offline human status" "store_error" "$(OUT)"
assert_contains "offline human status" "commit: disk I/O error (test)" "$(OUT)"
mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
must "$REMAPCTL" status "$MNT"
assert_contains "live human status" "previous_store_error" "$(OUT)"
assert_contains "live human status" "commit: disk I/O error (test)" "$(OUT)"
unmount_set "$MNT"

# --- 3. commas in paths -------------------------------------------------------
C_MAIN="$T/a,b.img" C_SPARE="$T/c,d.spare" C_DB="$T/e,f.db"
truncate -s 16M "$C_MAIN"
must "$REMAPCTL" create "$C_MAIN" "$C_SPARE" --db "$C_DB" --spare-size 2M
assert_contains "create's mount hint escapes commas" "spare=${C_SPARE//,/\\,},db=${C_DB//,/\\,}" "$(OUT)"
mount_set "$C_MAIN" "${C_SPARE//,/\\,}" "${C_DB//,/\\,}" "$MNT"
random_file "$T/d" $((4 * SS))
must dd if="$T/d" of="$EXPOSED" bs=$SS seek=3 conv=notrunc,fsync status=none
must "$REMAPCTL" remap "$MNT" 4
must "$REMAPCTL" status "$C_DB" --json
assert_eq "remapped in the set with commas" 1 "$(jqr .remapped_sectors)"
assert_eq "data in the set with commas" "$(sha_of "$T/d")" "$(sha_range "$EXPOSED" $((3 * SS)) $((4 * SS)))"

# --- 4. SIGTERM right after a clean stop --------------------------------------
PID=$DAEMON_PID
must fusermount3 -u "$MNT"
# As fast as bash goes, until the daemon is gone: some land after its stop.
sent=0
while kill -TERM "$PID" 2>/dev/null; do sent=$((sent + 1)); done
log "sent $sent SIGTERMs during and after the stop"
wait_pid_gone "$PID" 10
wait_unmounted "$MNT" 10
reason=$(sed -n 's/.*shutdown requested: //p' "$LOG" | head -1)
assert_shutdown_log "$LOG" "$reason"
must "$REMAPCTL" check "$C_DB"
must "$REMAPCTL" status "$C_DB" --json
assert_eq "was_clean after the stop" true "$(jqr .was_clean)"
