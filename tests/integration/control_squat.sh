#!/usr/bin/env bash
# control_squat: another local user cannot take the control channel. A name
# bound first (the old predictable "remapfs/<uuid>") stops no mount, and a
# process of another user listening on the very name a DB records (a stale
# one, learnt somehow) is never talked to: remapctl uses the DB instead.
source "$(dirname "$0")/lib.sh"
setup

id nobody >/dev/null 2>&1 || skip "no user 'nobody'"
PY=/usr/bin/python3   # nobody cannot run root's python3 shims
[[ -x $PY ]] || skip "needs $PY"

# A listener posing as the daemon: binds each name given (abstract), logs
# every connection ("connect") and what it got ("got ..."), and answers any
# request with a made-up status.
SQUAT='import json, select, socket, sys
socks = []
for name in sys.argv[1:]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind("\0" + name)
    s.listen(8)
    socks.append(s)
print("listening", flush=True)
fake = {"ok": True, "result": {"uuid": "squatted", "state": "squatted", "was_clean": True,
        "slots": {}, "store_error": "", "counters": {}}}
while True:
    ready, _, _ = select.select(socks, [], [])
    for s in ready:
        c, _ = s.accept()
        print("connect", flush=True)
        c.settimeout(2)
        try:
            data = c.recv(65536)
            if data:
                print("got " + data.decode(errors="replace").strip(), flush=True)
                c.sendall((json.dumps(fake) + "\n").encode())
        except OSError:
            pass
        c.close()'

# start_squatter OUT NAME...: as nobody; waits until it listens.
start_squatter() {
  local out=$1 i
  shift
  start_bg setpriv --reuid=nobody --regid=nogroup --clear-groups "$PY" -c "$SQUAT" "$@" >"$out"
  for i in $(seq 100); do grep -q listening "$out" && return 0; sleep 0.05; done
  fail "the squatter did not start: $(cat "$out")"
}

make_set sq 16M 2M
must "$REMAPCTL" status "$DB" --json
UUID=$(jqr .uuid)
start_squatter "$T/squat1.log" "remapfs/$UUID"

# 1. The squatter stops no mount; remapctl reaches the real daemon.
MNT=$T/mnt
mount_set "$MAIN" "$SPARE" "$DB" "$MNT"
for target in "$MNT" "$DB"; do
  must "$REMAPCTL" status "$target" --json
  assert_eq "uuid from status $target" "$UUID" "$(jqr .uuid)"
  assert_eq "was_clean from status $target (the daemon's view)" true "$(jqr .was_clean)"
done
must "$REMAPCTL" fault add "$MNT" --sectors 3 --op read
NAME=$(control_socket "$DB")
[[ $NAME == remapfs/* && $NAME != "remapfs/$UUID" ]] || fail "unexpected channel name '$NAME'"
# The mount's xattrs, readable by others, do not give the name away.
xattrs=$(python3 -c 'import os, sys
p = sys.argv[1]
print(" ".join(n + "=" + os.getxattr(p, n).decode(errors="replace") for n in os.listxattr(p)))' "$MNT")
[[ $xattrs != *"${NAME#remapfs/}"* ]] || fail "the mount's xattrs give the channel's name away: $xattrs"

# 2. After a kill -9 the DB still names the dead daemon's channel. A process
# of another user that listens there is not talked to (nor is the first
# squatter, still on the old name).
kill -KILL "$DAEMON_PID"
wait_pid_gone "$DAEMON_PID" 10
umount -l "$MNT"
start_squatter "$T/squat2.log" "$NAME"
must "$REMAPCTL" status "$DB" --json
assert_eq "uuid from status DB" "$UUID" "$(jqr .uuid)"
assert_eq "was_clean from the DB after kill -9" false "$(jqr .was_clean)"
assert_contains "warning about the impostor" "neither root nor the DB's owner" "$(ERR)"
must "$REMAPCTL" fault add "$DB" --sectors 4 --op write
must "$REMAPCTL" fault list "$DB" --json
assert_eq "rules in the DB" "3,4" "$(jqr 'map(.first) | join(",")')"
for f in "$T/squat1.log" "$T/squat2.log"; do
  if grep -q '^got' "$f"; then
    cat "$f" >&2
    fail "a squatter received a request"
  fi
done
log "ok"
