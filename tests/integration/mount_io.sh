#!/usr/bin/env bash
# mount_io: data written through the mount (dd buffered and O_DIRECT, fio
# with verification, direct and buffered) survives fusermount -u and a
# remount byte for byte; the daemon shuts down in order. Then the same set
# through `mount -t fuse.remapfs` (mount.fuse3) and `umount`.
source "$(dirname "$0")/functions.sh"
requires fio --version

MIB=$((1 << 20))
main=$T/io.img spare=$T/io.spare db=$T/io.db mnt=$T/mnt
make_set "$main" "$spare" "$db" 128M 16M
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount1.log")
f=$mnt/io.img

# dd, buffered and O_DIRECT, at known places.
random_file "$T/r1" $((8 * MIB))
random_file "$T/r2" $((8 * MIB))
must dd if="$T/r1" of="$f" bs=1M seek=0 conv=notrunc,fsync status=none
must dd if="$T/r2" of="$f" bs=1M seek=8 oflag=direct conv=notrunc,fsync status=none
assert_eq "dd buffered region" "$(sha_of "$T/r1")" "$(sha_range "$f" 0 $((8 * MIB)))"
assert_eq "dd O_DIRECT region" "$(sha_of "$T/r2")" "$(sha_range "$f" $((8 * MIB)) $((8 * MIB)))"

# fio_verify NAME OFFSET DIRECT: fio writes 16 MiB, then reads back and
# verifies every block (crc32c + header).
fio_verify() {
  local name=$1 offset=$2 direct=$3 json=$T/fio-$1.json rc
  rc=$(run "$T/fio-$name" timeout 60 fio --name="$name" --filename="$f" --offset="$offset" --size=16M \
    --bs=4k --rw=randwrite --ioengine=psync --direct="$direct" --fallocate=none --end_fsync=1 \
    --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_backlog=0 --output-format=json --output="$json")
  if (( rc != 0 )); then
    show_output "$T/fio-$name"
    cat "$json" >&2 || true
    fail "fio $name failed (exit $rc)"
  fi
  assert_eq "fio $name error" 0 "$(jq -r '.jobs[0].error' "$json")"
  assert_eq "fio $name bytes written" $((16 * MIB)) "$(jq -r '.jobs[0].write.io_bytes' "$json")"
  assert_eq "fio $name bytes verified (read back)" $((16 * MIB)) "$(jq -r '.jobs[0].read.io_bytes' "$json")"
  log "fio $name: wrote and verified 16 MiB"
}
fio_verify direct $((32 * MIB)) 1
fio_verify buffered $((64 * MIB)) 0

st=$(must "$REMAPCTL" status "$mnt" --json)
assert_eq "remapped sectors" 0 "$(jq -r .remapped_sectors <<<"$st")"
assert_ge "writes counted by the daemon" 1 "$(jq -r .counters.writes <<<"$st")"
assert_ge "flushes counted by the daemon" 1 "$(jq -r .counters.flushes <<<"$st")"

sha_all=$(sha_range "$f" 0 $((128 * MIB)))
sha_100=$(sha_range "$f" 0 $((100 * MIB)))
unmount_set "$mnt" "$pid" "$T/mount1.log"
# Nothing was remapped: MAIN itself holds every byte.
assert_eq "MAIN after unmount" "$sha_all" "$(sha_of "$main")"
must "$REMAPCTL" check "$db"

# Remount (with another file name): identical.
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount2.log" name=disk.img)
assert_eq "exposed file after remount" "$sha_all" "$(sha_range "$mnt/disk.img" 0 $((128 * MIB)))"
assert_eq "dd buffered region after remount" "$(sha_of "$T/r1")" "$(sha_range "$mnt/disk.img" 0 $((8 * MIB)))"
st=$(must "$REMAPCTL" status "$mnt/disk.img" --json)   # the exposed file works as TARGET too
assert_eq "status through the exposed file: was_clean" true "$(jq -r .was_clean <<<"$st")"
unmount_set "$mnt" "$pid" "$T/mount2.log"

# mount -t fuse.remapfs goes through mount.fuse3, which runs `remapfs`
# found in the default PATH (mount(8) drops the caller's PATH). So it runs in
# a private mount namespace where $T/bin (a link to the build's remapfs) is
# bound over /usr/local/sbin; the system is not touched. The kernel page
# cache option `cache` is used here, and `nofail`, as in the fstab line and
# the systemd unit the README shows.
mkdir -p "$T/bin"
ln -s "$REMAPFS" "$T/bin/remapfs"
random_file "$T/r3" $((1 * MIB))
nslog=$T/mount-t.log
cat >"$T/ns.sh" <<'EOS'
set -euo pipefail
mount --bind "$T/bin" /usr/local/sbin
mount -t fuse.remapfs "$MAIN" "$MNT" -o "spare=$SPARE,db=$DB,log=$NSLOG,cache,nofail"
echo "mounted type $(findmnt -n -o FSTYPE --mountpoint "$MNT")"
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
rc=$(run "$T/ns" timeout 60 env T="$T" MAIN="$main" SPARE="$spare" DB="$db" MNT="$mnt" NSLOG="$nslog" \
  unshare --mount --propagation private bash "$T/ns.sh")
if (( rc != 0 )); then
  show_output "$T/ns"
  [[ -f $nslog ]] && tail -20 "$nslog" >&2
  fail "mount -t fuse.remapfs / umount in a private namespace failed (exit $rc)"
fi
out=$(cat "$T/ns.out")
assert_contains "mount -t: type" "mounted type fuse.remapfs" "$out"
assert_contains "mount -t: size" "size $((128 * MIB))" "$out"
assert_contains "mount -t: data" "sha $sha_all" "$out"
assert_contains "mount -t: write read back" "r3 $(sha_of "$T/r3")" "$out"
assert_contains "umount" "umount ok" "$out"
nspid=$(sed -n 's/^pid //p' "$T/ns.out")
[[ -n $nspid ]] || fail "no daemon was found for the mount -t mount"
wait_pid_gone "$nspid" 10
assert_shutdown_log "$nslog" "the filesystem was unmounted"
assert_file_contains "mount -t log: opened with the options" "mounted $main at $mnt/io.img" "$nslog"

# mount.fuse3 itself, run with the build dir first in PATH (how a user
# without mount(8) in the way would call it); `umount` stops it in order.
pathlog=$T/mount.fuse3.log
must timeout 30 env PATH="$(dirname "$REMAPFS"):$PATH" mount.fuse3 "$main" "$mnt" -t remapfs \
  -o "spare=$spare,db=$db,log=$pathlog"
pid=$(check_mount "$main" "$mnt")
assert_eq "mount type (mount.fuse3)" fuse.remapfs "$(mount_type "$mnt")"
assert_eq "r3 through mount.fuse3" "$(sha_of "$T/r3")" "$(sha_range "$f" $((100 * MIB)) $MIB)"
must umount "$mnt"
wait_unmounted "$mnt" 10
wait_pid_gone "$pid" 10
assert_shutdown_log "$pathlog" "the filesystem was unmounted"

# The write made through mount -t is in MAIN, and the rest is unchanged.
assert_eq "MAIN at 100 MiB" "$(sha_of "$T/r3")" "$(sha_range "$main" $((100 * MIB)) $MIB buffered)"
assert_eq "MAIN's first 100 MiB after mount -t" "$sha_100" "$(sha_range "$main" 0 $((100 * MIB)) buffered)"
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount3.log")
assert_eq "first 100 MiB after mount -t" "$sha_100" "$(sha_range "$f" 0 $((100 * MIB)))"
assert_eq "dd O_DIRECT region at the end" "$(sha_of "$T/r2")" "$(sha_range "$f" $((8 * MIB)) $((8 * MIB)))"
assert_eq "r3 at the end" "$(sha_of "$T/r3")" "$(sha_range "$f" $((100 * MIB)) $MIB)"
unmount_set "$mnt" "$pid" "$T/mount3.log"
out=$(must "$REMAPCTL" check "$db")
assert_contains "check output" "ok:" "$out"
