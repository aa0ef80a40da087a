#!/usr/bin/env bash
# loop_mkfs: the real stack. A loop device (plain, then --direct-io=on) on
# the exposed file; MAIN write faults under the blocks mkfs.ext4 writes
# (superblock, group descriptors, bitmaps, inode tables); mkfs.ext4 must
# succeed (the remaps are invisible to it), the ext4 holds a copied tree,
# and after unmounting everything and remounting remapfs, e2fsck -fn is clean
# and the files' checksums match. While the loop device is attached, the
# remapfs mount is busy: fusermount3 -u fails and the daemon keeps running.
source "$(dirname "$0")/lib.sh"
setup

for tool in mkfs.ext4 e2fsck losetup; do command -v $tool >/dev/null || skip "needs $tool"; done
losetup -f >/dev/null 2>&1 || skip "no free loop device"

SS=4096
# Trees to copy onto the ext4: system headers (they do not change while the
# test runs, unlike a source tree being edited); this directory as fallback.
SRC_TREES=()
for d in /usr/include/fuse3 /usr/include/spdlog /usr/include/nlohmann; do
  [[ -d $d ]] && SRC_TREES+=("$d")
done
(( ${#SRC_TREES[@]} > 0 )) || SRC_TREES=("$(cd "$(dirname "$0")" && pwd)")

# Sectors (4 KiB) under MAIN write faults: the first 64 KiB (boot block,
# superblock, GDT) and 256 KiB - 2.25 MiB (bitmaps and inode tables of a
# 1 KiB-block ext4, packed at the start by flex_bg).
RULE_A=0-15
RULE_B=64-575

one_variant() {
  local variant=$1
  shift
  local loop_opts=("$@")
  log "=== variant $variant: losetup ${loop_opts[*]}"
  make_set "$variant" 128M 16M $SS
  local mnt=$T/mnt-$variant fsmnt=$T/ext4-$variant
  mount_set "$MAIN" "$SPARE" "$DB" "$mnt"
  local pid=$DAEMON_PID file=$EXPOSED
  must "$REMAPCTL" fault add "$mnt" --device main --sectors $RULE_A --op write
  must "$REMAPCTL" fault add "$mnt" --device main --sectors $RULE_B --op write

  attach_loop "$file" "${loop_opts[@]}"
  local dev=$LOOP_DEV want_dio=0
  [[ " ${loop_opts[*]} " == *" --direct-io=on "* ]] && want_dio=1
  assert_eq "$dev direct I/O" "$want_dio" "$(losetup -l -n -O DIO "$dev" | tr -d ' ')"

  must timeout 60 mkfs.ext4 -F -q -E lazy_itable_init=0,lazy_journal_init=0 "$dev"
  log "mkfs.ext4 on $dev succeeded"

  must "$REMAPCTL" status "$mnt" --json
  local remapped
  remapped=$(jqr .remapped_sectors)
  assert_ge "sectors remapped by mkfs" 100 "$remapped"
  assert_eq "writes that failed to the caller" 0 "$(jqr .counters.write_eio)"
  assert_eq "bad slots" 0 "$(jqr .slots.bad)"
  must "$REMAPCTL" list "$mnt" --json
  assert_eq "entries outside the rules" 0 "$(jqr '[.[] | select(.state != "remapped" or (.sector > 15 and .sector < 64) or .sector > 575)] | length')"
  assert_eq "entries" "$remapped" "$(jqr length)"
  # Sector 0 (superblock at byte 1024, magic 0xEF53 at 1080) was remapped:
  # the exposed file has the ext4 magic, MAIN itself still has zeros.
  assert_eq "ext4 magic through the mount" "53ef" "$(dd if="$file" bs=4096 count=1 iflag=direct status=none | od -An -tx1 -j1080 -N2 | tr -d ' ')"
  assert_eq "bytes on MAIN at the magic" "0000" "$(od -An -tx1 -j1080 -N2 "$MAIN" | tr -d ' ')"

  # The loop device holds the exposed file: unmount must be refused.
  run fusermount3 -u "$mnt"
  (( RC != 0 )) || fail "fusermount3 -u succeeded while $dev is attached"
  assert_contains "fusermount3 -u while busy" "busy" "$(ERR)"
  is_mounted "$mnt" || fail "$mnt went away after a refused fusermount3 -u"
  pid_alive "$pid" || fail "the daemon exited after a refused fusermount3 -u"
  must "$REMAPCTL" status "$mnt" --json   # still answers

  mkdir -p "$fsmnt"
  must mount -t ext4 "$dev" "$fsmnt"
  FS_MOUNTS+=("$fsmnt")
  cp -a "${SRC_TREES[@]}" "$fsmnt/"
  (cd "$fsmnt" && find . -path ./lost+found -prune -o -type f -print0 | sort -z | xargs -0 sha256sum) >"$T/sums-$variant"
  assert_ge "files copied" 20 "$(wc -l <"$T/sums-$variant")"
  must umount "$fsmnt"
  detach_loop "$dev"
  # ext4 itself may have written more sectors under the rules.
  must "$REMAPCTL" status "$mnt" --json
  remapped=$(jqr .remapped_sectors)
  unmount_set "$mnt" "$pid"
  must "$REMAPCTL" check "$DB"

  # Everything again from the persisted state.
  mount_set "$MAIN" "$SPARE" "$DB" "$mnt"
  pid=$DAEMON_PID
  must "$REMAPCTL" status "$mnt" --json
  assert_eq "remapped after remount" "$remapped" "$(jqr .remapped_sectors)"
  attach_loop "$EXPOSED" "${loop_opts[@]}"
  dev=$LOOP_DEV
  run timeout 60 e2fsck -fn "$dev"
  if (( RC != 0 )); then
    show_output
    fail "e2fsck -fn $dev: exit $RC"
  fi
  log "e2fsck -fn clean: $(tail -1 "$T/out")"
  must mount -t ext4 -o ro "$dev" "$fsmnt"
  run bash -c "cd '$fsmnt' && sha256sum --quiet -c '$T/sums-$variant'"
  if (( RC != 0 )); then
    show_output
    fail "checksums of the copied files differ after remount"
  fi
  assert_eq "files found after remount" "$(wc -l <"$T/sums-$variant")" \
    "$(cd "$fsmnt" && find . -path ./lost+found -prune -o -type f -print | wc -l)"
  must umount "$fsmnt"
  detach_loop "$dev"
  unmount_set "$mnt" "$pid"
  must "$REMAPCTL" check "$DB"
}

one_variant plain
one_variant dio --direct-io=on
