#!/usr/bin/env bash
# direct_errors: MAIN is a real disk that fails on demand (nbdkit's error
# filter, nbdfuse, a loop device), so the daemon opens it O_DIRECT and its
# requests reach it asynchronously (io_uring). What the disk fails is done
# again the synchronous way, with its consequences: a failed write is
# remapped and succeeds, a failed read answers EIO and makes its sector
# pending, a remapped range is served from SPARE while MAIN fails, and
# every acknowledged byte reads back once the disk heals.
source "$(dirname "$0")/functions.sh"

SS=4096
failing_disk "$T/disk" 16M   # $DISK; writes fail while $T/disk/fail exists, reads while fail-read
spare=$T/spare.img db=$T/set.db mnt=$T/mnt
must "$REMAPCTL" create "$DISK" "$spare" --db "$db" --spare-size 4M >/dev/null
pid=$(mount_set "$DISK" "$spare" "$db" "$mnt" "$T/mount.log")
f=$mnt/$(basename "$DISK")
has_text "$T/mount.log" "no asynchronous I/O" && fail "the daemon has no io_uring: $(cat "$T/mount.log")"

# 16 sectors written while every write of MAIN fails: remapped, acknowledged.
random_file "$T/data" $((16 * SS))
touch "$T/disk/fail"
must dd if="$T/data" of="$f" bs=$((16 * SS)) seek=4 count=1 oflag=direct conv=notrunc,fsync status=none
rm "$T/disk/fail"
st=$(must "$REMAPCTL" status "$mnt" --json)
assert_eq "remapped after failed writes" 16 "$(jq -r .remapped_sectors <<<"$st")"
assert_eq "written data" "$(sha_of "$T/data")" "$(sha_range "$f" $((64 * SS)) $((16 * SS)))"

# While every read of MAIN fails: the remapped range is served from SPARE;
# one sector of MAIN answers EIO and becomes pending.
touch "$T/disk/fail-read"
assert_eq "remapped range while MAIN fails" "$(sha_of "$T/data")" "$(sha_range "$f" $((64 * SS)) $((16 * SS)))"
rc=$(run "$T/read" dd if="$f" of=/dev/null bs=$SS skip=200 count=1 iflag=direct status=none)
rm "$T/disk/fail-read"
assert_eq "read of a failing sector" 1 "$rc"
assert_file_contains "its error" "Input/output error" "$T/read.err"
st=$(must "$REMAPCTL" status "$mnt" --json)
assert_eq "pending after the failed read" 1 "$(jq -r .pending_sectors <<<"$st")"
assert_eq "the pending sector" 200 "$(must "$REMAPCTL" list "$mnt" --json | jq -r '.[] | select(.state == "pending") | .sector')"

# The disk healed: a write to the pending sector clears it; all reads back.
random_file "$T/one" $SS
must dd if="$T/one" of="$f" bs=$SS seek=200 count=1 oflag=direct conv=notrunc,fsync status=none
assert_eq "sector 200" "$(sha_of "$T/one")" "$(sha_range "$f" $((200 * SS)) $SS)"
assert_eq "data after healing" "$(sha_of "$T/data")" "$(sha_range "$f" $((64 * SS)) $((16 * SS)))"
unmount_set "$mnt" "$pid" "$T/mount.log"
must "$REMAPCTL" check "$db" >/dev/null
