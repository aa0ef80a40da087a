#!/usr/bin/env bash
# map: `remapctl map` draws the image's sectors, live and offline: the text
# map puts each state where it is (legend, scale, colour only on a
# terminal), and the SVG, rendered to a PNG by rsvg-convert, has the right
# colour in the cells of a remapped, a pending and a normal sector, a fault
# rule and the scrub's position.
source "$(dirname "$0")/functions.sh"
requires rsvg-convert --version
"$PYTHON" -c "import PIL" 2>/dev/null || skip "needs python3-pil"

SS=4096
main=$T/main.img spare=$T/spare.img db=$T/set.db mnt=$T/mnt
make_set "$main" "$spare" "$db" 16M 1M   # 4096 sectors: 64 x 16 cells of 4 sectors
must "$REMAPCTL" fault add "$db" --sectors 4-7 --op write >/dev/null     # cell 1: remapped
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount.log")
must dd if=/dev/zero of="$mnt/main.img" bs=$SS seek=4 count=4 oflag=direct conv=notrunc,fsync status=none
must "$REMAPCTL" fault clear "$mnt" >/dev/null
must "$REMAPCTL" mark-pending "$mnt" 9 >/dev/null                         # cell 2: pending
must "$REMAPCTL" fault add "$mnt" --sectors 3072-3079 --op read >/dev/null  # cells 768, 769: row 12
out=$(must "$REMAPCTL" map "$mnt")
[[ $(sed -n 1p <<<"$out") == "   0 ░▓█░"* ]] || fail "row 0: $(sed -n 1p <<<"$out")"
[[ $(sed -n 13p <<<"$out") == "3072 ▒▒░"* ]] || fail "row 12: $(sed -n 13p <<<"$out")"
assert_eq "16 rows" 16 "$(grep -c '^ *[0-9]* [░▒▓█▶]' <<<"$out")"
assert_contains "legend" "▓ remapped (4)  █ pending (1)" "$out"
assert_contains "scale" "4096 sectors of 4096 bytes (16.0 MiB); one cell: 4 sectors (16.0 KiB)" "$out"
has_text <(echo "$out") $'\e[' && fail "colour without a terminal"
term=$(timeout 20 script -qec "$REMAPCTL map $mnt --rows 2" /dev/null)
assert_contains "colour on a terminal" $'\e[31m█\e[0m' "$term"

# The SVG, with the scrub paused at sector 2048 (cell 512: row 8, column 0),
# before it reaches the read fault (which it would find unreadable).
must "$REMAPCTL" fault add "$mnt" --sectors 2048 --op read --delay-ms 2000 >/dev/null
must "$REMAPCTL" scrub start "$mnt" --rate 0 >/dev/null
scrub_at_2048() { (( $("$REMAPCTL" scrub status "$mnt" --json | jq -r .position) >= 2048 )); }
wait_until 20 scrub_at_2048 || fail "the scrub did not reach sector 2048"
must "$REMAPCTL" scrub pause "$mnt" >/dev/null
pos=$(must "$REMAPCTL" scrub status "$mnt" --json | jq -r .position)
must "$REMAPCTL" map "$mnt" --svg "$T/map.svg" >/dev/null
must rsvg-convert "$T/map.svg" -o "$T/map.png"
# Cell (column c, row r) is at x = 10 + 10c, y = 24 + 10r; its centre +5.
colours=$("$PYTHON" "$(dirname "$0")/pixels.py" "$T/map.png" 25,29 35,29 45,29 15,149 $((15 + 10 * (pos / 4 % 64))),$((29 + 10 * (pos / 4 / 64))) 635,179 | paste -sd' ')
assert_eq "remapped pending normal fault scrub normal" "#e8b820 #d82828 #3aa845 #a848c8 #2090e0 #3aa845" "$colours"
must "$REMAPCTL" scrub stop "$mnt" >/dev/null
must "$REMAPCTL" fault clear "$mnt" >/dev/null
unmount_set "$mnt" "$pid" "$T/mount.log"
assert_eq "offline, the same map" "$(grep -v scrub <<<"$out" | head -3)" "$(must "$REMAPCTL" map "$db" | grep -v scrub | head -3)"
