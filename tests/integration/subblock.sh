#!/usr/bin/env bash
# subblock: 512-byte sectors on images opened O_DIRECT (-o direct) with
# 4 KiB blocks. Slots are handed out consecutively, so the slots of sectors
# in eight different 1 MiB regions share one block of SPARE, and each slot
# write is a read-modify-write of that block. Eight concurrent writers, each
# verifying every write right after it, must never see a write undone.
source "$(dirname "$0")/lib.sh"
setup

make_set sb 8M 1M 512
MNT=$T/mnt
mount_set "$MAIN" "$SPARE" "$DB" "$MNT" direct
K=32  # sectors per region
for r in 0 1 2 3 4 5 6 7; do
  must "$REMAPCTL" fault add "$MNT" --sectors "$((r * 2048))+$K" --op write
done
# Sector k of every region, in turn: slot 8k+r holds sector k of region r,
# so each 4 KiB block of SPARE holds one sector of each region.
run python3 - "$EXPOSED" "$K" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
for k in range(int(sys.argv[2])):
    for r in range(8):
        os.pwrite(fd, b"\0" * 512, (r << 20) + k * 512)
os.fsync(fd)
PY
(( RC == 0 )) || { show_output; fail "the first writes failed"; }
must "$REMAPCTL" list "$MNT" --json
assert_eq "sector 1 of region 3 is in slot 11" 11 "$(jqr '.[] | select(.sector == 3 * 2048 + 1) | .slot')"

# Eight asynchronous writers (libaio: the kernel hands FUSE several requests
# at once), one per region, each verifying what it wrote.
cat >"$T/job.fio" <<JOB
[global]
filename=$EXPOSED
ioengine=libaio
direct=1
iodepth=4
bs=512
size=$((K * 512))
rw=randwrite
loops=10
verify=crc32c
verify_backlog=$K
verify_fatal=1
JOB
for r in 0 1 2 3 4 5 6 7; do printf '[r%d]\noffset=%dM\n' "$r" "$r" >>"$T/job.fio"; done
run fio --output-format=terse "$T/job.fio"
(( RC == 0 )) || { show_output; fail "fio found writes undone by a concurrent read-modify-write (exit $RC)"; }
unmount_set "$MNT"
must "$REMAPCTL" check "$DB"
