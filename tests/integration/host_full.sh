#!/usr/bin/env bash
# host_full: MAIN and a sparse SPARE on a small tmpfs that runs full. A full
# host filesystem is not a bad sector: the writes fail with ENOSPC, no
# sector is remapped or pending, no slot turns bad, and once there is room
# again the same writes succeed (before, one such write marked every slot
# of the spare bad).
source "$(dirname "$0")/lib.sh"
setup

SS=4096
SMALL=$T/small
mkdir -p "$SMALL"
must mount -t tmpfs -o size=8M tmpfs "$SMALL"
FS_MOUNTS+=("$SMALL")
MAIN=$SMALL/main.img
truncate -s 16M "$MAIN"
must "$REMAPCTL" create "$MAIN" "$T/spare.img" --db "$T/set.db" --spare-size 1M
# A spare made sparse after its creation (an old set, or copied without
# care): its slots take space only when written.
SPARE=$SMALL/spare.img
must cp --sparse=always "$T/spare.img" "$SPARE"
DB=$T/set.db
dd if=/dev/zero of="$SMALL/filler" bs=64K status=none 2>/dev/null || true
MNT=$T/mnt
mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
F=$EXPOSED
random_file "$T/data" $((8 * SS))

expect_enospc() {  # what
  run dd if="$T/data" of="$F" bs=$SS seek=100 conv=notrunc,fsync status=none
  (( RC != 0 )) || fail "$1: the write succeeded on a full filesystem"
  assert_contains "$1: dd's error" "No space left on device" "$(ERR)"
  must "$REMAPCTL" status "$MNT" --json
  assert_eq "$1: state" ok "$(jqr .state)"
  assert_eq "$1: remapped" 0 "$(jqr .remapped_sectors)"
  assert_eq "$1: pending" 0 "$(jqr .pending_sectors)"
  assert_eq "$1: bad slots" 0 "$(jqr .slots.bad)"
  assert_eq "$1: free slots" "$(jqr .slots.total)" "$(jqr .slots.free)"
}
# MAIN's own filesystem is full.
expect_enospc "MAIN full"
# MAIN fails there too, and the slots the sectors need cannot be allocated.
must "$REMAPCTL" fault add "$MNT" --sectors 100-107 --op write
expect_enospc "SPARE full"

rm -f "$SMALL/filler"
must dd if="$T/data" of="$F" bs=$SS seek=100 conv=notrunc,fsync status=none
must "$REMAPCTL" status "$MNT" --json
assert_eq "remapped once there is room" 8 "$(jqr .remapped_sectors)"
assert_eq "no bad slot" 0 "$(jqr .slots.bad)"
assert_eq "data" "$(sha_of "$T/data")" "$(sha_range "$F" $((100 * SS)) $((8 * SS)))"
unmount_set "$MNT"
must "$REMAPCTL" check "$DB"
