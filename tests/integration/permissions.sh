#!/usr/bin/env bash
# permissions: the DB (with its WAL and shm) and a SPARE that remapctl makes
# are owner-only; the exposed file has MAIN's owner and mode, enforced by the
# kernel; a user who is neither the daemon's owner nor root cannot steer it
# through the control channel, even with allow_other: the DB that names the
# channel is not readable, and the daemon refuses the user anyway.
source "$(dirname "$0")/lib.sh"
setup

as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
id nobody >/dev/null 2>&1 || skip "no user 'nobody'"

make_set pm 32M 4M
for f in "$SPARE" "$DB"; do
  assert_eq "mode of $(basename "$f")" 600 "$(stat -c %a "$f")"
done

chmod 0640 "$MAIN"
chown root:daemon "$MAIN"
chmod 0755 "$T"   # let nobody reach the mountpoint
MNT=$T/mnt
mount_set "$MAIN" "$SPARE" "$DB" "$MNT" allow_other
for f in "$DB" "$DB-wal" "$DB-shm"; do
  [[ -e $f ]] && assert_eq "mode of $(basename "$f") while mounted" 600 "$(stat -c %a "$f")"
done
assert_eq "exposed file mode" 640 "$(stat -c %a "$EXPOSED")"
assert_eq "exposed file owner" "root:daemon" "$(stat -c %U:%G "$EXPOSED")"

# The kernel enforces the mode: nobody may neither read nor write the image.
run as_nobody dd if="$EXPOSED" of=/dev/null bs=4096 count=1 status=none
assert_eq "nobody reading the image exits" 1 "$RC"
assert_contains "nobody reading the image" "Permission denied" "$(ERR)"
run as_nobody dd if=/dev/zero of="$EXPOSED" bs=4096 count=1 conv=notrunc status=none
assert_eq "nobody writing the image exits" 1 "$RC"

# nobody finds the set through the mount's xattrs but cannot read its DB,
# which names the control channel, nor steer the set.
for args in "status $MNT" "fault add $MNT --sectors 1 --op write" "remap $MNT 5" "status $DB"; do
  # shellcheck disable=SC2086
  must_fail_one_line as_nobody "$REMAPCTL" $args
  assert_contains "nobody's remapctl $args" "permission denied" "$(ERR)"
done
# Even knowing the channel's name, nobody is not served.
name=$(control_socket "$DB")
run as_nobody /usr/bin/python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("\0" + sys.argv[1])
try:
    s.sendall(b"{\"verb\": \"fault-clear\"}\n")
    data = s.recv(65536)
    print(repr(data) if data else "closed")
except (BrokenPipeError, ConnectionResetError):
    print("closed")' "$name"
[[ $(OUT) == closed ]] || { show_output; fail "nobody's raw request was not refused"; }
assert_file_contains "daemon log" "control channel: refused a client of uid $(id -u nobody)" "$LOG"

# Nothing changed: no rule, no remap; root still steers it.
must "$REMAPCTL" fault list "$MNT" --json
assert_eq "fault rules" 0 "$(jqr length)"
must "$REMAPCTL" list "$MNT" --json
assert_eq "table entries" 0 "$(jqr length)"
unmount_set "$MNT"
log "ok"
