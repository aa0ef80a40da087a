#!/usr/bin/env bash
# permissions: the DB (with its WAL and shm) and a SPARE that remapctl makes
# are owner-only; the exposed file has MAIN's owner and mode, enforced by the
# kernel; a user who is neither the daemon's owner nor root cannot steer it
# through the control channel, even with allow_other: the DB that names the
# channel is not readable, and the daemon refuses the user anyway.
source "$(dirname "$0")/functions.sh"
requires id nobody
other_user_py=$(dirname "$0")/other_user.py

# as_nobody CMD...: runs CMD as another local user, neither root nor the
# set's owner.
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }

main=$T/pm.img spare=$T/pm.spare db=$T/pm.db mnt=$T/mnt logf=$T/mount.log
make_set "$main" "$spare" "$db" 32M 4M
for f in "$spare" "$db"; do
  assert_eq "mode of $(basename "$f")" 600 "$(stat -c %a "$f")"
done

chmod 0640 "$main"
chown root:daemon "$main"
chmod 0755 "$T"   # let nobody reach the mountpoint
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$logf" allow_other)
f=$mnt/pm.img
for x in "$db" "$db-wal" "$db-shm"; do
  [[ -e $x ]] && assert_eq "mode of $(basename "$x") while mounted" 600 "$(stat -c %a "$x")"
done
assert_eq "exposed file mode" 640 "$(stat -c %a "$f")"
assert_eq "exposed file owner" "root:daemon" "$(stat -c %U:%G "$f")"

# The kernel enforces the mode: nobody may neither read nor write the image.
rc=$(run "$T/read" as_nobody dd if="$f" of=/dev/null bs=4096 count=1 status=none)
assert_eq "nobody reading the image exits" 1 "$rc"
assert_contains "nobody reading the image" "Permission denied" "$(cat "$T/read.err")"
rc=$(run "$T/write" as_nobody dd if=/dev/zero of="$f" bs=4096 count=1 conv=notrunc status=none)
assert_eq "nobody writing the image exits" 1 "$rc"

# nobody finds the set through the mount's xattrs but cannot read its DB,
# which names the control channel, nor steer the set.
nobody_refused() {
  local err
  err=$(must_fail_one_line as_nobody "$REMAPCTL" "$@")
  assert_contains "nobody's remapctl $*" "permission denied" "$err"
}
nobody_refused status "$mnt"
nobody_refused fault add "$mnt" --sectors 1 --op write
nobody_refused remap "$mnt" 5
nobody_refused status "$db"
# Even knowing the channel's name, nobody is not served.
name=$(control_socket "$db")
reply=$(must "$PYTHON" "$other_user_py" request "$name" '{"verb": "fault-clear"}')
assert_eq "nobody's raw request" closed "$reply"
assert_file_contains "daemon log" "control channel: refused a client of uid $(id -u nobody)" "$logf"

# Nothing changed: no rule, no remap; root still steers it.
assert_eq "fault rules" 0 "$(must "$REMAPCTL" fault list "$mnt" --json | jq length)"
assert_eq "table entries" 0 "$(must "$REMAPCTL" list "$mnt" --json | jq length)"
unmount_set "$mnt" "$pid" "$logf"
