#!/usr/bin/env bash
# loop_mkfs plain|dio: the real stack. A loop device (plain, or with
# --direct-io=on) on the exposed file; MAIN write faults under the blocks
# mkfs.ext4 writes (superblock, group descriptors, bitmaps, inode tables);
# mkfs.ext4 must succeed (the remaps are invisible to it), the ext4 holds a
# copied tree, and after unmounting everything and remounting remapfs,
# e2fsck -fn is clean and the files' checksums match. While the loop device
# is attached, the remapfs mount is busy: fusermount3 -u fails and the daemon
# keeps running.
source "$(dirname "$0")/functions.sh"
variant=$(one_of "${1:-}" plain dio)
requires mkfs.ext4 -V
requires e2fsck -V
requires losetup -f

loop_opts=()
[[ $variant == dio ]] && loop_opts=(--direct-io=on)
want_dio=0
[[ $variant == dio ]] && want_dio=1

SS=4096
# Trees to copy onto the ext4: system headers (they do not change while the
# test runs, unlike a source tree being edited); this directory as fallback.
src_trees=()
for d in /usr/include/fuse3 /usr/include/spdlog /usr/include/nlohmann; do
  [[ -d $d ]] && src_trees+=("$d")
done
(( ${#src_trees[@]} > 0 )) || src_trees=("$(cd "$(dirname "$0")" && pwd)")

# Sectors (4 KiB) under MAIN write faults: the first 64 KiB (boot block,
# superblock, GDT) and 256 KiB - 2.25 MiB (bitmaps and inode tables of a
# 1 KiB-block ext4, packed at the start by flex_bg).
main=$T/lm.img spare=$T/lm.spare db=$T/lm.db mnt=$T/mnt f=$T/mnt/lm.img fsmnt=$T/ext4
make_set "$main" "$spare" "$db" 128M 16M $SS
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount1.log")
must "$REMAPCTL" fault add "$mnt" --device main --sectors 0-15 --op write
must "$REMAPCTL" fault add "$mnt" --device main --sectors 64-575 --op write

dev=$(attach_loop "$f" "${loop_opts[@]}")
assert_eq "$dev direct I/O" "$want_dio" "$(losetup -l -n -O DIO "$dev" | tr -d ' ')"

must timeout 60 mkfs.ext4 -F -q -E lazy_itable_init=0,lazy_journal_init=0 "$dev"
log "mkfs.ext4 on $dev succeeded"

st=$(must "$REMAPCTL" status "$mnt" --json)
remapped=$(jq -r .remapped_sectors <<<"$st")
assert_ge "sectors remapped by mkfs" 100 "$remapped"
assert_eq "writes that failed to the caller" 0 "$(jq -r .counters.write_eio <<<"$st")"
assert_eq "bad slots" 0 "$(jq -r .slots.bad <<<"$st")"
list=$(must "$REMAPCTL" list "$mnt" --json)
assert_eq "entries outside the rules" 0 \
  "$(jq -r '[.[] | select(.state != "remapped" or (.sector > 15 and .sector < 64) or .sector > 575)] | length' <<<"$list")"
assert_eq "entries" "$remapped" "$(jq -r length <<<"$list")"
# Sector 0 (superblock at byte 1024, magic 0xEF53 at 1080) was remapped:
# the exposed file has the ext4 magic, MAIN itself still has zeros.
assert_eq "ext4 magic through the mount" "53ef" \
  "$(dd if="$f" bs=4096 count=1 iflag=direct status=none | od -An -tx1 -j1080 -N2 | tr -d ' ')"
assert_eq "bytes on MAIN at the magic" "0000" "$(od -An -tx1 -j1080 -N2 "$main" | tr -d ' ')"

# The loop device holds the exposed file: unmount must be refused.
err=$(must_fail fusermount3 -u "$mnt")
assert_contains "fusermount3 -u while busy" "busy" "$err"
is_mounted "$mnt" || fail "$mnt went away after a refused fusermount3 -u"
pid_alive "$pid" || fail "the daemon exited after a refused fusermount3 -u"
must "$REMAPCTL" status "$mnt" --json >/dev/null   # still answers

mount_fs "$dev" "$fsmnt" -t ext4
cp -a "${src_trees[@]}" "$fsmnt/"
(cd "$fsmnt" && find . -path ./lost+found -prune -o -type f -print0 | sort -z | xargs -0 sha256sum) >"$T/sums"
assert_ge "files copied" 20 "$(wc -l <"$T/sums")"
must umount "$fsmnt"
detach_loop "$dev"
# ext4 itself may have written more sectors under the rules.
st=$(must "$REMAPCTL" status "$mnt" --json)
remapped=$(jq -r .remapped_sectors <<<"$st")
unmount_set "$mnt" "$pid" "$T/mount1.log"
must "$REMAPCTL" check "$db"

# Everything again from the persisted state.
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount2.log")
st=$(must "$REMAPCTL" status "$mnt" --json)
assert_eq "remapped after remount" "$remapped" "$(jq -r .remapped_sectors <<<"$st")"
dev=$(attach_loop "$f" "${loop_opts[@]}")
out=$(must timeout 60 e2fsck -fn "$dev")
log "e2fsck -fn clean: $(tail -1 <<<"$out")"
mount_fs "$dev" "$fsmnt" -t ext4 -o ro
(cd "$fsmnt" && must sha256sum --quiet -c "$T/sums")
assert_eq "files found after remount" "$(wc -l <"$T/sums")" \
  "$(cd "$fsmnt" && find . -path ./lost+found -prune -o -type f -print | wc -l)"
must umount "$fsmnt"
detach_loop "$dev"
unmount_set "$mnt" "$pid" "$T/mount2.log"
must "$REMAPCTL" check "$db"
