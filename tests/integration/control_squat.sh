#!/usr/bin/env bash
# control_squat: another local user cannot take the control channel. A name
# bound first (the old predictable "remapfs/<uuid>") stops no mount, and a
# process of another user listening on the very name a DB records (a stale
# one, learnt somehow) is never talked to: remapctl uses the DB instead.
source "$(dirname "$0")/functions.sh"
requires id nobody
other_user_py=$(dirname "$0")/other_user.py

# start_squatter OUT NAME...: as nobody, a listener posing as the daemon on
# each abstract NAME (other_user.py listen), its output in OUT; waits until
# it listens.
start_squatter() {
  local out=$1 squatter
  shift
  # shellcheck disable=SC2034  # start_bg sets it (and registers the stop)
  start_bg squatter "$PYTHON" "$other_user_py" listen "$@" >"$out"
  wait_until 5 has_text "$out" listening || fail "the squatter did not start: $(cat "$out")"
}

main=$T/sq.img spare=$T/sq.spare db=$T/sq.db mnt=$T/mnt logf=$T/mount.log
make_set "$main" "$spare" "$db" 16M 2M
uuid=$(must "$REMAPCTL" status "$db" --json | jq -r .uuid)
start_squatter "$T/squat1.log" "remapfs/$uuid"

# 1. The squatter stops no mount; remapctl reaches the real daemon.
pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$logf")
for target in "$mnt" "$db"; do
  st=$(must "$REMAPCTL" status "$target" --json)
  assert_eq "uuid from status $target" "$uuid" "$(jq -r .uuid <<<"$st")"
  assert_eq "was_clean from status $target (the daemon's view)" true "$(jq -r .was_clean <<<"$st")"
done
must "$REMAPCTL" fault add "$mnt" --sectors 3 --op read >/dev/null
name=$(control_socket "$db")
[[ $name == remapfs/* && $name != "remapfs/$uuid" ]] || fail "unexpected channel name '$name'"
# The mount's xattrs, readable by others, do not give the name away.
xattrs=$(must "$PYTHON" "$(dirname "$0")/xattrs.py" "$mnt")
[[ $xattrs != *"${name#remapfs/}"* ]] || fail "the mount's xattrs give the channel's name away: $xattrs"

# 2. After a kill -9 the DB still names the dead daemon's channel. A process
# of another user that listens there is not talked to (nor is the first
# squatter, still on the old name).
kill -KILL "$pid"
wait_pid_gone "$pid" 10
umount -l "$mnt"
start_squatter "$T/squat2.log" "$name"
rc=$(run "$T/status" "$REMAPCTL" status "$db" --json)
(( rc == 0 )) || { show_output "$T/status"; fail "remapctl status DB with an impostor on the channel: exit $rc"; }
assert_eq "uuid from status DB" "$uuid" "$(jq -r .uuid "$T/status.out")"
assert_eq "was_clean from the DB after kill -9" false "$(jq -r .was_clean "$T/status.out")"
assert_contains "warning about the impostor" "neither root nor the DB's owner" "$(cat "$T/status.err")"
must "$REMAPCTL" fault add "$db" --sectors 4 --op write >/dev/null
assert_eq "rules in the DB" "3,4" "$(must "$REMAPCTL" fault list "$db" --json | jq -r 'map(.first) | join(",")')"
for f in "$T/squat1.log" "$T/squat2.log"; do
  if grep -q '^got' "$f"; then
    cat "$f" >&2
    fail "a squatter received a request"
  fi
done
