#!/usr/bin/env bash
# import: `remapctl import` makes listed sectors pending (or remapped where
# MAIN still reads them, with --remap-readable), from badblocks lists (any
# block size), ddrescue mapfiles (chosen statuses) and md lists, live and
# offline, with a progress bar on a terminal; export -> import gives the
# same table; --dry-run and a malformed file change nothing; `fault import`
# turns a ddrescue mapfile into read faults that fail through the mount.
source "$(dirname "$0")/functions.sh"

SS=4096
# Set A: sectors 10-13 remapped, 20 and 21 pending.
a_main=$T/a.img a_spare=$T/a.spare a_db=$T/a.db mnt=$T/mnt
make_set "$a_main" "$a_spare" "$a_db" 16M 1M
must "$REMAPCTL" fault add "$a_db" --sectors 10-13 --op write >/dev/null
pid=$(mount_set "$a_main" "$a_spare" "$a_db" "$mnt" "$T/a.log")
must dd if=/dev/urandom of="$mnt/a.img" bs=$SS seek=10 count=4 oflag=direct conv=notrunc,fsync status=none
must "$REMAPCTL" fault clear "$mnt" >/dev/null
must "$REMAPCTL" mark-pending "$mnt" 20 >/dev/null
must "$REMAPCTL" mark-pending "$mnt" 21 >/dev/null
must "$REMAPCTL" export "$mnt" --format json >"$T/a.json"
must "$REMAPCTL" export "$mnt" --format ddrescue >"$T/a.map"
unmount_set "$mnt" "$pid" "$T/a.log"
table() { must "$REMAPCTL" list "$1" --json | jq -r '[.[] | "\(.sector):\(.state)"] | join(" ")'; }
table_a=$(table "$a_db")
assert_eq "set A" "10:remapped 11:remapped 12:remapped 13:remapped 20:pending 21:pending" "$table_a"

# Set B on a copy of A's MAIN: the JSON round trip, offline.
b_main=$T/b.img b_spare=$T/b.spare b_db=$T/b.db
cp "$a_main" "$b_main"
must "$REMAPCTL" create "$b_main" "$b_spare" --db "$b_db" --spare-size 1M >/dev/null
snapshot_set "$b_main" "$b_spare" "$b_db" >"$T/b.snap"
assert_contains "dry run" "6 sectors listed; 2 to make pending, 4 to remap" \
  "$(must "$REMAPCTL" import "$b_db" "$T/a.json" --format json --dry-run)"
assert_unchanged "$T/b.snap" "import --dry-run"
printf '# a comment\n12\nseven\n' >"$T/bad.txt"
assert_eq "malformed: one line" "remapctl: $T/bad.txt: line 3: expected a block number" \
  "$(must_fail_one_line "$REMAPCTL" import "$b_db" "$T/bad.txt" --format badblocks)"
echo 4096 >"$T/far.txt"
assert_contains "past the end" "line 1: bytes 16777216 to 16781312 are past the end" \
  "$(must_fail_one_line "$REMAPCTL" import "$b_db" "$T/far.txt" --format badblocks)"
assert_unchanged "$T/b.snap" "refused imports"
assert_contains "json import" "2 made pending, 4 remapped, 0 already" \
  "$(must "$REMAPCTL" import "$b_db" "$T/a.json" --format json)"
assert_eq "the round trip" "$table_a" "$(table "$b_db")"
assert_contains "again" "0 made pending, 0 remapped, 6 already" \
  "$(must "$REMAPCTL" import "$b_db" "$T/a.json" --format json)"
must "$REMAPCTL" check "$b_db" >/dev/null

# Set C, live: the ddrescue mapfile with --remap-readable (MAIN reads
# everywhere: all six remapped), then a badblocks list of 1 KiB blocks and
# an md list (pending), with the bar on a terminal.
c_main=$T/c.img c_spare=$T/c.spare c_db=$T/c.db
make_set "$c_main" "$c_spare" "$c_db" 16M 1M
pid=$(mount_set "$c_main" "$c_spare" "$c_db" "$mnt" "$T/c.log")
assert_contains "ddrescue import" "0 made pending, 6 remapped" \
  "$(must "$REMAPCTL" import "$mnt" "$T/a.map" --format ddrescue --remap-readable)"
assert_eq "ddrescue round trip" "10:remapped 11:remapped 12:remapped 13:remapped 20:remapped 21:remapped" "$(table "$mnt")"
printf '400\n401\n407\n' >"$T/kib.txt"   # 1 KiB blocks: sectors 100 and 101
assert_contains "badblocks, 1 KiB blocks" "2 made pending" \
  "$(must "$REMAPCTL" import "$mnt" "$T/kib.txt" --format badblocks --block-size 1024)"
printf '1600 16\n1700 1\n' >"$T/md.txt"   # 512-byte sectors: 200-201, 212
out=$(timeout 20 script -qec "$REMAPCTL import $mnt $T/md.txt --format md" /dev/null)
assert_contains "the bar on a terminal" "] 100.0%  3/3 sectors" "$out"
assert_contains "md import" "3 made pending" "$out"
assert_eq "pending now" "100 101 200 201 212" \
  "$(must "$REMAPCTL" list "$mnt" --json | jq -r '[.[] | select(.state == "pending") | .sector] | join(" ")')"
# ddrescue's non-trimmed areas, asked for.
printf '0 +\n0x0 0x12C000 +\n0x12C000 0x1000 *\n0x12D000 0x1000 -\n0x12E000 0xED2000 +\n' >"$T/trim.map"
assert_contains "only '-' by default" "1 made pending" "$(must "$REMAPCTL" import "$mnt" "$T/trim.map" --format ddrescue)"
assert_contains "with '*'" "1 made pending, 0 remapped, 1 already" \
  "$(must "$REMAPCTL" import "$mnt" "$T/trim.map" --format ddrescue --statuses '-*')"

# fault import: the mapfile's bad area fails reads through the mount.
printf '0 +\n0x0 0x1F4000 +\n0x1F4000 0x2000 -\n0x1F6000 0xE0A000 +\n' >"$T/disk.map"   # sectors 500-501
assert_contains "fault import" "added 1 fault rule(s) over 2 sector(s)" \
  "$(must "$REMAPCTL" fault import "$mnt" "$T/disk.map")"
assert_contains "the rule" "main    500-501  read" "$(must "$REMAPCTL" fault list "$mnt")"
assert_eq "a read there" 1 "$(run "$T/rd" dd if="$mnt/c.img" of=/dev/null bs=$SS skip=500 count=1 iflag=direct status=none)"
assert_eq "a read beside it" 0 "$(run "$T/rd2" dd if="$mnt/c.img" of=/dev/null bs=$SS skip=502 count=1 iflag=direct status=none)"
unmount_set "$mnt" "$pid" "$T/c.log"
must "$REMAPCTL" check "$c_db" >/dev/null
# Offline too.
assert_contains "fault import offline" "added 1 fault rule(s)" "$(must "$REMAPCTL" fault import "$b_db" "$T/disk.map" --op both)"
assert_contains "its rule" "main    500-501  both" "$(must "$REMAPCTL" fault list "$b_db")"
