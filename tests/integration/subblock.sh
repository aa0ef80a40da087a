#!/usr/bin/env bash
# subblock: 512-byte sectors on images opened O_DIRECT (-o direct) with
# 4 KiB blocks. Slots are handed out consecutively, so the slots of sectors
# in eight different 1 MiB regions share one block of SPARE, and each slot
# write is a read-modify-write of that block. Eight concurrent writers, each
# verifying every write right after it, must never see a write undone.
source "$(dirname "$0")/functions.sh"
requires fio --version

main=$T/sb.img spare=$T/sb.spare db=$T/sb.db mnt=$T/mnt logf=$T/mount.log
make_set "$main" "$spare" "$db" 8M 1M 512
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$logf" direct)
f=$mnt/sb.img
K=32  # sectors per region
for r in 0 1 2 3 4 5 6 7; do
  must "$REMAPCTL" fault add "$mnt" --sectors "$((r * 2048))+$K" --op write >/dev/null
done
# Sector k of every region, in turn: slot 8k+r holds sector k of region r,
# so each 4 KiB block of SPARE holds one sector of each region.
must "$PYTHON" "$(dirname "$0")/fill_interleaved.py" "$f" "$K" >/dev/null
assert_eq "sector 1 of region 3 is in slot 11" 11 \
  "$(must "$REMAPCTL" list "$mnt" --json | jq -r '.[] | select(.sector == 3 * 2048 + 1) | .slot')"

# Eight asynchronous writers (libaio: the kernel hands FUSE several requests
# at once), one per region, each verifying what it wrote.
cat >"$T/job.fio" <<JOB
[global]
filename=$f
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
rc=$(run "$T/fio" fio --output-format=terse "$T/job.fio")
(( rc == 0 )) || { show_output "$T/fio"; fail "fio found writes undone by a concurrent read-modify-write (exit $rc)"; }
unmount_set "$mnt" "$pid" "$logf"
must "$REMAPCTL" check "$db" >/dev/null
