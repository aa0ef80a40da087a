#!/usr/bin/env bash
# control_copy: a DB path means that very DB file. A copy of a live set's DB
# names the live daemon's channel too, but the daemon has not the copy open:
# remapctl reads and changes the copy, never the live set.
source "$(dirname "$0")/functions.sh"
requires sqlite3 -version

main=$T/cp.img spare=$T/cp.spare db=$T/cp.db mnt=$T/mnt logf=$T/mount.log
make_set "$main" "$spare" "$db" 16M 2M
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$logf")

# rule_firsts TARGET: the first sectors of TARGET's fault rules, "A,B".
rule_firsts() { must "$REMAPCTL" fault list "$1" --json | jq -r 'map(.first) | join(",")'; }

# A consistent copy of the live DB (through SQLite: with what its WAL holds,
# the channel's name included); then the live set gets a rule the copy lacks.
copy=$T/copy.db
must sqlite3 -readonly "$db" ".backup '$copy'" >/dev/null
chmod 600 "$copy"
must "$REMAPCTL" fault add "$mnt" --sectors 5 --op read >/dev/null
assert_eq "rules seen in the copy" 0 "$(must "$REMAPCTL" fault list "$copy" --json | jq length)"
assert_eq "status of the copy is the copy's (was_clean)" false \
  "$(must "$REMAPCTL" status "$copy" --json | jq -r .was_clean)"

# The copy shares MAIN and SPARE with the live set, which holds them: a change
# is refused, saying why, and touches neither the copy nor the live set.
snapshot_set "$copy" >"$T/copy.snap"
err=$(must_fail_one_line "$REMAPCTL" fault clear "$copy")
assert_contains "refusal of a change to the copy" "is in use" "$err"
assert_contains "refusal of a change to the copy" "copy" "$err"
assert_unchanged "$T/copy.snap" "a refused change of the copy"
assert_eq "live rules after the refused change of the copy" 5 "$(rule_firsts "$mnt")"

# A copy with images of its own (a cloned set) is changed offline; the live
# set is not.
cp --sparse=always "$main" "$T/copy.img"
cp --sparse=always "$spare" "$T/copy.spare"
must sqlite3 "$copy" "UPDATE set_info SET main_path = '$T/copy.img', spare_path = '$T/copy.spare'" >/dev/null
# A cloned MAIN is another file: the documented move to it.
must "$REMAPCTL" rebind "$copy" --main "$T/copy.img" >/dev/null
must "$REMAPCTL" fault add "$copy" --sectors 7 --op write >/dev/null
must "$REMAPCTL" mark-pending "$copy" 9 >/dev/null
assert_eq "rules of the copy" 7 "$(rule_firsts "$copy")"
assert_eq "table of the copy" "9:pending" \
  "$(must "$REMAPCTL" list "$copy" --json | jq -r 'map("\(.sector):\(.state)") | join(",")')"
assert_eq "live rules" 5 "$(rule_firsts "$mnt")"
assert_eq "live table" 0 "$(must "$REMAPCTL" list "$mnt" --json | jq length)"

unmount_set "$mnt" "$pid" "$logf"
assert_eq "rules of the live set's DB after the stop" 5 "$(rule_firsts "$db")"
assert_eq "table of the live set's DB after the stop" 0 "$(must "$REMAPCTL" list "$db" --json | jq length)"
