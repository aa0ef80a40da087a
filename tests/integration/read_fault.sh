#!/usr/bin/env bash
# read_fault: a MAIN read fault makes O_DIRECT reads of those sectors fail
# with EIO (never invented data) and the sectors pending; writing them
# remaps them and reads work again. Then, with the fault removed, unremap
# copies a sector back to MAIN. A set of 512-byte sectors.
source "$(dirname "$0")/functions.sh"

SS=512
main=$T/rf.img spare=$T/rf.spare db=$T/rf.db mnt=$T/mnt f=$T/mnt/rf.img
make_set "$main" "$spare" "$db" 64M 8M $SS
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount1.log")

# sha_sectors FILE FIRST COUNT: sha256 of COUNT sectors from FIRST, O_DIRECT.
sha_sectors() {
  dd if="$1" bs=$SS skip="$2" count="$3" iflag=direct status=none | sha256sum | cut -d' ' -f1
}

FIRST=2000   # sectors 2000-2007 (bytes 1024000-1028095): one 4 KiB page
LAST=2007
random_file "$T/old" $((64 * SS))
must dd if="$T/old" of="$f" bs=$SS seek=$((FIRST - 24)) conv=notrunc,fsync status=none
assert_eq "data before the fault" "$(sha_of "$T/old")" "$(sha_sectors "$f" $((FIRST - 24)) 64)"

out=$(must "$REMAPCTL" fault add "$mnt" --device main --sectors "$FIRST-$LAST" --op read)
assert_contains "fault add" "main $FIRST-$LAST read" "$out"
rule_id=$(sed -n 's/^added fault rule \([0-9]*\):.*/\1/p' <<<"$out")
[[ -n $rule_id ]] || fail "no rule id in: $out"

# Each faulty sector: the read fails with EIO and the sector is pending.
for (( s = FIRST; s <= LAST; s++ )); do
  err=$(must_fail dd if="$f" of="$T/got" bs=$SS skip=$s count=1 iflag=direct)
  assert_contains "dd stderr for sector $s" "Input/output error" "$err"
  [[ ! -s $T/got ]] || fail "read of faulty sector $s returned data"
done
# A wide read over the range fails too; its neighbours read fine.
err=$(must_fail dd if="$f" of=/dev/null bs=4096 skip=$(((FIRST - 24) * SS / 4096)) count=8 iflag=direct)
assert_contains "wide read" "Input/output error" "$err"
assert_eq "sectors before the fault" "$(head -c $((24 * SS)) "$T/old" | sha256sum | cut -d' ' -f1)" \
  "$(sha_sectors "$f" $((FIRST - 24)) 24)"
assert_eq "sectors after the fault" "$(tail -c $((32 * SS)) "$T/old" | sha256sum | cut -d' ' -f1)" \
  "$(sha_sectors "$f" $((LAST + 1)) 32)"

list=$(must "$REMAPCTL" list "$mnt" --json)
assert_eq "pending sectors" "$(seq -s' ' $FIRST $LAST)" \
  "$(jq -r '[.[] | select(.state == "pending") | .sector] | map(tostring) | join(" ")' <<<"$list")"
assert_eq "entries" 8 "$(jq -r length <<<"$list")"
assert_eq "pending have no slot" null "$(jq -r '[.[].slot] | unique | .[0]' <<<"$list")"
st=$(must "$REMAPCTL" status "$mnt" --json)
assert_eq "status pending_sectors" 8 "$(jq -r .pending_sectors <<<"$st")"
assert_ge "read EIOs answered" 8 "$(jq -r .counters.read_eio <<<"$st")"
assert_ge "MAIN read errors (with retries)" 8 "$(jq -r .counters.main_read_errors <<<"$st")"
assert_file_contains "daemon log" "sector $FIRST" "$T/mount1.log"
events=$(must "$REMAPCTL" events "$db" --json --limit 1000)
assert_eq "pending events" 8 "$(jq '[.[] | select(.kind == "pending")] | length' <<<"$events")"

# Writing the pending sectors succeeds and remaps them.
random_file "$T/new" $((8 * SS))
must dd if="$T/new" of="$f" bs=$SS seek=$FIRST conv=notrunc,fsync status=none
list=$(must "$REMAPCTL" list "$mnt" --json)
assert_eq "remapped sectors" "$(seq -s' ' $FIRST $LAST)" \
  "$(jq -r '[.[] | select(.state == "remapped") | .sector] | map(tostring) | join(" ")' <<<"$list")"
assert_eq "entries after the write" 8 "$(jq -r length <<<"$list")"
assert_eq "distinct slots" 8 "$(jq -r '[.[].slot] | unique | length' <<<"$list")"
assert_eq "new data (O_DIRECT, per sector)" "$(sha_of "$T/new")" \
  "$(for (( s = FIRST; s <= LAST; s++ )); do dd if="$f" bs=$SS skip=$s count=1 iflag=direct status=none; done | sha256sum | cut -d' ' -f1)"
all_sha=$( (head -c $((24 * SS)) "$T/old"; cat "$T/new"; tail -c $((32 * SS)) "$T/old") | sha256sum | cut -d' ' -f1)
assert_eq "new data (one wide read)" "$all_sha" \
  "$(dd if="$f" bs=4096 skip=$(((FIRST - 24) * SS / 4096)) count=8 iflag=direct status=none | sha256sum | cut -d' ' -f1)"
st=$(must "$REMAPCTL" status "$mnt" --json)
assert_eq "pending after the write" 0 "$(jq -r .pending_sectors <<<"$st")"
assert_eq "remapped after the write" 8 "$(jq -r .remapped_sectors <<<"$st")"

# The disk was "repaired": remove the rule, unremap one sector; its data is
# copied back to MAIN and it leaves the table.
must "$REMAPCTL" fault remove "$mnt" "$rule_id"
rules=$(must "$REMAPCTL" fault list "$mnt" --json)
assert_eq "rules after remove" 0 "$(jq -r length <<<"$rules")"
must "$REMAPCTL" unremap "$mnt" $FIRST
list=$(must "$REMAPCTL" list "$mnt" --json)
assert_eq "after unremap" "$(seq -s' ' $((FIRST + 1)) $LAST)" "$(jq -r '[.[].sector] | map(tostring) | join(" ")' <<<"$list")"
assert_eq "unremapped sector on MAIN" "$(head -c $SS "$T/new" | sha256sum | cut -d' ' -f1)" \
  "$(dd if="$main" bs=$SS skip=$FIRST count=1 status=none | sha256sum | cut -d' ' -f1)"
assert_eq "unremapped sector through the mount" "$(head -c $SS "$T/new" | sha256sum | cut -d' ' -f1)" \
  "$(sha_sectors "$f" $FIRST 1)"

unmount_set "$mnt" "$pid" "$T/mount1.log"
must "$REMAPCTL" check "$db"
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount2.log")
assert_eq "all data after remount" "$all_sha" "$(sha_sectors "$f" $((FIRST - 24)) 64)"
list=$(must "$REMAPCTL" list "$mnt" --json)
assert_eq "table after remount" 7 "$(jq -r length <<<"$list")"
unmount_set "$mnt" "$pid" "$T/mount2.log"
