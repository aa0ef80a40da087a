#!/usr/bin/env bash
# main_identity: MAIN's identity is recorded at create and checked at every
# open. Another image of the same size in MAIN's place (under another name,
# or renamed into MAIN's) is refused with one line and nothing changes; a
# rename of MAIN itself is fine; a clone is taken only after
# `remapctl rebind`; create refuses a MAIN that belongs to a set. The same
# for a loop device as MAIN. Also of create: SPARE's space is reserved (a
# too small host filesystem is refused, leaving no file), --spare-size 0 is
# out of range, and the directory is synced after the DB's rename.
source "$(dirname "$0")/lib.sh"
setup

SS=4096
make_set a 16M 2M $SS
MNT=$T/mnt
SNAP=$T/snapshot

# --- a set with data and a remap ------------------------------------------
mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
random_file "$T/d1" $((32 * SS))
must dd if="$T/d1" of="$EXPOSED" bs=$SS seek=100 conv=notrunc,fsync status=none
must "$REMAPCTL" remap "$MNT" 110
unmount_set "$MNT"
check_data() {
  assert_eq "data through $1" "$(sha_of "$T/d1")" "$(sha_range "$EXPOSED" $((100 * SS)) $((32 * SS)))"
  must "$REMAPCTL" list "$MNT" --json
  assert_eq "table through $1" "110" "$(jqr '[.[].sector] | map(tostring) | join(" ")')"
}

# refused_mount WHAT MAIN NEEDLE: remapfs refuses with one line saying
# NEEDLE, changes no file of the set, mounts nothing.
refused_mount() {
  local what=$1 main=$2 needle=$3
  snapshot_set "$main" "$SPARE" "$DB" >"$SNAP"
  must_fail_one_line timeout 30 "$REMAPFS" "$main" "$MNT" -o "spare=$SPARE,db=$DB"
  assert_contains "$what" "$needle" "$(ERR)"
  assert_unchanged "$SNAP" "$what"
  is_mounted "$MNT" && fail "$what: mounted"
  return 0
}

# --- another file of the same size ----------------------------------------
random_file "$T/other.img" $((16 * 1024 * 1024))
refused_mount "another MAIN of the same size" "$T/other.img" "remapctl rebind $DB --main $T/other.img"
mv "$MAIN" "$T/saved.img"
mv "$T/other.img" "$MAIN"
refused_mount "another file renamed into MAIN's place" "$MAIN" "is not the disk or file"
snapshot_set "$MAIN" "$SPARE" "$DB" >"$SNAP"
must_fail_one_line "$REMAPCTL" remap "$DB" 5
assert_contains "remapctl remap with the wrong MAIN" "is not the disk or file" "$(ERR)"
run "$REMAPCTL" check "$DB"
assert_eq "check with the wrong MAIN: exit" 1 "$RC"
assert_contains "check with the wrong MAIN" "is not the disk or file" "$(OUT)"
assert_unchanged "$SNAP" "remapctl with the wrong MAIN"

# --- MAIN itself, renamed: accepted -----------------------------------------
mv "$T/saved.img" "$T/renamed.img"
mount_set "$T/renamed.img" "$SPARE" "$DB" "$MNT"
check_data "the renamed MAIN"
unmount_set "$MNT"

# --- a clone: refused until rebound -----------------------------------------
cp --sparse=always "$T/renamed.img" "$T/clone.img"
refused_mount "a clone of MAIN" "$T/clone.img" "remapctl rebind"
truncate -s 8M "$T/small.img"
snapshot_set "$T/small.img" "$SPARE" "$DB" >"$SNAP"
must_fail_one_line "$REMAPCTL" rebind "$DB" --main "$T/small.img"
assert_contains "rebind to a MAIN of another size" "bytes but the set was made for" "$(ERR)"
assert_unchanged "$SNAP" "a refused rebind"
must "$REMAPCTL" rebind "$DB" --main "$T/clone.img"
assert_contains "rebind" "now has MAIN $T/clone.img" "$(OUT)"
mount_set "$T/clone.img" "$SPARE" "$DB" "$MNT"
check_data "the clone"
unmount_set "$MNT"
refused_mount "the old MAIN after the rebind" "$T/renamed.img" "is not the disk or file"

# --- create refuses a MAIN that belongs to a set ----------------------------
snapshot_set "$T/clone.img" "$SPARE" "$DB" >"$SNAP"
must_fail_one_line "$REMAPCTL" create "$T/clone.img" "$T/new.spare" --db "$T/new.db" --spare-size 1M
assert_contains "create with a set's MAIN" "already belongs to set" "$(ERR)"
[[ ! -e $T/new.spare && ! -e $T/new.db ]] || fail "a refused create left files"
assert_unchanged "$SNAP" "create with a set's MAIN"

# --- create: SPARE's space, --spare-size 0, the directory synced -----------
truncate -s 1M "$T/c.img"
must_fail_one_line "$REMAPCTL" create "$T/c.img" "$T/c0.spare" --spare-size 0
assert_contains "--spare-size 0" "out of range" "$(ERR)"
[[ ! -e $T/c0.spare && ! -e $T/c0.spare.db ]] || fail "create --spare-size 0 left files"
mkdir "$T/small"
mount -t tmpfs -o size=4M tmpfs "$T/small"
must_fail_one_line "$REMAPCTL" create "$T/c.img" "$T/small/c.spare" --spare-size 64M
assert_contains "create on a too small filesystem" "cannot reserve" "$(ERR)"
assert_eq "files left on the small filesystem" "" "$(ls -A "$T/small")"
must "$REMAPCTL" create "$T/c.img" "$T/small/c.spare" --spare-size 2M
assert_ge "blocks of the spare (reserved, not sparse)" $((2 * 1024 * 1024)) $(( $(stat -c '%b * %B' "$T/small/c.spare") ))
if command -v strace >/dev/null; then
  truncate -s 1M "$T/s.img"
  # LeakSanitizer cannot run under a tracer (an ASan build of remapctl).
  must env ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
    strace -f -y -e trace=rename,renameat,renameat2,fsync -o "$T/strace" "$REMAPCTL" create "$T/s.img" "$T/s.spare" --spare-size 1M
  # After the DB's rename, an fsync of its directory.
  awk -v dir="<$T>)" '/rename.*s\.spare\.db\.creating/ { renamed = 1 } renamed && /fsync\(/ && index($0, dir) { synced = 1 } END { exit !synced }' "$T/strace" ||
    { cat "$T/strace" >&2; fail "create did not fsync $T after renaming the DB"; }
else
  log "no strace: the directory sync is not checked"
fi

# --- a loop device as MAIN ------------------------------------------------
truncate -s 16M "$T/lo.img"
attach_loop "$T/lo.img"
LO=$LOOP_DEV
SPARE=$T/lo.spare DB=$T/lo.db
must "$REMAPCTL" create "$LO" "$SPARE" --db "$DB" --spare-size 2M
assert_contains "identity of a loop device" "MAIN's identity: block loop file ino=" "$(OUT)"
mount_set "$LO" "$SPARE" "$DB" "$MNT"
must dd if="$T/d1" of="$EXPOSED" bs=$SS seek=100 conv=notrunc,fsync status=none
must "$REMAPCTL" remap "$MNT" 110
unmount_set "$MNT"
detach_loop "$LO"
# Another image on a loop device (likely the same /dev/loopN).
truncate -s 16M "$T/lo2.img"
attach_loop "$T/lo2.img"
refused_mount "another loop device image" "$LOOP_DEV" "is not the disk or file"
detach_loop "$LOOP_DEV"
# The set's image again, attached anew (as after a reboot): accepted.
attach_loop "$T/lo.img"
mount_set "$LOOP_DEV" "$SPARE" "$DB" "$MNT"
check_data "the loop device attached again"
unmount_set "$MNT"
