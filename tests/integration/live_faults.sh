#!/usr/bin/env bash
# live_faults: a MAIN write fault added live through the control socket makes
# the written sectors remap to SPARE while the write succeeds; the data reads
# back through the mount, the table is durable across unmount and remount,
# and `remapctl check` passes.
source "$(dirname "$0")/functions.sh"

SS=4096
main=$T/lf.img spare=$T/lf.spare db=$T/lf.db mnt=$T/mnt f=$T/mnt/lf.img
make_set "$main" "$spare" "$db" 64M 16M $SS
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount1.log")

out=$(must "$REMAPCTL" fault add "$mnt" --device main --sectors 100-163 --op write)
assert_contains "fault add output" "added fault rule" "$out"
rules=$(must "$REMAPCTL" fault list "$mnt" --json)
assert_eq "rules" 1 "$(jq -r length <<<"$rules")"
assert_eq "rule" "main 100 64 write 0" "$(jq -r '.[0] | "\(.device) \(.first) \(.count) \(.op) \(.times)"' <<<"$rules")"
rule_id=$(jq -r '.[0].id' <<<"$rules")

# A write spanning the faulty range and a margin on each side.
random_file "$T/data" $((80 * SS))
must dd if="$T/data" of="$f" bs=$SS seek=92 conv=notrunc,fsync status=none

list=$(must "$REMAPCTL" list "$mnt" --json)
assert_eq "remapped sectors (live)" "$(seq -s' ' 100 163)" \
  "$(jq -r '[.[] | select(.state == "remapped") | .sector] | map(tostring) | join(" ")' <<<"$list")"
assert_eq "entries (live)" 64 "$(jq -r length <<<"$list")"
assert_eq "distinct slots (live)" 64 "$(jq -r '[.[].slot] | unique | length' <<<"$list")"
jq -r '.[] | "\(.sector) \(.slot)"' <<<"$list" >"$T/mapping.live"
assert_eq "data through the mount (O_DIRECT)" "$(sha_of "$T/data")" "$(sha_range "$f" $((92 * SS)) $((80 * SS)))"

st=$(must "$REMAPCTL" status "$mnt" --json)
assert_eq "status remapped_sectors" 64 "$(jq -r .remapped_sectors <<<"$st")"
assert_eq "status slots used" 64 "$(jq -r .slots.used <<<"$st")"
assert_ge "main write errors seen" 1 "$(jq -r .counters.main_write_errors <<<"$st")"
assert_eq "write EIO answered" 0 "$(jq -r .counters.write_eio <<<"$st")"
assert_file_contains "daemon log" "fault rule $rule_id added: main 100-163 write" "$T/mount1.log"
assert_file_contains "daemon log" "sector 100 remapped to slot" "$T/mount1.log"

# The sectors under the rule never reached MAIN; those around it did.
assert_eq "MAIN under the rule is untouched (zeros)" "$(head -c $((64 * SS)) /dev/zero | sha256sum | cut -d' ' -f1)" \
  "$(sha_range "$main" $((100 * SS)) $((64 * SS)) buffered)"
assert_eq "MAIN before the rule" "$(head -c $((8 * SS)) "$T/data" | sha256sum | cut -d' ' -f1)" \
  "$(sha_range "$main" $((92 * SS)) $((8 * SS)) buffered)"

unmount_set "$mnt" "$pid" "$T/mount1.log"
# The first 10 remaps are logged one by one, the other 54 in one summary,
# which the stop logs at the latest.
assert_file_contains "daemon log" "sector 109 remapped to slot" "$T/mount1.log"
assert_file_contains "daemon log" "54 more sectors remapped in" "$T/mount1.log"

list=$(must "$REMAPCTL" list "$db" --json)
jq -r '.[] | "\(.sector) \(.slot)"' <<<"$list" >"$T/mapping.db"
diff -u "$T/mapping.live" "$T/mapping.db" >&2 || fail "the table in the DB differs from the live one"
assert_eq "states in the DB" remapped "$(jq -r '[.[].state] | unique | join(",")' <<<"$list")"
list=$(must "$REMAPCTL" list "$db" --sectors 150-155 --json)
assert_eq "list --sectors 150-155" "150 151 152 153 154 155" "$(jq -r '[.[].sector] | map(tostring) | join(" ")' <<<"$list")"
rules=$(must "$REMAPCTL" fault list "$db" --json)
assert_eq "rule persisted in the DB" "$rule_id main 100 64 write" \
  "$(jq -r '.[0] | "\(.id) \(.device) \(.first) \(.count) \(.op)"' <<<"$rules")"
events=$(must "$REMAPCTL" events "$db" --json --limit 1000)
assert_eq "remap events" 64 "$(jq -r '[.[] | select(.kind == "remapped")] | length' <<<"$events")"
out=$(must "$REMAPCTL" check "$db")
assert_contains "check" "ok:" "$out"
out=$(must "$REMAPCTL" check "$db" --json)
assert_eq "check --json ok" true "$(jq -r .ok <<<"$out")"

# The slots hold the data: SPARE's slot for sector 100 is the data's 9th block.
read -r _ slot100 <"$T/mapping.db"
assert_eq "SPARE slot of sector 100" "$(dd if="$T/data" bs=$SS skip=8 count=1 status=none | sha256sum | cut -d' ' -f1)" \
  "$(dd if="$spare" bs=$SS skip=$((1 + slot100)) count=1 status=none | sha256sum | cut -d' ' -f1)"

pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount2.log")
assert_eq "data after remount" "$(sha_of "$T/data")" "$(sha_range "$f" $((92 * SS)) $((80 * SS)))"
st=$(must "$REMAPCTL" status "$mnt" --json)
assert_eq "remapped after remount" 64 "$(jq -r .remapped_sectors <<<"$st")"
assert_eq "was_clean after remount" true "$(jq -r .was_clean <<<"$st")"
# Overwrite a remapped sector: goes to its slot, the table does not grow.
random_file "$T/one" $SS
must dd if="$T/one" of="$f" bs=$SS seek=120 conv=notrunc,fsync status=none
assert_eq "overwritten remapped sector" "$(sha_of "$T/one")" "$(sha_range "$f" $((120 * SS)) $SS)"
st=$(must "$REMAPCTL" status "$mnt" --json)
assert_eq "remapped after overwrite" 64 "$(jq -r .remapped_sectors <<<"$st")"
unmount_set "$mnt" "$pid" "$T/mount2.log"
must "$REMAPCTL" check "$db"
