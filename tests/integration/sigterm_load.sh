#!/usr/bin/env bash
# sigterm_load sigterm|sigint: the signal to the daemon while a writer fsyncs
# block after block through the mount and MAIN write faults force remaps
# (some slow), and one very slow write is in flight. The daemon must exit
# within a bound after an ordered shutdown that finishes the write in
# flight; the writer fails only after the signal; after a remount (twice)
# every block whose fsync succeeded reads back exactly, and `remapctl check`
# passes.
source "$(dirname "$0")/functions.sh"
how=$(one_of "${1:-}" sigterm sigint)

SS=4096
BLK=16384                 # one write: 4 sectors
NB=512                    # blocks in the ring: 8 MiB
REGION_SECTORS=8192       # the writer's 32 MiB region
main=$T/sl.img spare=$T/sl.spare db=$T/sl.db mnt=$T/mnt f=$T/mnt/sl.img
make_set "$main" "$spare" "$db" 128M 32M $SS
dlog=$T/mount1.log
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$dlog")

# Always-failing, sometimes-failing and slow MAIN writes in the region.
must "$REMAPCTL" fault add "$mnt" --device main --sectors 16-79 --op write
must "$REMAPCTL" fault add "$mnt" --device main --sectors 200-711 --op write --probability 0.3 --seed 1
must "$REMAPCTL" fault add "$mnt" --device main --sectors 1000-1003 --op write --delay-ms 40
# One very slow write, outside the writer's ring, to be in flight at the signal.
slow_sector=3000
must "$REMAPCTL" fault add "$mnt" --device main --sectors $slow_sector --op write --delay-ms 3000 --times 1

start_bg writer "$PYTHON" "$BLOCKS_PY" write "$f" --base 0 --blk $BLK --nb $NB --gen 0 --log "$T/acked" \
  2>"$T/writer.err"
sleep 1.5
random_file "$T/slow" $SS
# Its close (a FUSE flush sent after the signal) is refused; the write is what counts.
start_bg slow "$PYTHON" "$FILEIO_PY" pwrite "$f" "$T/slow" $((slow_sector * SS)) >"$T/slow.out" 2>&1
# Python may take a while to start on a loaded machine: the signal must
# come once the write is issued, not before the file is even open.
wait_until 10 has_text "$T/slow.out" opened || true
sleep 0.5
pid_alive "$slow" || fail "the slow write finished before the signal (the delay rule did not hold it)"
pid_alive "$writer" || { cat "$T/writer.err" >&2; fail "the writer stopped before the signal"; }
assert_ge "blocks acked before the signal" 20 "$(acked_count "$T/acked")"

sent=$(date +%s.%N)
stop_daemon "$how" "$mnt" "$pid" "$dlog" 10
assert_shutdown_log "$dlog" "$(stop_reason "$how")"
# The request in flight at the signal was finished and answered.
src=0
wait "$slow" || src=$?
assert_eq "exit status of the write in flight at $how ($(tr '\n' ' ' <"$T/slow.out"))" 0 "$src"
assert_contains "the write in flight at $how" "wrote $SS" "$(cat "$T/slow.out")"
assert_ge "requests in flight at $how (step 1)" 1 "$(in_flight_at_stop "$dlog")"

# The writer gets an error once the daemon is gone, and not before.
wait_until 10 _not pid_alive "$writer" || fail "the writer is still running 10 s after the daemon exited"
wrc=0
wait "$writer" || wrc=$?
assert_eq "writer exit status" 3 "$wrc"
stopped_at=$(sed -n 's/^stopped at block [0-9]* at \([0-9.]*\):.*/\1/p' "$T/writer.err")
[[ -n $stopped_at ]] || { cat "$T/writer.err" >&2; fail "the writer did not say why it stopped"; }
jq -en "$stopped_at >= $sent" >/dev/null ||
  fail "the writer failed before the signal: $(cat "$T/writer.err")"
log "writer: $(acked_count "$T/acked") blocks acked; $(cat "$T/writer.err")"

# Left dead (the daemon could not detach it): unmount.
if is_mounted "$mnt"; then
  log "mount left after $how: fusermount3 -u"
  fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"
fi
wait_unmounted "$mnt" 10
out=$(must "$REMAPCTL" check "$db")
assert_contains "check after $how" "ok:" "$out"

pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount2.log")
st=$(must "$REMAPCTL" status "$mnt" --json)
assert_eq "was_clean after $how" true "$(jq -r .was_clean <<<"$st")"
list=$(must "$REMAPCTL" list "$mnt" --sectors "0+$REGION_SECTORS" --json)
assert_ge "sectors remapped under load" 64 "$(jq -r '[.[] | select(.state == "remapped")] | length' <<<"$list")"
assert_eq "remapped outside the rules" 0 \
  "$(jq -r '[.[] | select(.sector < 16 or (.sector > 79 and .sector < 200) or .sector > 711)] | length' <<<"$list")"
must blocks verify "$f" --base 0 --blk $BLK --nb $NB --gen 0 --log "$T/acked" --sector $SS
assert_eq "the write in flight at $how is durable" "$(sha_of "$T/slow")" "$(sha_range "$f" $((slow_sector * SS)) $SS)"
unmount_set "$mnt" "$pid" "$T/mount2.log"

# Again, from a last mount after an orderly stop.
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$T/mount3.log")
must blocks verify "$f" --base 0 --blk $BLK --nb $NB --gen 0 --log "$T/acked" --sector $SS
unmount_set "$mnt" "$pid" "$T/mount3.log"
must "$REMAPCTL" check "$db"
