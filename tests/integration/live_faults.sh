#!/usr/bin/env bash
# live_faults: a MAIN write fault added live through the control socket makes
# the written sectors remap to SPARE while the write succeeds; the data reads
# back through the mount, the table is durable across unmount and remount,
# and `remapctl check` passes.
source "$(dirname "$0")/lib.sh"
setup

SS=4096
make_set lf 64M 16M $SS
MNT=$T/mnt
mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
F=$EXPOSED

must "$REMAPCTL" fault add "$MNT" --device main --sectors 100-163 --op write
assert_contains "fault add output" "added fault rule" "$(OUT)"
must "$REMAPCTL" fault list "$MNT" --json
assert_eq "rules" 1 "$(jqr length)"
assert_eq "rule" "main 100 64 write 0" "$(jqr '.[0] | "\(.device) \(.first) \(.count) \(.op) \(.times)"')"
RULE_ID=$(jqr '.[0].id')

# A write spanning the faulty range and a margin on each side.
random_file "$T/data" $((80 * SS))
must dd if="$T/data" of="$F" bs=$SS seek=92 conv=notrunc,fsync status=none

must "$REMAPCTL" list "$MNT" --json
assert_eq "remapped sectors (live)" "$(seq -s' ' 100 163)" "$(jqr '[.[] | select(.state == "remapped") | .sector] | map(tostring) | join(" ")')"
assert_eq "entries (live)" 64 "$(jqr length)"
assert_eq "distinct slots (live)" 64 "$(jqr '[.[].slot] | unique | length')"
jqr '.[] | "\(.sector) \(.slot)"' >"$T/mapping.live"
assert_eq "data through the mount (O_DIRECT)" "$(sha_of "$T/data")" "$(sha_range "$F" $((92 * SS)) $((80 * SS)))"

must "$REMAPCTL" status "$MNT" --json
assert_eq "status remapped_sectors" 64 "$(jqr .remapped_sectors)"
assert_eq "status slots used" 64 "$(jqr .slots.used)"
assert_ge "main write errors seen" 1 "$(jqr .counters.main_write_errors)"
assert_eq "write EIO answered" 0 "$(jqr .counters.write_eio)"
assert_file_contains "daemon log" "fault rule $RULE_ID added: main 100-163 write" "$LOG"
assert_file_contains "daemon log" "sector 100 remapped to slot" "$LOG"
assert_file_contains "daemon log" "sector 163 remapped to slot" "$LOG"

# The sectors under the rule never reached MAIN; those around it did.
assert_eq "MAIN under the rule is untouched (zeros)" "$(head -c $((64 * SS)) /dev/zero | sha256sum | cut -d' ' -f1)" \
  "$(DIRECT=0 sha_range "$MAIN" $((100 * SS)) $((64 * SS)))"
assert_eq "MAIN before the rule" "$(head -c $((8 * SS)) "$T/data" | sha256sum | cut -d' ' -f1)" \
  "$(DIRECT=0 sha_range "$MAIN" $((92 * SS)) $((8 * SS)))"

unmount_set "$MNT"

must "$REMAPCTL" list "$DB" --json
jqr '.[] | "\(.sector) \(.slot)"' >"$T/mapping.db"
diff -u "$T/mapping.live" "$T/mapping.db" >&2 || fail "the table in the DB differs from the live one"
assert_eq "states in the DB" remapped "$(jqr '[.[].state] | unique | join(",")')"
must "$REMAPCTL" list "$DB" --sectors 150-155 --json
assert_eq "list --sectors 150-155" "150 151 152 153 154 155" "$(jqr '[.[].sector] | map(tostring) | join(" ")')"
must "$REMAPCTL" fault list "$DB" --json
assert_eq "rule persisted in the DB" "$RULE_ID main 100 64 write" "$(jqr '.[0] | "\(.id) \(.device) \(.first) \(.count) \(.op)"')"
must "$REMAPCTL" events "$DB" --json --limit 1000
assert_eq "remap events" 64 "$(jqr '[.[] | select(.kind == "remapped")] | length')"
must "$REMAPCTL" check "$DB"
assert_contains "check" "ok:" "$(OUT)"
must "$REMAPCTL" check "$DB" --json
assert_eq "check --json ok" true "$(jqr .ok)"

# The slots hold the data: SPARE's slot for sector 100 is the data's 9th block.
read -r _ SLOT100 <"$T/mapping.db"
assert_eq "SPARE slot of sector 100" "$(dd if="$T/data" bs=$SS skip=8 count=1 status=none | sha256sum | cut -d' ' -f1)" \
  "$(dd if="$SPARE" bs=$SS skip=$((1 + SLOT100)) count=1 status=none | sha256sum | cut -d' ' -f1)"

mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
assert_eq "data after remount" "$(sha_of "$T/data")" "$(sha_range "$EXPOSED" $((92 * SS)) $((80 * SS)))"
must "$REMAPCTL" status "$MNT" --json
assert_eq "remapped after remount" 64 "$(jqr .remapped_sectors)"
assert_eq "was_clean after remount" true "$(jqr .was_clean)"
# Overwrite a remapped sector: goes to its slot, the table does not grow.
random_file "$T/one" $SS
must dd if="$T/one" of="$EXPOSED" bs=$SS seek=120 conv=notrunc,fsync status=none
assert_eq "overwritten remapped sector" "$(sha_of "$T/one")" "$(sha_range "$EXPOSED" $((120 * SS)) $SS)"
must "$REMAPCTL" status "$MNT" --json
assert_eq "remapped after overwrite" 64 "$(jqr .remapped_sectors)"
unmount_set "$MNT"
must "$REMAPCTL" check "$DB"
