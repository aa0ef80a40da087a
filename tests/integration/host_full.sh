#!/usr/bin/env bash
# host_full: MAIN and a sparse SPARE on a small tmpfs that runs full. A full
# host filesystem is not a bad sector: the writes fail with ENOSPC, no
# sector is remapped or pending, no slot turns bad, and once there is room
# again the same writes succeed (before, one such write marked every slot
# of the spare bad).
source "$(dirname "$0")/functions.sh"

SS=4096
small=$T/small
mount_fs tmpfs "$small" -t tmpfs -o size=8M
main=$small/main.img spare=$small/spare.img db=$T/set.db mnt=$T/mnt logf=$T/mount.log
make_set "$main" "$T/spare.img" "$db" 16M 1M
# A spare made sparse after its creation (an old set, or copied without
# care): its slots take space only when written.
must cp --sparse=always "$T/spare.img" "$spare" >/dev/null
dd if=/dev/zero of="$small/filler" bs=64K status=none 2>/dev/null || true
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$logf")
f=$mnt/main.img
random_file "$T/data" $((8 * SS))

# expect_enospc WHAT: the write of the data fails with ENOSPC and leaves the
# set's state as it was: nothing remapped, pending or bad.
expect_enospc() {
  local rc st
  rc=$(run "$T/dd" dd if="$T/data" of="$f" bs=$SS seek=100 conv=notrunc,fsync status=none)
  (( rc != 0 )) || fail "$1: the write succeeded on a full filesystem"
  assert_contains "$1: dd's error" "No space left on device" "$(cat "$T/dd.err")"
  st=$(must "$REMAPCTL" status "$mnt" --json)
  assert_eq "$1: state" ok "$(jq -r .state <<<"$st")"
  assert_eq "$1: remapped" 0 "$(jq -r .remapped_sectors <<<"$st")"
  assert_eq "$1: pending" 0 "$(jq -r .pending_sectors <<<"$st")"
  assert_eq "$1: bad slots" 0 "$(jq -r .slots.bad <<<"$st")"
  assert_eq "$1: free slots" "$(jq -r .slots.total <<<"$st")" "$(jq -r .slots.free <<<"$st")"
}
# MAIN's own filesystem is full.
expect_enospc "MAIN full"
# MAIN fails there too, and the slots the sectors need cannot be allocated.
must "$REMAPCTL" fault add "$mnt" --sectors 100-107 --op write >/dev/null
expect_enospc "SPARE full"

rm -f "$small/filler"
must dd if="$T/data" of="$f" bs=$SS seek=100 conv=notrunc,fsync status=none
st=$(must "$REMAPCTL" status "$mnt" --json)
assert_eq "remapped once there is room" 8 "$(jq -r .remapped_sectors <<<"$st")"
assert_eq "no bad slot" 0 "$(jq -r .slots.bad <<<"$st")"
assert_eq "data" "$(sha_of "$T/data")" "$(sha_range "$f" $((100 * SS)) $((8 * SS)))"
unmount_set "$mnt" "$pid" "$logf"
must "$REMAPCTL" check "$db" >/dev/null
