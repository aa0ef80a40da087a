#!/usr/bin/env bash
# control_copy: a DB path means that very DB file. A copy of a live set's DB
# names the live daemon's channel too, but the daemon has not the copy open:
# remapctl reads and changes the copy, never the live set.
source "$(dirname "$0")/lib.sh"
setup

make_set cp 16M 2M
MNT=$T/mnt
mount_set "$MAIN" "$SPARE" "$DB" "$MNT"

# A consistent copy of the live DB (through SQLite: with what its WAL holds,
# the channel's name included); then the live set gets a rule the copy lacks.
COPY=$T/copy.db
python3 -c 'import sqlite3, sys
src = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
dst = sqlite3.connect(sys.argv[2])
src.backup(dst)
dst.close()' "$DB" "$COPY"
chmod 600 "$COPY"
must "$REMAPCTL" fault add "$MNT" --sectors 5 --op read
must "$REMAPCTL" fault list "$COPY" --json
assert_eq "rules seen in the copy" 0 "$(jqr length)"
must "$REMAPCTL" status "$COPY" --json
assert_eq "status of the copy is the copy's (was_clean)" false "$(jqr .was_clean)"

# The copy shares MAIN and SPARE with the live set, which holds them: a change
# is refused, saying why, and touches neither the copy nor the live set.
snapshot_set "$COPY" >"$T/copy.snap"
must_fail_one_line "$REMAPCTL" fault clear "$COPY"
assert_contains "refusal of a change to the copy" "is in use" "$(ERR)"
assert_contains "refusal of a change to the copy" "copy" "$(ERR)"
assert_unchanged "$T/copy.snap" "a refused change of the copy"
must "$REMAPCTL" fault list "$MNT" --json
assert_eq "live rules after the refused change of the copy" "5" "$(jqr 'map(.first) | join(",")')"

# A copy with images of its own (a cloned set) is changed offline; the live
# set is not.
cp --sparse=always "$MAIN" "$T/copy.img"
cp --sparse=always "$SPARE" "$T/copy.spare"
python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("UPDATE set_info SET main_path = ?, spare_path = ?", (sys.argv[2], sys.argv[3]))
c.commit()' "$COPY" "$T/copy.img" "$T/copy.spare"
# A cloned MAIN is another file: the documented move to it.
must "$REMAPCTL" rebind "$COPY" --main "$T/copy.img"
must "$REMAPCTL" fault add "$COPY" --sectors 7 --op write
must "$REMAPCTL" mark-pending "$COPY" 9
must "$REMAPCTL" fault list "$COPY" --json
assert_eq "rules of the copy" "7" "$(jqr 'map(.first) | join(",")')"
must "$REMAPCTL" list "$COPY" --json
assert_eq "table of the copy" "9:pending" "$(jqr 'map("\(.sector):\(.state)") | join(",")')"
must "$REMAPCTL" fault list "$MNT" --json
assert_eq "live rules" "5" "$(jqr 'map(.first) | join(",")')"
must "$REMAPCTL" list "$MNT" --json
assert_eq "live table" 0 "$(jqr length)"

unmount_set "$MNT"
must "$REMAPCTL" fault list "$DB" --json
assert_eq "rules of the live set's DB after the stop" "5" "$(jqr 'map(.first) | join(",")')"
must "$REMAPCTL" list "$DB" --json
assert_eq "table of the live set's DB after the stop" 0 "$(jqr length)"
log "ok"
