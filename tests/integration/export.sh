#!/usr/bin/env bash
# export: `remapctl export` writes lists their own tools read back. An ext4
# image with remapped and pending sectors in its free space: the ddrescue
# mapfile passes ddrescuelog, which finds the same bad blocks as the
# badblocks list; `e2fsck -l` takes the badblocks list and dumpe2fs then
# shows exactly those blocks as the filesystem's bad blocks; the md list and
# the JSON add up; live and offline exports are the same. Refusals:
# refusals.sh.
source "$(dirname "$0")/functions.sh"
requires ddrescuelog --version
requires mkfs.ext4 -V

SS=4096
main=$T/main.img spare=$T/spare.img db=$T/set.db mnt=$T/mnt
make_set "$main" "$spare" "$db" 64M 1M
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount.log")
f=$mnt/main.img
must mkfs.ext4 -q -F -b $SS "$f"

# The last 16 blocks of the filesystem's last free range: 10 remapped (by
# failed writes), then 2 pending, 4 left normal between them and after.
free=$(must dumpe2fs "$f" 2>/dev/null | sed -n 's/^  Free blocks: //p' | tr ',' '\n' | grep -- - | tail -1 | tr -d ' ')
[[ -n $free ]] || fail "no free range in the new filesystem"
first=$(( ${free#*-} - 15 ))
log "sectors $first.. are free in the filesystem ($free)"
must "$REMAPCTL" fault add "$mnt" --sectors "$first+10" --op write >/dev/null
must dd if=/dev/zero of="$f" bs=$SS seek="$first" count=10 oflag=direct conv=notrunc,fsync status=none
must "$REMAPCTL" fault clear "$mnt" >/dev/null
must "$REMAPCTL" mark-pending "$mnt" $((first + 12)) >/dev/null
must "$REMAPCTL" mark-pending "$mnt" $((first + 13)) >/dev/null
bad_blocks=$(for (( b = first; b < first + 10; b++ )); do echo $b; done; echo $((first + 12)); echo $((first + 13)))

for fmt in badblocks ddrescue md json; do
  must "$REMAPCTL" export "$mnt" --format $fmt >"$T/live.$fmt"
done
assert_eq "badblocks list" "$bad_blocks" "$(cat "$T/live.badblocks")"
assert_eq "1 KiB blocks" $((12 * 4)) "$(must "$REMAPCTL" export "$mnt" --format badblocks --block-size 1024 | wc -l)"

# ddrescuelog reads the mapfile: 12 bad sectors in two areas, the whole
# image covered, and it lists the same blocks.
must ddrescuelog -t "$T/live.ddrescue" >"$T/summary"
assert_file_contains "bad-sector bytes" "bad-sector:    49152 B,  in      2 area(s)" "$T/summary"
assert_file_contains "extent" "mapfile extent:   67108 kB" "$T/summary"
assert_eq "ddrescuelog's bad blocks" "$bad_blocks" "$(must ddrescuelog -b $SS -l- "$T/live.ddrescue")"

# md: 512-byte sectors.
assert_eq "md list" "$((first * 8)) 80|$(( (first + 12) * 8 )) 16" "$(paste -sd'|' "$T/live.md")"
assert_eq "json" "remapped 10 pending 2" "$(jq -r '[.runs[] | "\(.state) \(.count)"] | join(" ")' "$T/live.json")"

# e2fsck -l takes the list: the filesystem then holds those bad blocks.
rc=$(run "$T/e2fsck" e2fsck -f -y -l "$T/live.badblocks" "$f")
(( rc <= 1 )) || { show_output "$T/e2fsck"; fail "e2fsck -l: exit $rc"; }   # 1: it changed the filesystem
assert_eq "dumpe2fs -b" "$bad_blocks" "$(must dumpe2fs -b "$f" 2>/dev/null)"
must e2fsck -f -n "$f" >/dev/null

unmount_set "$mnt" "$pid" "$T/mount.log"
for fmt in badblocks ddrescue md json; do
  assert_eq "offline $fmt" "$(cat "$T/live.$fmt")" "$(must "$REMAPCTL" export "$db" --format $fmt)"
done
