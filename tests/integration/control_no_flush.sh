#!/usr/bin/env bash
# control_no_flush: remapctl finds the daemon without asking it anything. Its
# read verbs flush nothing, and a daemon whose DB commits fail (a full host
# filesystem) is shown as it is: `status DB` reports store-failing from the
# daemon, not the DB's older view.
source "$(dirname "$0")/lib.sh"
setup

# The DB on a small tmpfs, to be filled later.
mkdir "$T/dbfs"
mount -t tmpfs -o size=2M tmpfs "$T/dbfs"
MAIN=$T/nf.img
SPARE=$T/nf.spare
DB=$T/dbfs/nf.db
truncate -s 16M "$MAIN"
must "$REMAPCTL" create "$MAIN" "$SPARE" --db "$DB" --spare-size 2M
MNT=$T/mnt
mount_set "$MAIN" "$SPARE" "$DB" "$MNT"

# The daemon answers (was_clean: true is its view; the DB says false while
# the set is open), and asking it three times flushes nothing.
must "$REMAPCTL" status "$DB" --json
assert_eq "status DB answered by the daemon (was_clean)" true "$(jqr .was_clean)"
flushes=$(jqr .counters.flushes)
must "$REMAPCTL" list "$DB" --json
must "$REMAPCTL" fault list "$DB" --json
must "$REMAPCTL" status "$DB" --json
assert_eq "flushes after status, list and fault list of the DB" "$flushes" "$(jqr .counters.flushes)"

# Fill the DB's filesystem; then a write that needs a remap: its commit fails.
must "$REMAPCTL" fault add "$MNT" --sectors 3 --op write
dd if=/dev/zero of="$T/dbfs/fill" bs=4k status=none 2>/dev/null || true
run dd if=/dev/urandom of="$EXPOSED" bs=4096 seek=3 count=1 oflag=direct conv=notrunc,fsync status=none
assert_eq "fsync of a write whose remap cannot be committed exits" 1 "$RC"
must "$REMAPCTL" status "$DB" --json
assert_eq "state from status DB while commits fail" store-failing "$(jqr .state)"
must "$REMAPCTL" status "$MNT" --json
assert_eq "state from status MNT while commits fail" store-failing "$(jqr .state)"

# Space again: the next commit succeeds, and the stop is orderly.
rm -f "$T/dbfs/fill"
must "$REMAPCTL" status "$DB" --json
for i in $(seq 50); do
  [[ $(jqr .state) != store-failing ]] && break
  sleep 0.1
  must "$REMAPCTL" status "$DB" --json
done
# The write's remap was either refused (a flush had already failed to
# commit the counters) or made and committed now.
if (( $(jqr .remapped_sectors) > 0 )); then want=degraded; else want=ok; fi
assert_eq "state once there is space again" "$want" "$(jqr .state)"
unmount_set "$MNT"
umount "$T/dbfs"
log "ok"
