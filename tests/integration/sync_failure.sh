#!/usr/bin/env bash
# sync_failure: SPARE lives on a real disk whose writeback fails (the Linux
# "fsyncgate" case). A write lands in a slot (page-cache mode), SPARE's
# writeback fails, the fsync gets EIO, the disk heals: the next fsync must
# fail too, because the kernel reported the error once and dropped the
# pages. `status` says sync-failed; the log says it once; the way back is a
# restart, after which the set checks itself and every byte acknowledged
# before the failure is there.
source "$(dirname "$0")/functions.sh"
write_fsync_py=$(dirname "$0")/write_fsync.py

SS=4096
failing_fs "$T/disk" 64M   # ext4 at $T/disk/fs; its writes fail while $T/disk/fail exists
main=$T/main.img spare=$T/disk/fs/spare.img db=$T/set.db mnt=$T/mnt
make_set "$main" "$spare" "$db" 16M 4M
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount1.log")
f=$mnt/main.img

# Sectors 10..17 fail on MAIN: they move to slots 0..7 of SPARE. v1 is
# acknowledged (and makes those blocks of SPARE allocated and written, so
# that what fails later is data writeback, not ext4's own journal).
must "$REMAPCTL" fault add "$mnt" --sectors 10-17 --op write >/dev/null
random_file "$T/v1" $((8 * SS))
random_file "$T/v2" $((8 * SS))
random_file "$T/v3" $((8 * SS))
assert_eq "fsync of v1" ok "$("$PYTHON" "$write_fsync_py" "$f" $((10 * SS)) "$T/v1")"
assert_eq "remapped" 8 "$(must "$REMAPCTL" status "$mnt" --json | jq -r .remapped_sectors)"

# v2 goes into the slots' page cache; SPARE's disk fails its writeback.
touch "$T/disk/fail"
assert_eq "fsync while SPARE's disk fails" EIO "$("$PYTHON" "$write_fsync_py" "$f" $((10 * SS)) "$T/v2")"
rm -f "$T/disk/fail"
# The disk is healthy again, and its next fdatasync would say OK.
assert_eq "fsync after the disk healed" EIO "$("$PYTHON" "$write_fsync_py" "$f")"
assert_eq "and again" EIO "$("$PYTHON" "$write_fsync_py" "$f")"
st=$(must "$REMAPCTL" status "$mnt" --json)
assert_eq "state" sync-failed "$(jq -r .state <<<"$st")"
assert_contains "sync_error" "fdatasync" "$(jq -r .sync_error <<<"$st")"
assert_contains "human status" "sync_error" "$(must "$REMAPCTL" status "$mnt")"
assert_eq "health: degraded and store-failing" $((4 | 64)) "$(run "$T/health" "$REMAPCTL" health "$mnt")"
assert_eq "log lines about it" 1 "$(grep -c 'a sync failed' "$T/mount1.log")"

# The way back: stop (the set stays unclean: nothing after the failure was
# committed), let the cache go, mount again.
must fusermount3 -u "$mnt" >/dev/null
wait_unmounted "$mnt" 10
wait_pid_gone "$pid" 10
assert_file_contains "daemon log" "could not stop in order" "$T/mount1.log"
echo 3 >/proc/sys/vm/drop_caches
must "$REMAPCTL" check "$db" >/dev/null
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount2.log")
st=$(must "$REMAPCTL" status "$mnt" --json)
assert_eq "was_clean after the failed stop" false "$(jq -r .was_clean <<<"$st")"
assert_contains "previous_store_error" "fdatasync" "$(jq -r .previous_store_error <<<"$st")"
assert_eq "state after the restart" degraded "$(jq -r .state <<<"$st")"
assert_eq "remapped after the restart" 8 "$(jq -r .remapped_sectors <<<"$st")"
# Each sector holds v1 (acknowledged) or v2 (written, never acknowledged).
for (( s = 0; s < 8; s++ )); do
  got=$(sha_range "$f" $(((10 + s) * SS)) $SS)
  v1=$(sha_range "$T/v1" $((s * SS)) $SS buffered)
  v2=$(sha_range "$T/v2" $((s * SS)) $SS buffered)
  [[ $got == "$v1" || $got == "$v2" ]] || fail "sector $((10 + s)) is neither v1 nor v2"
done
assert_eq "fsync after the restart" ok "$("$PYTHON" "$write_fsync_py" "$f" $((10 * SS)) "$T/v3")"
assert_eq "v3 reads back" "$(sha_of "$T/v3")" "$(sha_range "$f" $((10 * SS)) $((8 * SS)))"
unmount_set "$mnt" "$pid" "$T/mount2.log"
must "$REMAPCTL" check "$db" >/dev/null
assert_eq "clean after an orderly stop" true "$(must "$REMAPCTL" status "$db" --json | jq -r .was_clean)"
