#!/usr/bin/env bash
# control_ro_messages: what remapctl says when it cannot do what it was
# asked. Cases (the argument):
#   read_only    a daemon mounted -o ro refuses the changing verbs with one
#                line, through the mount and the DB; the read verbs work
#   not_a_mount  TARGET is a directory that is no remapfs mount
#   daemon_died  the daemon dies while it serves the request
source "$(dirname "$0")/functions.sh"

main=$T/rm.img spare=$T/rm.spare db=$T/rm.db mnt=$T/mnt logf=$T/mount.log

# refused_read_only ARGS...: `remapctl ARGS` is refused with one line saying
# that the set is mounted read-only.
refused_read_only() {
  local err
  err=$(must_fail_one_line "$REMAPCTL" "$@")
  assert_contains "refusal of '$*'" "mounted read-only" "$err"
}

case $(one_of "${1:-}" read_only not_a_mount daemon_died) in
read_only)
  make_set "$main" "$spare" "$db" 16M 2M
  pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$logf" ro)
  for target in "$mnt" "$db"; do
    refused_read_only fault add "$target" --sectors 1 --op read
    refused_read_only fault remove "$target" 1
    refused_read_only fault clear "$target"
    refused_read_only remap "$target" 3
    refused_read_only unremap "$target" 3
    refused_read_only mark-pending "$target" 3
    must "$REMAPCTL" status "$target" >/dev/null
    must "$REMAPCTL" list "$target" >/dev/null
    must "$REMAPCTL" fault list "$target" >/dev/null
    must "$REMAPCTL" events "$target" >/dev/null
  done
  assert_eq "rules after the refusals" 0 "$(must "$REMAPCTL" fault list "$mnt" --json | jq length)"
  assert_eq "table entries after the refusals" 0 "$(must "$REMAPCTL" list "$mnt" --json | jq length)"
  unmount_set "$mnt" "$pid" "$logf"
  ;;

not_a_mount)
  mkdir "$T/plain"
  err=$(must_fail_one_line "$REMAPCTL" status "$T/plain")
  assert_contains "status of a plain directory" "not a remapfs mount" "$err"
  ;;

daemon_died)
  # A remap whose read of MAIN is held by a delay rule, then kill -9.
  make_set "$main" "$spare" "$db" 16M 2M
  pid=$(mount_set "$main" "$spare" "$db" "$mnt" "$logf")
  must "$REMAPCTL" fault add "$mnt" --sectors 9 --op read --delay-ms 20000 >/dev/null
  own_sleepers=$(delayed_io_baseline "$pid")
  start_bg remap "$REMAPCTL" remap "$mnt" 9 >"$T/remap.out" 2>"$T/remap.err"
  wait_delayed_io "$pid" 1 "$own_sleepers"
  kill -KILL "$pid"
  rc=0
  # shellcheck disable=SC2154  # start_bg sets it
  wait "$remap" || rc=$?
  (( rc != 0 )) || fail "remapctl remap succeeded although its daemon was killed"
  assert_eq "lines on stderr" 1 "$(wc -l <"$T/remap.err")"
  assert_contains "remapctl's error when its daemon died" "died (or was stopped) before it replied" "$(cat "$T/remap.err")"
  log "refused: $(cat "$T/remap.err")"
  ;;
esac
