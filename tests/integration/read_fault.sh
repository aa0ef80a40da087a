#!/usr/bin/env bash
# read_fault: a MAIN read fault makes O_DIRECT reads of those sectors fail
# with EIO (never invented data) and the sectors pending; writing them
# remaps them and reads work again. Then, with the fault removed, unremap
# copies a sector back to MAIN. A set of 512-byte sectors.
source "$(dirname "$0")/lib.sh"
setup

SS=512
make_set rf 64M 8M $SS
MNT=$T/mnt
mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
F=$EXPOSED

FIRST=2000   # sectors 2000-2007 (bytes 1024000-1028095): one 4 KiB page
LAST=2007
random_file "$T/old" $((64 * SS))
must dd if="$T/old" of="$F" bs=$SS seek=$((FIRST - 24)) conv=notrunc,fsync status=none
assert_eq "data before the fault" "$(sha_of "$T/old")" \
  "$(dd if="$F" bs=$SS skip=$((FIRST - 24)) count=64 iflag=direct status=none | sha256sum | cut -d' ' -f1)"

must "$REMAPCTL" fault add "$MNT" --device main --sectors "$FIRST-$LAST" --op read
assert_contains "fault add" "main $FIRST-$LAST read" "$(OUT)"
RULE_ID=$(OUT | sed -n 's/^added fault rule \([0-9]*\):.*/\1/p')
[[ -n $RULE_ID ]] || fail "no rule id in: $(OUT)"

# Each faulty sector: the read fails with EIO and the sector is pending.
for (( s = FIRST; s <= LAST; s++ )); do
  run dd if="$F" of="$T/got" bs=$SS skip=$s count=1 iflag=direct
  (( RC != 0 )) || fail "read of faulty sector $s succeeded"
  assert_contains "dd stderr for sector $s" "Input/output error" "$(ERR)"
  [[ ! -s $T/got ]] || fail "read of faulty sector $s returned data"
done
# A wide read over the range fails too; its neighbours read fine.
run dd if="$F" of=/dev/null bs=4096 skip=$(((FIRST - 24) * SS / 4096)) count=8 iflag=direct
(( RC != 0 )) || fail "a read spanning the faulty sectors succeeded"
assert_contains "wide read" "Input/output error" "$(ERR)"
assert_eq "sectors before the fault" "$(head -c $((24 * SS)) "$T/old" | sha256sum | cut -d' ' -f1)" \
  "$(dd if="$F" bs=$SS skip=$((FIRST - 24)) count=24 iflag=direct status=none | sha256sum | cut -d' ' -f1)"
assert_eq "sectors after the fault" "$(tail -c $((32 * SS)) "$T/old" | sha256sum | cut -d' ' -f1)" \
  "$(dd if="$F" bs=$SS skip=$((LAST + 1)) count=32 iflag=direct status=none | sha256sum | cut -d' ' -f1)"

must "$REMAPCTL" list "$MNT" --json
assert_eq "pending sectors" "$(seq -s' ' $FIRST $LAST)" "$(jqr '[.[] | select(.state == "pending") | .sector] | map(tostring) | join(" ")')"
assert_eq "entries" 8 "$(jqr length)"
assert_eq "pending have no slot" null "$(jqr '[.[].slot] | unique | .[0]')"
must "$REMAPCTL" status "$MNT" --json
assert_eq "status pending_sectors" 8 "$(jqr .pending_sectors)"
assert_ge "read EIOs answered" 8 "$(jqr .counters.read_eio)"
assert_ge "MAIN read errors (with retries)" 8 "$(jqr .counters.main_read_errors)"
assert_file_contains "daemon log" "sector $FIRST" "$LOG"
assert_eq "pending events" 8 "$("$REMAPCTL" events "$DB" --json --limit 1000 | jq '[.[] | select(.kind == "pending")] | length')"

# Writing the pending sectors succeeds and remaps them.
random_file "$T/new" $((8 * SS))
must dd if="$T/new" of="$F" bs=$SS seek=$FIRST conv=notrunc,fsync status=none
must "$REMAPCTL" list "$MNT" --json
assert_eq "remapped sectors" "$(seq -s' ' $FIRST $LAST)" "$(jqr '[.[] | select(.state == "remapped") | .sector] | map(tostring) | join(" ")')"
assert_eq "entries after the write" 8 "$(jqr length)"
assert_eq "distinct slots" 8 "$(jqr '[.[].slot] | unique | length')"
assert_eq "new data (O_DIRECT, per sector)" "$(sha_of "$T/new")" \
  "$(for (( s = FIRST; s <= LAST; s++ )); do dd if="$F" bs=$SS skip=$s count=1 iflag=direct status=none; done | sha256sum | cut -d' ' -f1)"
assert_eq "new data (one wide read)" "$( (head -c $((24 * SS)) "$T/old"; cat "$T/new"; tail -c $((32 * SS)) "$T/old") | sha256sum | cut -d' ' -f1)" \
  "$(dd if="$F" bs=4096 skip=$(((FIRST - 24) * SS / 4096)) count=8 iflag=direct status=none | sha256sum | cut -d' ' -f1)"
must "$REMAPCTL" status "$MNT" --json
assert_eq "pending after the write" 0 "$(jqr .pending_sectors)"
assert_eq "remapped after the write" 8 "$(jqr .remapped_sectors)"

# The disk was "repaired": remove the rule, unremap one sector; its data is
# copied back to MAIN and it leaves the table.
must "$REMAPCTL" fault remove "$MNT" "$RULE_ID"
must "$REMAPCTL" fault list "$MNT" --json
assert_eq "rules after remove" 0 "$(jqr length)"
must "$REMAPCTL" unremap "$MNT" $FIRST
must "$REMAPCTL" list "$MNT" --json
assert_eq "after unremap" "$(seq -s' ' $((FIRST + 1)) $LAST)" "$(jqr '[.[].sector] | map(tostring) | join(" ")')"
assert_eq "unremapped sector on MAIN" "$(head -c $SS "$T/new" | sha256sum | cut -d' ' -f1)" \
  "$(dd if="$MAIN" bs=$SS skip=$FIRST count=1 status=none | sha256sum | cut -d' ' -f1)"
assert_eq "unremapped sector through the mount" "$(head -c $SS "$T/new" | sha256sum | cut -d' ' -f1)" \
  "$(dd if="$F" bs=$SS skip=$FIRST count=1 iflag=direct status=none | sha256sum | cut -d' ' -f1)"

unmount_set "$MNT"
must "$REMAPCTL" check "$DB"
mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
assert_eq "all data after remount" "$( (head -c $((24 * SS)) "$T/old"; cat "$T/new"; tail -c $((32 * SS)) "$T/old") | sha256sum | cut -d' ' -f1)" \
  "$(dd if="$EXPOSED" bs=$SS skip=$((FIRST - 24)) count=64 iflag=direct status=none | sha256sum | cut -d' ' -f1)"
must "$REMAPCTL" list "$MNT" --json
assert_eq "table after remount" 7 "$(jqr length)"
unmount_set "$MNT"
