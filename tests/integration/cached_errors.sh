#!/usr/bin/env bash
# cached_errors: MAIN is a file on a real disk that fails on demand (ext4 on
# nbdkit's error filter), read through the page cache, where reads of two
# pages or more are answered by splicing MAIN's pages to the kernel. A read
# the disk fails must still answer EIO and make exactly its sectors pending
# (never a reply from pages that were not read), the neighbours read back
# intact, and writing the pending range brings it back.
source "$(dirname "$0")/functions.sh"

SS=4096
BIG=$((256 * 1024))   # one read of 64 sectors
failing_fs "$T/disk" 64M   # ext4 at $T/disk/fs; its reads fail while $T/disk/fail-read exists
main=$T/disk/fs/main.img spare=$T/spare.img db=$T/set.db mnt=$T/mnt
make_set "$main" "$spare" "$db" 16M 4M
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount.log")
f=$mnt/main.img

# big_read FILE OFFSET: sha256 of BIG bytes at OFFSET, in one O_DIRECT read.
big_read() {
  dd if="$1" bs=$BIG skip=$(($2 / BIG)) count=1 iflag=direct status=none | sha256sum | cut -d' ' -f1
}

random_file "$T/data" $((4 * BIG))
must dd if="$T/data" of="$f" bs=$BIG oflag=direct conv=notrunc,fsync status=none
assert_eq "spliced read" "$(sha_range "$T/data" $BIG $BIG buffered)" "$(big_read "$f" $BIG)"

# MAIN's pages leave the host's page cache: the next read goes to the disk,
# which fails it.
must dd if="$main" iflag=nocache count=0 status=none
touch "$T/disk/fail-read"
rc=$(run "$T/read" dd if="$f" of=/dev/null bs=$BIG skip=2 count=1 iflag=direct status=none)
rm "$T/disk/fail-read"
assert_eq "read while the disk fails" 1 "$rc"
assert_file_contains "its error" "Input/output error" "$T/read.err"
st=$(must "$REMAPCTL" status "$mnt" --json)
assert_eq "pending after the failed read" 64 "$(jq -r .pending_sectors <<<"$st")"
assert_eq "the first pending sector" 128 \
  "$(must "$REMAPCTL" list "$mnt" --json | jq -r '[.[] | select(.state == "pending") | .sector] | min')"
assert_ge "MAIN read errors counted" 1 "$(jq -r .counters.main_read_errors <<<"$st")"

# The disk healed: the neighbours are intact, the pending range answers EIO
# until it is written, then reads back.
assert_eq "the range before" "$(sha_range "$T/data" $BIG $BIG buffered)" "$(big_read "$f" $BIG)"
assert_eq "the range after" "$(sha_range "$T/data" $((3 * BIG)) $BIG buffered)" "$(big_read "$f" $((3 * BIG)))"
assert_eq "the pending range" 1 "$(run "$T/again" dd if="$f" of=/dev/null bs=$BIG skip=2 count=1 iflag=direct status=none)"
random_file "$T/new" $BIG
must dd if="$T/new" of="$f" bs=$BIG seek=2 oflag=direct conv=notrunc,fsync status=none
assert_eq "the range rewritten" "$(sha_of "$T/new")" "$(big_read "$f" $((2 * BIG)))"
assert_eq "pending after the write" 0 "$(must "$REMAPCTL" status "$mnt" --json | jq -r .pending_sectors)"
unmount_set "$mnt" "$pid" "$T/mount.log"
must "$REMAPCTL" check "$db" >/dev/null
