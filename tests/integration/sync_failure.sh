#!/usr/bin/env bash
# sync_failure: SPARE lives on a real disk whose writeback fails (the Linux
# "fsyncgate" case). A write lands in a slot (page-cache mode), SPARE's
# writeback fails, the fsync gets EIO, the disk heals: the next fsync must
# fail too, because the kernel reported the error once and dropped the
# pages. `status` says sync-failed; the log says it once; the way back is a
# restart, after which the set checks itself and every byte acknowledged
# before the failure is there.
source "$(dirname "$0")/lib.sh"
setup

SS=4096
failing_fs "$T/disk" 64M
MAIN=$T/main.img
SPARE=$FAILING_FS/spare.img
DB=$T/set.db
truncate -s 16M "$MAIN"
must "$REMAPCTL" create "$MAIN" "$SPARE" --db "$DB" --spare-size 4M
MNT=$T/mnt
mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
F=$EXPOSED

# write_sync OFFSET FILE: pwrite FILE's bytes at OFFSET, then fsync; prints
# "ok" or the errno name of the fsync (the write itself must succeed).
write_sync() {
  python3 - "$F" "$1" "$2" <<'PY'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(fd, open(sys.argv[3], "rb").read(), int(sys.argv[2]))
try:
    os.fsync(fd)
    print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])
PY
}
fsync_only() {
  python3 -c 'import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
try:
    os.fsync(fd); print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])' "$F"
}

# Sectors 10..17 fail on MAIN: they move to slots 0..7 of SPARE. v1 is
# acknowledged (and makes those blocks of SPARE allocated and written, so
# that what fails later is data writeback, not ext4's own journal).
must "$REMAPCTL" fault add "$MNT" --sectors 10-17 --op write
random_file "$T/v1" $((8 * SS))
random_file "$T/v2" $((8 * SS))
random_file "$T/v3" $((8 * SS))
assert_eq "fsync of v1" ok "$(write_sync $((10 * SS)) "$T/v1")"
must "$REMAPCTL" status "$MNT" --json
assert_eq "remapped" 8 "$(jqr .remapped_sectors)"

# v2 goes into the slots' page cache; SPARE's disk fails its writeback.
touch "$FAIL_TRIGGER"
assert_eq "fsync while SPARE's disk fails" EIO "$(write_sync $((10 * SS)) "$T/v2")"
rm -f "$FAIL_TRIGGER"
# The disk is healthy again, and its next fdatasync would say OK.
assert_eq "fsync after the disk healed" EIO "$(fsync_only)"
assert_eq "and again" EIO "$(fsync_only)"
must "$REMAPCTL" status "$MNT" --json
assert_eq "state" sync-failed "$(jqr .state)"
assert_contains "sync_error" "fdatasync" "$(jqr .sync_error)"
must "$REMAPCTL" status "$MNT"
assert_contains "human status" "sync_error" "$(OUT)"
assert_eq "log lines about it" 1 "$(grep -c 'a sync failed' "$LOG")"

# The way back: stop (the set stays unclean: nothing after the failure was
# committed), let the cache go, mount again.
must fusermount3 -u "$MNT"
wait_unmounted "$MNT" 10
wait_pid_gone "$DAEMON_PID" 10
assert_file_contains "daemon log" "could not stop in order" "$LOG"
echo 3 >/proc/sys/vm/drop_caches
must "$REMAPCTL" check "$DB"
mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
F=$EXPOSED
must "$REMAPCTL" status "$MNT" --json
assert_eq "was_clean after the failed stop" false "$(jqr .was_clean)"
assert_contains "previous_store_error" "fdatasync" "$(jqr .previous_store_error)"
assert_eq "state after the restart" degraded "$(jqr .state)"
assert_eq "remapped after the restart" 8 "$(jqr .remapped_sectors)"
# Each sector holds v1 (acknowledged) or v2 (written, never acknowledged).
for (( s = 0; s < 8; s++ )); do
  got=$(sha_range "$F" $(((10 + s) * SS)) $SS)
  v1=$(dd if="$T/v1" bs=$SS skip=$s count=1 status=none | sha256sum | cut -d' ' -f1)
  v2=$(dd if="$T/v2" bs=$SS skip=$s count=1 status=none | sha256sum | cut -d' ' -f1)
  [[ $got == "$v1" || $got == "$v2" ]] || fail "sector $((10 + s)) is neither v1 nor v2"
done
assert_eq "fsync after the restart" ok "$(write_sync $((10 * SS)) "$T/v3")"
assert_eq "v3 reads back" "$(sha_of "$T/v3")" "$(sha_range "$F" $((10 * SS)) $((8 * SS)))"
unmount_set "$MNT"
must "$REMAPCTL" check "$DB"
must "$REMAPCTL" status "$DB" --json
assert_eq "clean after an orderly stop" true "$(jqr .was_clean)"
