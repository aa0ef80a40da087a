# Functions of the integration tests (sourced by each test, bash).
#
# A test reads top to bottom:
#
#   source "$(dirname "$0")/functions.sh"
#   requires fio --version
#   make_set "$T/io.img" "$T/io.spare" "$T/io.db" 128M 16M
#   pid=$(mount_set "$T/io.img" "$T/io.spare" "$T/io.db" "$T/mnt" "$T/mount1.log")
#   ...
#
# Sourcing this file skips the test (exit 77, reported by ctest as skipped)
# without root, /dev/fuse or the tools every test uses; then it makes the
# test's private temp dir $T (the one variable it sets for the test) and
# starts a watchdog that ends the test, with its teardown, before ctest's
# TIMEOUT would kill it without one.
#
# Teardown always runs, on success, failure, skip, signal or watchdog: what
# `cleanup_fn` registered, newest first (helpers register what they make:
# background jobs, loop devices, filesystems), then a sweep of $T that
# unmounts whatever is still mounted under it (fusermount3 -u, then umount
# -l), detaches loop devices backed by its files, stops the daemons that name
# it, and removes it.
#
# Helpers hand results back on stdout (`pid=$(mount_set ...)`), or in files
# and variables the caller names; `fail` ends the whole test even from inside
# $(...).
#
# Environment (set by tests/integration/CMakeLists.txt): REMAPFS, REMAPCTL
# (the binaries), IT_TIMEOUT (ctest's TIMEOUT of the case, seconds).
# IT_KEEP=1 keeps $T (logs, images) after the test, for debugging; mounts,
# loop devices and daemons are cleaned up all the same.

set -euo pipefail
shopt -s inherit_errexit

# The case: the script's name and its argument (the variant it runs).
TEST_NAME=$(basename "$0" .sh)${1:+.$1}
readonly TEST_NAME
_IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly BLOCKS_PY=$_IT_DIR/blocks.py          # see its help
readonly CONTROL_PY=$_IT_DIR/control_client.py # a raw control channel client
# shellcheck disable=SC2034  # used by the tests
readonly FILEIO_PY=$_IT_DIR/fileio.py          # single reads, writes, fsyncs
readonly DBREAD_PY=$_IT_DIR/dbread.py          # read-only looks at a live DB
readonly METRICS_PY=$_IT_DIR/metrics.py        # parses metrics, prints samples

# --- reporting -------------------------------------------------------------

log() {
  local us=${EPOCHREALTIME//[.,]/}
  printf '[%s %(%T)T.%03d] %s\n' "$TEST_NAME" "${us:0:-6}" "$(( 10#${us: -6} / 1000 ))" "$*" >&2
}

# fail MESSAGE: ends the test (exit 1). From a subshell ($(...), a pipeline,
# a background job) it ends the test too, not only the subshell.
fail() {
  printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2
  [[ $BASHPID == "$$" ]] || kill -USR1 "$$" 2>/dev/null || true
  exit 1
}

# skip MESSAGE: ends the test as skipped (exit 77), also from a subshell.
skip() {
  printf '[%s] SKIP: %s\n' "$TEST_NAME" "$*" >&2
  [[ $BASHPID == "$$" ]] || kill -USR2 "$$" 2>/dev/null || true
  exit 77
}

# requires CMD [ARGS...]: skips the test unless CMD ARGS runs and exits 0
# (`requires fio --version`).
requires() {
  "$@" >/dev/null 2>&1 || skip "needs $1 (\`$*\` failed)"
}

# one_of VALUE CHOICE...: prints VALUE, the case's variant, when it is one of
# the CHOICEs; fails otherwise.
one_of() {
  local value=$1 c
  shift
  for c in "$@"; do
    [[ $value == "$c" ]] && { echo "$value"; return 0; }
  done
  fail "usage: $(basename "$0") $(IFS='|'; echo "$*") (got '$value')"
}

# --- teardown --------------------------------------------------------------

# cleanup_fn CMD [ARGS...]: runs CMD ARGS when the test ends, however it
# ends; the newest registration first. Works from subshells too.
cleanup_fn() {
  printf '%q ' "$@" >>"$T/cleanup.list"
  echo >>"$T/cleanup.list"
}

_run_cleanups() {
  local cmds=() i
  [[ -f $T/cleanup.list ]] && mapfile -t cmds < <(tac "$T/cleanup.list")
  for i in "${cmds[@]}"; do
    eval "$i" || log "cleanup: '$i' exited $?"
  done
}

_on_exit() {
  local rc=$?
  set +e
  trap - EXIT INT TERM HUP
  trap '' USR1 USR2   # a late fail in a subshell must not cut the teardown
  [[ -n ${_WATCHDOG_PID:-} ]] && _stop_watchdog
  _run_cleanups
  _sweep_test_dir
  if (( rc == 0 )); then log "PASS"; elif (( rc != 77 )); then log "exit status $rc"; fi
  exit "$rc"
}

# stop_process PID: TERM, and KILL 5 s later, to a background job of the
# test (nothing when it has ended or PID is no longer the test's child).
stop_process() {
  local pid=$1 i
  _is_child "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null
  for (( i = 0; i < 50; i++ )); do pid_alive "$pid" || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

_is_child() {
  local stat ppid
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat=${stat##*) }
  read -r _ ppid _ <<<"$stat"
  [[ $ppid == "$$" ]]
}

# The net under the registered teardown, in dependency order: FUSE mounts
# under $T (deepest first), loop devices on its files, the daemons that name
# it (given time to finish their shutdown, then TERM, then KILL), $T itself.
_sweep_test_dir() {
  local m dev pid i
  for m in $(_mounts_under "$T/" | sort -r); do
    _teardown_mount "$m"
  done
  for dev in $(_loops_under "$T/"); do
    timeout 20 losetup -d "$dev" 2>/dev/null || log "cleanup: cannot detach $dev"
  done
  for i in $(seq 100); do [[ -z $(daemon_pids_for "$T/") ]] && break; sleep 0.1; done
  for pid in $(daemon_pids_for "$T/"); do
    log "cleanup: daemon $pid still running, sending SIGTERM"
    kill -CONT "$pid" 2>/dev/null
    kill -TERM "$pid" 2>/dev/null
  done
  for i in $(seq 50); do [[ -z $(daemon_pids_for "$T/") ]] && break; sleep 0.1; done
  for pid in $(daemon_pids_for "$T/"); do
    log "cleanup: daemon $pid ignored SIGTERM, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null
  done
  if [[ -n $(_mounts_under "$T/") ]]; then
    log "cleanup: mounts remain under $T; leaving it"
  elif [[ ${IT_KEEP:-0} == 1 ]]; then
    log "cleanup: IT_KEEP=1, keeping $T"
  else
    rm -rf --one-file-system "$T"
  fi
}

# The watchdog: ctest kills a case at its TIMEOUT with SIGKILL, which no trap
# sees; so it is ended a little earlier (cleanup takes up to ~20 s when
# daemons hang). Children blocked on a mount are ended too, so that the
# test's trap runs.
_start_watchdog() {
  local budget=$(( ${IT_TIMEOUT:-120} - 25 ))
  (( budget >= 20 )) || budget=20
  local main=$$
  (
    trap - EXIT INT TERM HUP USR1 USR2
    sleep "$budget" &
    wait $! || exit 0
    printf '[%s] FAIL: watchdog: still running after %ss, ending the test\n' "$TEST_NAME" "$budget" >&2
    kill -TERM "$main" 2>/dev/null || true
    local c
    for c in $(pgrep -P "$main" || true); do
      [[ $c == "$BASHPID" ]] || kill -TERM "$c" 2>/dev/null || true
    done
  ) &
  _WATCHDOG_PID=$!
}

_stop_watchdog() {
  local p
  for p in $(pgrep -P "$_WATCHDOG_PID" 2>/dev/null || true); do kill -TERM "$p" 2>/dev/null || true; done
  kill -TERM "$_WATCHDOG_PID" 2>/dev/null || true
  wait "$_WATCHDOG_PID" 2>/dev/null || true
}

# --- processes and mounts --------------------------------------------------

# is_mounted MNT: something is mounted at exactly MNT (read from the mount
# table, without touching the mount, which may hang when its daemon is dead).
is_mounted() {
  local _dev m _rest
  while read -r _dev m _rest; do
    [[ $m == "$1" ]] && return 0
  done </proc/self/mounts
  return 1
}

# mount_type MNT: the filesystem type mounted at MNT.
mount_type() {
  local _dev m type _rest
  while read -r _dev m type _rest; do
    [[ $m == "$1" ]] && echo "$type"
  done </proc/self/mounts
  return 0
}

_mounts_under() {
  local _dev m _rest
  while read -r _dev m _rest; do
    [[ $m == "$1"* ]] && echo "$m"
  done </proc/self/mounts
  return 0
}

_loops_under() {
  local dev file
  while read -r dev file; do
    [[ $file == "$1"* ]] && echo "$dev"
  done < <(losetup -l -n -O NAME,BACK-FILE 2>/dev/null)
  return 0
}

# pid_alive PID: PID runs (a zombie waiting to be reaped does not count).
pid_alive() {
  local stat state
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat=${stat##*) }
  state=${stat%% *}
  [[ -n $state && $state != Z && $state != X ]]
}

# daemon_pids_for TEXT: pids of the remapfs daemons whose command line holds
# TEXT (" MNT " for the daemon of a mount, "$T/" for every one of the test).
daemon_pids_for() {
  local pid cmd
  for pid in $(pgrep -x remapfs || true); do
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
    [[ $cmd == *"$1"* ]] && echo "$pid"
  done
  return 0
}

# start_bg VAR CMD...: runs CMD in the background (redirections given to
# start_bg apply to it), sets the variable VAR to its pid and registers its
# stop. CMD must be a program, not a shell function, so that the pid is its.
start_bg() {
  local -n _pid_out=$1
  shift
  "$@" &
  _pid_out=$!
  cleanup_fn stop_process "$_pid_out"
}

# wait_until SECONDS CMD...: runs CMD every 50 ms until it succeeds (status
# 0) or SECONDS have passed (status 1).
wait_until() {
  local secs=$1 t_end
  shift
  t_end=$(( $(now_ms) + secs * 1000 ))
  until "$@"; do
    (( $(now_ms) < t_end )) || return 1
    sleep 0.05
  done
}

# has_text FILE TEXT: FILE exists and holds TEXT.
has_text() { grep -qF -- "$2" "$1" 2>/dev/null; }

# wait_unmounted MNT [SECONDS]: the mount must go away within the bound.
wait_unmounted() {
  wait_until "${2:-10}" _not is_mounted "$1" || fail "$1 is still mounted after ${2:-10}s"
}

# wait_pid_gone PID [SECONDS]: the process must exit within the bound.
wait_pid_gone() {
  wait_until "${2:-10}" _not pid_alive "$1" || fail "process $1 is still running after ${2:-10}s"
}

_not() { ! "$@"; }

# Milliseconds since the epoch (no fork of date(1): called in wait loops).
now_ms() {
  local us=${EPOCHREALTIME//[.,]/}
  echo $(( us / 1000 ))
}

# --- running commands ------------------------------------------------------

# must CMD...: runs CMD; its stdout is the output (capture it with $(...));
# fails the test, showing what CMD printed, unless it exits 0.
must() {
  local f=$T/cmd/$BASHPID rc=0 out
  "$@" >"$f.out" 2>"$f.err" || rc=$?
  if (( rc != 0 )); then
    show_output "$f"
    fail "expected success (exit 0), got exit $rc: $*"
  fi
  out=$(<"$f.out")
  [[ -z $out ]] || printf '%s\n' "$out"
}

# must_fail CMD...: CMD must exit non-zero; its stderr is the output.
must_fail() {
  _must_fail "$@"
  printf '%s\n' "$(<"$T/cmd/$BASHPID.err")"
}

# must_fail_one_line CMD...: as must_fail, and CMD printed exactly one
# non-empty line on stderr (a refusal).
must_fail_one_line() {
  local raw="" newlines
  _must_fail "$@"
  IFS= read -r -d '' raw <"$T/cmd/$BASHPID.err" || true
  newlines=${raw//[!$'\n']/}
  if [[ ${#newlines} -ne 1 || ${raw: -1} != $'\n' || -z ${raw//[[:space:]]/} ]]; then
    show_output "$T/cmd/$BASHPID"
    fail "expected exactly one line on stderr, got ${#newlines}: $*"
  fi
  printf '%s' "$raw"
}

# Runs CMD with its output in $T/cmd/PID.out and .err; fails unless it
# exits non-zero.
_must_fail() {
  local f=$T/cmd/$BASHPID rc=0
  "$@" >"$f.out" 2>"$f.err" || rc=$?
  if (( rc == 0 )); then
    show_output "$f"
    fail "expected a failure (non-zero exit), got exit 0: $*"
  fi
  log "failed as expected (exit $rc): $(head -c 300 "$f.err")"
}

# run PREFIX CMD...: runs CMD with stdout in PREFIX.out and stderr in
# PREFIX.err; prints its exit status. Never fails by itself.
run() {
  local prefix=$1 rc=0
  shift
  "$@" >"$prefix.out" 2>"$prefix.err" || rc=$?
  echo "$rc"
}

# show_output PREFIX | show_output OUT_FILE ERR_FILE: the start of
# PREFIX.out and PREFIX.err (or of the two files), on stderr.
show_output() {
  local out=$1.out err=$1.err
  (( $# == 2 )) && { out=$1; err=$2; }
  echo "--- stdout:" >&2
  head -c 4000 "$out" >&2 2>/dev/null
  echo "--- stderr:" >&2
  head -c 4000 "$err" >&2 2>/dev/null
  return 0
}

# --- assertions ------------------------------------------------------------

assert_eq() {
  local what=$1 expected=$2 actual=$3
  [[ "$expected" == "$actual" ]] || fail "$what: expected '$expected', got '$actual'"
}
assert_ge() {
  local what=$1 min=$2 actual=$3
  [[ $actual =~ ^-?[0-9]+$ ]] || fail "$what: '$actual' is not a number"
  (( actual >= min )) || fail "$what: expected at least $min, got $actual"
}
assert_contains() {
  local what=$1 needle=$2 haystack=$3
  [[ "$haystack" == *"$needle"* ]] || fail "$what: expected to contain '$needle', got: $haystack"
}
assert_file_contains() {
  local what=$1 needle=$2 file=$3
  grep -qF -- "$needle" "$file" || fail "$what: '$needle' not found in $file"
}

# --- sets, mounts, daemons -------------------------------------------------

# make_set MAIN SPARE DB MAIN_SIZE SPARE_SIZE [SECTOR_SIZE]: a sparse MAIN
# of MAIN_SIZE, and with `remapctl create` the set: SPARE of SPARE_SIZE, DB.
make_set() {
  local main=$1 spare=$2 db=$3 main_size=$4 spare_size=$5 sector=${6:-4096} out
  truncate -s "$main_size" "$main"
  out=$(must "$REMAPCTL" create "$main" "$spare" --db "$db" --sector-size "$sector" --spare-size "$spare_size")
  assert_contains "remapctl create output" "created set" "$out"
  [[ -f $spare && -f $db ]] || fail "remapctl create did not make $spare and $db"
}

# mount_set MAIN SPARE DB MNT LOG [OPTS]: mounts the set at MNT with remapfs
# (daemonized), logging to LOG (a new file: one log per mount), with the
# extra -o OPTS; checks the fresh mount (check_mount) and prints the daemon's
# pid. The exposed file is MNT/NAME (name=NAME in OPTS) or MNT/basename(MAIN).
mount_set() {
  local main=$1 spare=$2 db=$3 mnt=$4 logf=$5 extra=${6:-} name="" out
  [[ ! -e $logf ]] || fail "mount_set: the log $logf exists already (one log per mount)"
  mkdir -p "$mnt" "$(dirname "$logf")"
  cleanup_fn _teardown_mount "$mnt"
  local opts="spare=$spare,db=$db,log=$logf"
  [[ -n $extra ]] && opts+=",$extra"
  out=$T/cmd/$BASHPID
  if ! timeout 30 "$REMAPFS" "$main" "$mnt" -o "$opts" >"$out.out" 2>"$out.err"; then
    show_output "$out"
    fail "remapfs failed to mount $main at $mnt"
  fi
  [[ ! -s $out.out && ! -s $out.err ]] || { show_output "$out"; fail "remapfs printed although it mounted"; }
  [[ ,$extra, =~ ,name=([^,]+), ]] && name=${BASH_REMATCH[1]}
  check_mount "$main" "$mnt" ${name:+"$name"}
}

# check_mount MAIN MNT [NAME]: MNT is a fresh mount of MAIN: one file, NAME
# or MAIN's base name, of MAIN's size, served by one daemon, whose pid it
# prints.
check_mount() {
  local main=$1 mnt=$2 name=${3:-$(basename "$1")} size pids
  is_mounted "$mnt" || fail "$mnt is not mounted after remapfs returned"
  [[ -f $mnt/$name ]] || fail "$mnt/$name does not exist in the mount"
  if [[ -b $main ]]; then size=$(blockdev --getsize64 "$main"); else size=$(stat -c %s "$main"); fi
  assert_eq "size of $mnt/$name" "$size" "$(stat -c %s "$mnt/$name")"
  assert_eq "entries in $mnt" "$name" "$(ls -A "$mnt")"
  pids=$(daemon_pids_for " $mnt ")
  [[ $(wc -w <<<"$pids") -eq 1 ]] || fail "expected one remapfs daemon for $mnt, found: '$pids'"
  log "mounted $main at $mnt (daemon $pids)"
  echo "$pids"
}

# A registered unmount: fusermount3 -u (a few tries), else lazily; then the
# daemon of MNT is given 10 s to finish its shutdown (the sweep stops it
# after that).
_teardown_mount() {
  local i
  for i in 1 2 3; do
    is_mounted "$1" || break
    timeout 10 fusermount3 -u "$1" 2>/dev/null && break
    sleep 0.3
  done
  is_mounted "$1" && umount -l "$1"
  wait_until 10 _no_daemon_for "$1" || true
}

_no_daemon_for() { [[ -z $(daemon_pids_for " $1 ") ]]; }

# unmount_set MNT PID LOG: fusermount3 -u; the daemon PID must exit and its
# LOG show the ordered shutdown.
unmount_set() {
  local mnt=$1 pid=$2 logf=$3
  must fusermount3 -u "$mnt"
  wait_unmounted "$mnt" 10
  wait_pid_gone "$pid" 10
  assert_shutdown_log "$logf" "the filesystem was unmounted"
}

# assert_shutdown_log LOG REASON: "shutdown requested: REASON" then
# "shutdown step 1" .. "shutdown step 6", each exactly once, in order, no
# error line after the request, and the final "shutdown took".
assert_shutdown_log() {
  local logf=$1 reason=$2 n line prev hits
  [[ -f $logf ]] || fail "no log file $logf"
  line=$(grep -n -F "shutdown requested: $reason" "$logf" | head -1 | cut -d: -f1)
  [[ -n $line ]] || { tail -20 "$logf" >&2; fail "$logf: no 'shutdown requested: $reason'"; }
  prev=$line
  for n in 1 2 3 4 5 6; do
    hits=$(grep -n -E "\] shutdown step $n: .* in [0-9.]+ ms" "$logf" | cut -d: -f1)
    [[ $(wc -w <<<"$hits") -eq 1 ]] || { tail -20 "$logf" >&2; fail "$logf: expected one 'shutdown step $n ... in N ms' line, got: $hits"; }
    (( hits > prev )) || { tail -20 "$logf" >&2; fail "$logf: shutdown step $n is out of order"; }
    prev=$hits
  done
  if tail -n +"$line" "$logf" | grep -E '\[(error|critical)\]' >&2; then
    fail "$logf: error lines during shutdown"
  fi
  grep -q "shutdown took" "$logf" || fail "$logf: no final 'shutdown took' line"
}

# stop_reason HOW: what the log says for a stop by HOW ("shutdown requested:
# REASON"): unmount (fusermount3 -u), sigterm, sigint.
stop_reason() {
  case $1 in
    unmount) echo "the filesystem was unmounted" ;;
    sigterm) echo "signal Terminated" ;;
    sigint) echo "signal Interrupt" ;;
    *) fail "stop_reason: unknown way '$1'" ;;
  esac
}

# stop_daemon HOW MNT PID LOG BOUND_S: starts the ordered shutdown by HOW
# (unmount: fusermount3 -u MNT; sigterm, sigint: that signal to PID) and
# waits for PID to exit; fails, showing the end of LOG, when it is still
# running BOUND_S seconds later.
stop_daemon() {
  local how=$1 mnt=$2 pid=$3 logf=$4 bound=$5 t0
  stop_reason "$how" >/dev/null
  t0=$(now_ms)
  case $how in
    unmount) must fusermount3 -u "$mnt" ;;
    sigterm) kill -TERM "$pid" ;;
    sigint) kill -INT "$pid" ;;
  esac
  wait_daemon_exit "$pid" "$logf" "$bound" "$how"
  log "daemon $pid exited $(( $(now_ms) - t0 )) ms after $how"
}

# after_orderly_stop HOW MNT DB LOG: after a stop by HOW: LOG shows the
# ordered shutdown, steps 1..6; the mount is gone (one left dead by a signal
# while files were open is unmounted here); the set passes `remapctl check`
# and the DB says it was stopped cleanly.
after_orderly_stop() {
  local how=$1 mnt=$2 db=$3 logf=$4 out
  assert_shutdown_log "$logf" "$(stop_reason "$how")"
  if is_mounted "$mnt"; then
    fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"
  fi
  wait_unmounted "$mnt" 10
  out=$(must "$REMAPCTL" check "$db")
  assert_contains "remapctl check after the stop" "ok:" "$out"
  out=$(must "$REMAPCTL" status "$db" --json)
  assert_eq "was_clean in the DB after an orderly stop" true "$(jq -r .was_clean <<<"$out")"
}

# step_ms LOG N: the duration LOG gives for shutdown step N, whole ms.
step_ms() {
  sed -n "s/.*\] shutdown step $2: .* in \([0-9.]*\) ms.*/\1/p" "$1" | tail -1 | cut -d. -f1
}

# in_flight_at_stop LOG: the requests step 1 of the shutdown finished.
in_flight_at_stop() {
  sed -n 's/.*shutdown step 1: .* \([0-9][0-9]*\) in flight finished.*/\1/p' "$1"
}

# delayed_io_baseline PID: the threads of daemon PID seen asleep in
# nanosleep over half a second, before any delay rule is hit (a sanitizer
# runtime's own background thread); prints their ids, for delayed_io.
delayed_io_baseline() {
  local i t w own=""
  for (( i = 0; i < 25; i++ )); do
    for t in /proc/"$1"/task/*; do
      w=""
      read -r w 2>/dev/null <"$t/wchan" || true   # no final newline
      if [[ $w == *nanosleep* && " $own " != *" ${t##*/} "* ]]; then
        own+=" ${t##*/}"
      fi
    done
    sleep 0.02
  done
  [[ -z $own ]] || log "threads of $1 that sleep on their own:$own"
  echo "$own"
}

# delayed_io PID BASELINE: threads of daemon PID asleep in a --delay-ms fault
# rule (nanosleep; nothing else of the daemon's own sleeps that way), not
# counting the BASELINE threads.
delayed_io() {
  local n=0 t w
  for t in /proc/"$1"/task/*; do
    [[ " $2 " == *" ${t##*/} "* ]] && continue
    w=""
    read -r w 2>/dev/null <"$t/wchan" || true
    if [[ $w == *nanosleep* ]]; then n=$((n + 1)); fi
  done
  echo $n
}

# wait_delayed_io PID N BASELINE: until N requests are held by delay rules
# (10 s bound).
wait_delayed_io() {
  local i
  for (( i = 0; i < 500; i++ )); do
    (( $(delayed_io "$1" "$3") >= $2 )) && return 0
    sleep 0.02
  done
  fail "expected $2 requests held by delay rules in daemon $1, found $(delayed_io "$1" "$3")"
}

# wait_daemon_exit PID LOG BOUND_S HOW: the daemon PID, asked to stop by HOW,
# must exit within BOUND_S seconds; else the end of LOG is shown.
wait_daemon_exit() {
  local pid=$1 logf=$2 bound=$3 how=$4 t0
  t0=$(now_ms)
  while pid_alive "$pid"; do
    if (( $(now_ms) - t0 > bound * 1000 )); then
      tail -15 "$logf" >&2
      fail "the daemon ($how) is still running ${bound}s after the shutdown was requested"
    fi
    sleep 0.01
  done
}

# --- the DB and the control channel, raw -----------------------------------

# control_socket DB: the abstract socket name of the control channel that DB
# records (the DB is owner-only: as root).
control_socket() { "$PYTHON" "$CONTROL_PY" "$1" socket; }

# metric FILE|- SAMPLE...: each SAMPLE's value in the metrics FILE (or
# stdin), parsed by the Prometheus client's parser: see metrics.py.
metric() { "$PYTHON" "$METRICS_PY" "$@"; }

# committed_sectors DB: table entries committed to the DB, read with SQLite
# read-only, so that it works while the daemon runs and asks it for nothing
# (remapctl given the DB of a running daemon asks the daemon).
committed_sectors() { "$PYTHON" "$DBREAD_PY" "$1" sectors; }

# committed_scrub DB: the scrub's state and position committed to the DB
# ("running 1234"; "none" before the first).
committed_scrub() { "$PYTHON" "$DBREAD_PY" "$1" scrub; }

# --- bytes -----------------------------------------------------------------

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# sha_range FILE OFFSET LENGTH [buffered]: sha256 of LENGTH bytes at OFFSET
# (multiples of 4096), read with O_DIRECT (so that a mount is really read)
# unless `buffered` is given.
sha_range() {
  local f=$1 off=$2 len=$3 flag=iflag=direct
  [[ ${4:-} == buffered ]] && flag=""
  dd if="$f" bs=4096 skip=$((off / 4096)) count=$((len / 4096)) $flag status=none | sha256sum | cut -d' ' -f1
}

# random_file PATH BYTES: fills PATH with random bytes.
random_file() { head -c "$2" /dev/urandom >"$1"; }

# snapshot_set FILE...: sha256 of each file (and of a DB's -wal, empty when
# absent), one line each, to compare before and after a refused command.
snapshot_set() {
  local f
  for f in "$@"; do
    if [[ -e $f ]]; then echo "$f $(sha_of "$f")"; else echo "$f absent"; fi
    if [[ $f == *.db ]]; then
      echo "$f-wal $(cat "$f-wal" 2>/dev/null | sha256sum | cut -d' ' -f1)"
    fi
  done
}

# assert_unchanged SNAPSHOT_FILE WHAT: the files are byte-identical to the
# snapshot.
assert_unchanged() {
  local snap=$1 what=$2 f _ files=()
  while read -r f _; do
    [[ $f == *-wal ]] || files+=("$f")
  done <"$snap"
  if ! diff -u "$snap" <(snapshot_set "${files[@]}") >&2; then
    fail "$what modified the set's files"
  fi
}

# --- the verifying block writer --------------------------------------------

# blocks write|verify|baselines FILE ...: tests/integration/blocks.py (see
# its help). In the background: start_bg VAR "$PYTHON" "$BLOCKS_PY" write ...
blocks() { "$PYTHON" "$BLOCKS_PY" "$@"; }

# acked_count LOG: fsync-acknowledged batches in a blocks.py log.
acked_count() {
  if [[ -f $1 ]]; then grep -c '^a ' "$1" || true; else echo 0; fi
}

# --- loop devices and filesystems ------------------------------------------

# attach_loop FILE [losetup options]: attaches a loop device to FILE (a file
# under $T) and prints it; its detach is registered.
attach_loop() {
  local file=$1 dev
  shift
  dev=$(losetup -f --show "$@" "$file") || fail "losetup $* $file failed"
  cleanup_fn _detach_if_ours "$dev"
  log "attached $dev to $file ($*)"
  echo "$dev"
}

# detach_loop DEV: detaches it and waits until the detach completes (it does
# when the last reference goes).
detach_loop() {
  must losetup -d "$1" >/dev/null
  wait_until 10 _not _loop_attached "$1" || fail "$1 is still attached 10 s after losetup -d"
}

_loop_attached() { losetup "$1" >/dev/null 2>&1; }

# A registered detach: only while DEV is still backed by a file of ours (once
# free, its number may be someone else's).
_detach_if_ours() {
  [[ " $(_loops_under "$T/" | tr '\n' ' ') " == *" $1 "* ]] || return 0
  timeout 20 losetup -d "$1" 2>/dev/null || log "cleanup: cannot detach $1"
}

# mount_fs DEV DIR [mount options]: mounts the filesystem on DEV at DIR;
# its unmount is registered (lazy when still busy).
mount_fs() {
  local dev=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  must mount "$@" "$dev" "$dir" >/dev/null
  cleanup_fn _umount_fs "$dir"
}

_umount_fs() {
  is_mounted "$1" || return 0
  timeout 20 umount "$1" 2>/dev/null || umount -l "$1"
}

# failing_disk DIR SIZE: a real disk that fails on demand, for failures that
# belong to the kernel and the device: nbdkit's memory plugin behind its
# error filter, exposed as a file by nbdfuse, and a loop device on that file
# (direct I/O, so errors are not absorbed by a second page cache), left in
# $DISK. While DIR/fail exists every write fails with EIO, while
# DIR/fail-read exists every read; removing the file heals the disk. Call it
# in the test's shell (not in $(...)): nbdfuse runs in the background.
# Teardown: the loop device, then nbdfuse (after what sits on them).
failing_disk() {
  local dir=$1 size=$2
  requires nbdkit --version
  requires nbdfuse --version
  mkdir -p "$dir/nbd"
  # Not a start_bg job: it exits when its mount is unmounted, after what
  # sits on it.
  nbdfuse -P "$dir/nbdfuse.pid" "$dir/nbd/disk" [ nbdkit --filter=error memory "$size" \
    error-pwrite=EIO error-pwrite-rate=100% error-pwrite-file="$dir/fail" \
    error-pread=EIO error-pread-rate=100% error-pread-file="$dir/fail-read" ] &
  cleanup_fn _umount_fuse "$dir/nbd"
  wait_until 10 test -s "$dir/nbdfuse.pid" || true
  [[ -f $dir/nbd/disk ]] || fail "nbdfuse did not expose $dir/nbd/disk"
  DISK=$(attach_loop "$dir/nbd/disk" --direct-io=on)
  log "failing disk: $DISK (nbdkit error filter, triggers $dir/fail and $dir/fail-read)"
}

# failing_fs DIR SIZE: ext4 on a failing_disk, mounted at DIR/fs, for
# writeback errors. Teardown: the filesystem (lazily while a daemon still
# holds a file there), then the disk.
failing_fs() {
  local dir=$1 size=$2
  requires mkfs.ext4 -V
  failing_disk "$dir" "$size"
  mkdir -p "$dir/fs"
  must mkfs.ext4 -q -F "$DISK" >/dev/null
  mount_fs "$DISK" "$dir/fs" -o errors=continue
  log "failing filesystem: ext4 at $dir/fs on $DISK"
}

_umount_fuse() {
  is_mounted "$1" || return 0
  timeout 10 fusermount3 -u "$1" 2>/dev/null || umount -l "$1"
}

# --- start ------------------------------------------------------------------

[[ ${EUID} -eq 0 ]] || skip "needs root (mounts, loop devices)"
[[ -c /dev/fuse ]] || skip "needs /dev/fuse"
requires fusermount3 --version
# Debian's interpreter (packaging/install-deps.sh installs it), not whatever
# `python3` is first on PATH: a version manager's shim costs seconds per
# start on a loaded machine. Every helper runs as "$PYTHON" SCRIPT.
PYTHON=/usr/bin/python3
[[ -x $PYTHON ]] || PYTHON=$(command -v python3 || true)
readonly PYTHON
requires "$PYTHON" --version
requires jq --version
requires sha256sum --version
[[ -n ${REMAPFS:-} && -x ${REMAPFS} ]] || fail "REMAPFS is not set to the remapfs binary (run through ctest)"
[[ -n ${REMAPCTL:-} && -x ${REMAPCTL} ]] || fail "REMAPCTL is not set to the remapctl binary (run through ctest)"
T=$(mktemp -d "/tmp/remapfs-it-${TEST_NAME}.XXXXXX")
readonly T
mkdir "$T/cmd"   # what must & co. captured, by process id
trap _on_exit EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP
trap 'exit 1' USR1    # fail in a subshell
trap 'exit 77' USR2   # skip in a subshell
_start_watchdog
log "temp dir $T"
