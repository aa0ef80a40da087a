#!/usr/bin/env bash
# mount_io: data written through the mount (dd buffered and O_DIRECT, fio
# with verification, direct and buffered) survives fusermount -u and a
# remount byte for byte; the daemon shuts down in order. Then the same set
# through `mount -t fuse.remapfs` (mount.fuse3) and `umount`.
source "$(dirname "$0")/lib.sh"
setup

command -v fio >/dev/null || skip "needs fio"
MIB=$((1 << 20))
make_set io 128M 16M
MNT=$T/mnt
mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
F=$EXPOSED

# dd, buffered and O_DIRECT, at known places.
random_file "$T/r1" $((8 * MIB))
random_file "$T/r2" $((8 * MIB))
must dd if="$T/r1" of="$F" bs=1M seek=0 conv=notrunc,fsync status=none
must dd if="$T/r2" of="$F" bs=1M seek=8 oflag=direct conv=notrunc,fsync status=none
assert_eq "dd buffered region" "$(sha_of "$T/r1")" "$(sha_range "$F" 0 $((8 * MIB)))"
assert_eq "dd O_DIRECT region" "$(sha_of "$T/r2")" "$(sha_range "$F" $((8 * MIB)) $((8 * MIB)))"

# fio: write, then read back and verify every block (crc32c + header).
fio_verify() {
  local name=$1 offset=$2 direct=$3
  run timeout 60 fio --name="$name" --filename="$F" --offset="$offset" --size=16M --bs=4k \
    --rw=randwrite --ioengine=psync --direct="$direct" --fallocate=none --end_fsync=1 \
    --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_backlog=0 --output-format=json \
    --output="$T/fio-$name.json"
  if (( RC != 0 )); then
    show_output
    cat "$T/fio-$name.json" >&2 || true
    fail "fio $name failed (exit $RC)"
  fi
  local err written read
  err=$(jq -r '.jobs[0].error' "$T/fio-$name.json")
  written=$(jq -r '.jobs[0].write.io_bytes' "$T/fio-$name.json")
  read=$(jq -r '.jobs[0].read.io_bytes' "$T/fio-$name.json")
  assert_eq "fio $name error" 0 "$err"
  assert_eq "fio $name bytes written" $((16 * MIB)) "$written"
  assert_eq "fio $name bytes verified (read back)" $((16 * MIB)) "$read"
  log "fio $name: wrote and verified 16 MiB"
}
fio_verify direct $((32 * MIB)) 1
fio_verify buffered $((64 * MIB)) 0

must "$REMAPCTL" status "$MNT" --json
assert_eq "remapped sectors" 0 "$(jqr .remapped_sectors)"
assert_ge "writes counted by the daemon" 1 "$(jqr .counters.writes)"
assert_ge "flushes counted by the daemon" 1 "$(jqr .counters.flushes)"

SHA_ALL=$(sha_range "$F" 0 $((128 * MIB)))
SHA_100=$(sha_range "$F" 0 $((100 * MIB)))
unmount_set "$MNT"
# Nothing was remapped: MAIN itself holds every byte.
assert_eq "MAIN after unmount" "$SHA_ALL" "$(sha_of "$MAIN")"
must "$REMAPCTL" check "$DB"

# Remount (with another file name): identical.
mount_set "$MAIN" "$SPARE" "$DB" "$MNT" name=disk.img
assert_eq "exposed file after remount" "$SHA_ALL" "$(sha_range "$EXPOSED" 0 $((128 * MIB)))"
assert_eq "dd buffered region after remount" "$(sha_of "$T/r1")" "$(sha_range "$EXPOSED" 0 $((8 * MIB)))"
must "$REMAPCTL" status "$EXPOSED" --json   # the exposed file works as TARGET too
assert_eq "status through the exposed file: was_clean" true "$(jqr .was_clean)"
unmount_set "$MNT"

# mount -t fuse.remapfs goes through mount.fuse3, which runs `remapfs`
# found in the default PATH (mount(8) drops the caller's PATH). So it runs in
# a private mount namespace where $T/bin (a link to the build's remapfs) is
# bound over /usr/local/sbin; the system is not touched. The kernel page
# cache option `cache` is used here.
mkdir -p "$T/bin"
ln -s "$REMAPFS" "$T/bin/remapfs"
random_file "$T/r3" $((1 * MIB))
NSLOG=$T/logs/mount-t.log
cat >"$T/ns.sh" <<'EOS'
set -euo pipefail
mount --bind "$T/bin" /usr/local/sbin
mount -t fuse.remapfs "$MAIN" "$MNT" -o "spare=$SPARE,db=$DB,log=$NSLOG,cache"
awk -v m="$MNT" '$2 == m { print "mounted type " $3 }' /proc/self/mounts
echo "size $(stat -c %s "$MNT/io.img")"
echo "sha $(sha256sum <"$MNT/io.img" | cut -d' ' -f1)"
dd if="$T/r3" of="$MNT/io.img" bs=1M seek=100 conv=notrunc,fsync status=none
echo "r3 $(dd if="$MNT/io.img" bs=1M skip=100 count=1 status=none | sha256sum | cut -d' ' -f1)"
pgrep -x remapfs | while read -r p; do
  if tr '\0' ' ' <"/proc/$p/cmdline" | grep -qF " $MNT "; then echo "pid $p"; fi
done
umount "$MNT"
echo "umount ok"
EOS
run timeout 60 env T="$T" MAIN="$MAIN" SPARE="$SPARE" DB="$DB" MNT="$MNT" NSLOG="$NSLOG" \
  unshare --mount --propagation private bash "$T/ns.sh"
if (( RC != 0 )); then
  show_output
  [[ -f $NSLOG ]] && tail -20 "$NSLOG" >&2
  fail "mount -t fuse.remapfs / umount in a private namespace failed (exit $RC)"
fi
assert_contains "mount -t: type" "mounted type fuse.remapfs" "$(OUT)"
assert_contains "mount -t: size" "size $((128 * MIB))" "$(OUT)"
assert_contains "mount -t: data" "sha $SHA_ALL" "$(OUT)"
assert_contains "mount -t: write read back" "r3 $(sha_of "$T/r3")" "$(OUT)"
assert_contains "umount" "umount ok" "$(OUT)"
NSPID=$(awk '$1 == "pid" { print $2 }' "$T/out")
[[ -n $NSPID ]] || fail "no daemon was found for the mount -t mount"
wait_pid_gone "$NSPID" 10
assert_shutdown_log "$NSLOG" "the filesystem was unmounted"
assert_file_contains "mount -t log: opened with the options" "mounted $MAIN at $MNT/io.img" "$NSLOG"

# mount.fuse3 itself, run with the build dir first in PATH (how a user
# without mount(8) in the way would call it); `umount` stops it in order.
PATHLOG=$T/logs/mount.fuse3.log
run timeout 30 env PATH="$(dirname "$REMAPFS"):$PATH" mount.fuse3 "$MAIN" "$MNT" -t remapfs \
  -o "spare=$SPARE,db=$DB,log=$PATHLOG"
(( RC == 0 )) || { show_output; fail "mount.fuse3 with remapfs in PATH failed (exit $RC)"; }
after_mount "$MAIN" "$MNT"
assert_eq "mount type (mount.fuse3)" fuse.remapfs "$(awk -v m="$MNT" '$2 == m { print $3 }' /proc/self/mounts)"
assert_eq "r3 through mount.fuse3" "$(sha_of "$T/r3")" "$(sha_range "$EXPOSED" $((100 * MIB)) $MIB)"
must umount "$MNT"
wait_unmounted "$MNT" 10
wait_pid_gone "$DAEMON_PID" 10
assert_shutdown_log "$PATHLOG" "the filesystem was unmounted"

# The write made through mount -t is in MAIN, and the rest is unchanged.
assert_eq "MAIN at 100 MiB" "$(sha_of "$T/r3")" "$(DIRECT=0 sha_range "$MAIN" $((100 * MIB)) $MIB)"
assert_eq "MAIN's first 100 MiB after mount -t" "$SHA_100" "$(DIRECT=0 sha_range "$MAIN" 0 $((100 * MIB)))"
mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
assert_eq "first 100 MiB after mount -t" "$SHA_100" "$(sha_range "$EXPOSED" 0 $((100 * MIB)))"
assert_eq "dd O_DIRECT region at the end" "$(sha_of "$T/r2")" "$(sha_range "$EXPOSED" $((8 * MIB)) $((8 * MIB)))"
assert_eq "r3 at the end" "$(sha_of "$T/r3")" "$(sha_range "$EXPOSED" $((100 * MIB)) $MIB)"
unmount_set "$MNT"
must "$REMAPCTL" check "$DB"
assert_contains "check output" "ok:" "$(OUT)"
