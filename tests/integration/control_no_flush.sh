#!/usr/bin/env bash
# control_no_flush: remapctl finds the daemon without asking it anything. Its
# read verbs flush nothing, and a daemon whose DB commits fail (a full host
# filesystem) is shown as it is: `status DB` reports store-failing from the
# daemon, not the DB's older view.
source "$(dirname "$0")/functions.sh"

# The DB on a small tmpfs, to be filled later.
mount_fs tmpfs "$T/dbfs" -t tmpfs -o size=2M
main=$T/nf.img spare=$T/nf.spare db=$T/dbfs/nf.db mnt=$T/mnt logf=$T/mount.log
make_set "$main" "$spare" "$db" 16M 2M
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$logf")

# The daemon answers (was_clean: true is its view; the DB says false while
# the set is open), and asking it three times flushes nothing.
st=$(must "$REMAPCTL" status "$db" --json)
assert_eq "status DB answered by the daemon (was_clean)" true "$(jq -r .was_clean <<<"$st")"
flushes=$(jq -r .counters.flushes <<<"$st")
must "$REMAPCTL" list "$db" --json >/dev/null
must "$REMAPCTL" fault list "$db" --json >/dev/null
assert_eq "flushes after status, list and fault list of the DB" "$flushes" \
  "$(must "$REMAPCTL" status "$db" --json | jq -r .counters.flushes)"

# Fill the DB's filesystem; then a write that needs a remap: its commit fails.
must "$REMAPCTL" fault add "$mnt" --sectors 3 --op write >/dev/null
dd if=/dev/zero of="$T/dbfs/fill" bs=4k status=none 2>/dev/null || true
rc=$(run "$T/dd" dd if=/dev/urandom of="$mnt/nf.img" bs=4096 seek=3 count=1 oflag=direct conv=notrunc,fsync status=none)
assert_eq "fsync of a write whose remap cannot be committed exits" 1 "$rc"
assert_eq "state from status DB while commits fail" store-failing \
  "$(must "$REMAPCTL" status "$db" --json | jq -r .state)"
assert_eq "state from status MNT while commits fail" store-failing \
  "$(must "$REMAPCTL" status "$mnt" --json | jq -r .state)"

# Space again: the next commit succeeds, and the stop is orderly.
rm -f "$T/dbfs/fill"
not_store_failing() { [[ $(must "$REMAPCTL" status "$db" --json | jq -r .state) != store-failing ]]; }
wait_until 5 not_store_failing || true
st=$(must "$REMAPCTL" status "$db" --json)
# The write's remap was either refused (a flush had already failed to
# commit the counters) or made and committed now.
if (( $(jq -r .remapped_sectors <<<"$st") > 0 )); then want=degraded; else want=ok; fi
assert_eq "state once there is space again" "$want" "$(jq -r .state <<<"$st")"
unmount_set "$mnt" "$pid" "$logf"
