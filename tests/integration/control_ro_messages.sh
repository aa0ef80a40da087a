#!/usr/bin/env bash
# control_ro_messages: a daemon mounted -o ro refuses remapctl's changing
# verbs with one line (read verbs work); remapctl says what is wrong when
# TARGET is a directory that is no remapfs mount, and when the daemon dies
# while it serves the request.
source "$(dirname "$0")/lib.sh"
setup

make_set rm 16M 2M
MNT=$T/mnt

# -o ro: the changing verbs are refused, through the mount and the DB.
mount_set "$MAIN" "$SPARE" "$DB" "$MNT" ro
for target in "$MNT" "$DB"; do
  for args in "fault add $target --sectors 1 --op read" "fault remove $target 1" "fault clear $target" \
              "remap $target 3" "unremap $target 3" "mark-pending $target 3"; do
    # shellcheck disable=SC2086
    must_fail_one_line "$REMAPCTL" $args
    assert_contains "refusal of '$args'" "mounted read-only" "$(ERR)"
  done
  for args in "status $target" "list $target" "fault list $target" "events $target"; do
    # shellcheck disable=SC2086
    must "$REMAPCTL" $args
  done
done
must "$REMAPCTL" fault list "$MNT" --json
assert_eq "rules after the refusals" 0 "$(jqr length)"
must "$REMAPCTL" list "$MNT" --json
assert_eq "table entries after the refusals" 0 "$(jqr length)"
unmount_set "$MNT"

# A directory that is not a remapfs mount.
mkdir "$T/plain"
must_fail_one_line "$REMAPCTL" status "$T/plain"
assert_contains "status of a plain directory" "not a remapfs mount" "$(ERR)"

# The daemon dies while it serves a request: a remap whose read of MAIN is
# held by a delay rule, then kill -9.
mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
must "$REMAPCTL" fault add "$MNT" --sectors 9 --op read --delay-ms 20000
delayed_io_baseline "$DAEMON_PID"
start_bg "$REMAPCTL" remap "$MNT" 9 >"$T/remap.out" 2>"$T/remap.err"
REMAP_PID=$BG_PID
wait_delayed_io "$DAEMON_PID" 1
kill -KILL "$DAEMON_PID"
rc=0
wait "$REMAP_PID" || rc=$?
(( rc != 0 )) || fail "remapctl remap succeeded although its daemon was killed"
assert_eq "lines on stderr" 1 "$(wc -l <"$T/remap.err")"
assert_contains "remapctl's error when its daemon died" "died (or was stopped) before it replied" "$(cat "$T/remap.err")"
log "refused: $(cat "$T/remap.err")"
umount -l "$MNT"
log "ok"
