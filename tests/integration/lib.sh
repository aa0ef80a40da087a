# Shared helpers of the integration tests (sourced, bash). They mount for real
# (FUSE), use loop devices and real filesystems, and need root and /dev/fuse;
# without them a test exits 77, which ctest reports as skipped.
#
# Every test calls `setup` first: it makes a private temp dir $T, installs a
# cleanup trap that ALWAYS unmounts what is mounted under $T (filesystems on
# loop devices, then remapfs mounts: fusermount3 -u, then umount -l), detaches
# the loop devices the test attached, stops the daemons and background jobs it
# started (by pid), and removes $T. A watchdog ends the test (with cleanup)
# before ctest's TIMEOUT would kill it without one.
#
# Environment (set by tests/integration/CMakeLists.txt): REMAPFS, REMAPCTL
# (the binaries), IT_TIMEOUT (ctest's TIMEOUT of the test, seconds).
# IT_KEEP=1 keeps $T (logs, images) after the test, for debugging; mounts,
# loop devices and daemons are cleaned up all the same.

set -euo pipefail
shopt -s inherit_errexit

TEST_NAME=$(basename "$0" .sh)
T=""
LOOPS=()        # loop devices we attached
FS_MOUNTS=()    # filesystems we mounted on loop devices
BG_PIDS=()      # background jobs we started
WATCHDOG_PID=""
MOUNT_SEQ=0
LOG=""          # the log file of the latest mount_set
DAEMON_PID=""   # the daemon of the latest mount_set

log() { printf '[%s %s] %s\n' "$TEST_NAME" "$(date +%T.%3N)" "$*" >&2; }
fail() {
  printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2
  exit 1
}
skip() {
  printf '[%s] SKIP: %s\n' "$TEST_NAME" "$*" >&2
  exit 77
}

# --- setup and cleanup ---------------------------------------------------

setup() {
  [[ ${EUID} -eq 0 ]] || skip "needs root (mounts, loop devices)"
  [[ -c /dev/fuse ]] || skip "needs /dev/fuse"
  local tool
  for tool in fusermount3 python3 jq sha256sum; do
    command -v "$tool" >/dev/null || skip "needs $tool"
  done
  [[ -n ${REMAPFS:-} && -x ${REMAPFS} ]] || fail "REMAPFS is not set to the remapfs binary (run through ctest)"
  [[ -n ${REMAPCTL:-} && -x ${REMAPCTL} ]] || fail "REMAPCTL is not set to the remapctl binary (run through ctest)"
  T=$(mktemp -d "/tmp/remapfs-it-${TEST_NAME}.XXXXXX")
  trap cleanup EXIT
  trap 'log "interrupted"; exit 130' INT TERM HUP
  # The watchdog: ctest kills a test at its TIMEOUT with SIGKILL, which no
  # trap sees; so end it ourselves a little earlier. Children blocked on a
  # mount are killed by pid so that the trap can run.
  # Cleanup takes up to ~20 s when daemons hang.
  local budget=$(( ${IT_TIMEOUT:-120} - 25 ))
  (( budget >= 20 )) || budget=20
  local main=$$
  (
    trap - EXIT INT TERM HUP
    sleep "$budget" &
    wait $! || exit 0
    printf '[%s] FAIL: watchdog: still running after %ss, ending the test\n' "$TEST_NAME" "$budget" >&2
    kill -TERM "$main" 2>/dev/null || true
    local c
    for c in $(pgrep -P "$main" || true); do
      [[ $c == "$BASHPID" ]] || kill -TERM "$c" 2>/dev/null || true
    done
  ) &
  WATCHDOG_PID=$!
  log "temp dir $T"
}

# True when something is mounted at exactly $1 (without touching the mount,
# which may hang or fail when its daemon is dead).
is_mounted() {
  local mnt=$1
  awk -v m="$mnt" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts
}

# pids of remapfs daemons whose command line names $1 (a path under $T).
daemon_pids_for() {
  local needle=$1 pid cmd
  for pid in $(pgrep -x remapfs || true); do
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
    [[ $cmd == *"$needle"* ]] && echo "$pid"
  done
  return 0
}

# True while pid $1 runs (a zombie waiting to be reaped does not count).
pid_alive() {
  local state
  state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM HUP
  [[ -n $WATCHDOG_PID ]] && { pkill_tree "$WATCHDOG_PID"; }
  [[ -z $T ]] && exit "$rc"
  local pid i m dev
  # 1. Background jobs (writers).
  for pid in "${BG_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${BG_PIDS[@]}"; do
    for i in $(seq 50); do pid_alive "$pid" || break; sleep 0.1; done
    pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
  done
  # 2. Filesystems on loop devices, newest first.
  for (( i = ${#FS_MOUNTS[@]} - 1; i >= 0; i-- )); do
    m=${FS_MOUNTS[i]}
    if is_mounted "$m"; then
      timeout 20 umount "$m" 2>/dev/null || umount -l "$m"
    fi
  done
  # 3. Loop devices we attached (and any other still backed by a file in $T).
  for dev in "${LOOPS[@]}" $(losetup -l -n -O NAME,BACK-FILE 2>/dev/null | awk -v t="$T/" 'index($2, t) == 1 { print $1 }'); do
    if losetup "$dev" >/dev/null 2>&1; then
      timeout 20 losetup -d "$dev" 2>/dev/null || log "cleanup: cannot detach $dev"
    fi
  done
  # 4. Every mount under $T, deepest first: fusermount3 -u, then umount -l.
  for m in $(awk -v t="$T/" 'index($2, t) == 1 { print $2 }' /proc/self/mounts | sort -r); do
    for i in 1 2 3; do
      timeout 10 fusermount3 -u "$m" 2>/dev/null && break
      is_mounted "$m" || break
      sleep 0.3
    done
    is_mounted "$m" && umount -l "$m"
  done
  # 5. Daemons we started (all name a path in $T): let them finish their
  # shutdown, then TERM, then KILL.
  for i in $(seq 100); do
    [[ -z $(daemon_pids_for "$T/") ]] && break
    sleep 0.1
  done
  for pid in $(daemon_pids_for "$T/"); do
    log "cleanup: daemon $pid still running, sending SIGTERM"
    kill -CONT "$pid" 2>/dev/null
    kill -TERM "$pid" 2>/dev/null
  done
  for i in $(seq 50); do
    [[ -z $(daemon_pids_for "$T/") ]] && break
    sleep 0.1
  done
  for pid in $(daemon_pids_for "$T/"); do
    log "cleanup: daemon $pid ignored SIGTERM, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null
  done
  # 6. The temp dir, only when nothing is mounted under it any more.
  if awk -v t="$T/" 'index($2, t) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
    log "cleanup: mounts remain under $T; leaving it"
  elif [[ ${IT_KEEP:-0} == 1 ]]; then
    log "cleanup: IT_KEEP=1, keeping $T"
  else
    rm -rf --one-file-system "$T"
  fi
  if (( rc == 0 )); then log "PASS"; elif (( rc != 77 )); then log "exit status $rc"; fi
  exit "$rc"
}

# Kills a process and its direct children, by pid.
pkill_tree() {
  local p
  for p in $(pgrep -P "$1" 2>/dev/null || true); do kill -TERM "$p" 2>/dev/null || true; done
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# Runs a job in the background and remembers it for cleanup. Sets BG_PID.
start_bg() {
  "$@" &
  BG_PID=$!
  BG_PIDS+=("$BG_PID")
}

# start_holder FILE DATA OFFSET OUT: in the background, writes DATA into
# FILE at OFFSET (no fsync) and keeps FILE open, so that a close (and its
# flush) happens only when the holder is killed; prints "written" into OUT
# once the writes are done. Sets BG_PID.
start_holder() {
  start_bg python3 -c 'import os, signal, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
data = open(sys.argv[2], "rb").read()
for i in range(0, len(data), 1 << 20):
    os.pwrite(fd, data[i:i + (1 << 20)], int(sys.argv[3]) + i)
print("written", flush=True)
while True:
    signal.pause()' "$1" "$2" "$3" >"$4"
}

# --- running commands ----------------------------------------------------

# run CMD...: runs it with stdout in $T/out and stderr in $T/err; RC is its
# exit status. Never exits the test by itself.
RC=0
run() {
  set +e
  "$@" >"$T/out" 2>"$T/err"
  RC=$?
  set -e
  return 0
}
OUT() { cat "$T/out"; }
ERR() { cat "$T/err"; }

show_output() {
  echo "--- stdout:" >&2
  head -c 4000 "$T/out" >&2
  echo "--- stderr:" >&2
  head -c 4000 "$T/err" >&2
}

# must CMD...: runs it; fails the test (showing its output) unless it exits 0.
must() {
  run "$@"
  if (( RC != 0 )); then
    show_output
    fail "expected success (exit 0), got exit $RC: $*"
  fi
}

# must_fail_one_line CMD...: it must exit non-zero and print exactly one
# non-empty line on stderr.
must_fail_one_line() {
  run "$@"
  if (( RC == 0 )); then
    show_output
    fail "expected a refusal (non-zero exit), got exit 0: $*"
  fi
  local lines
  lines=$(wc -l <"$T/err")
  if [[ $lines -ne 1 || -z $(tr -d '[:space:]' <"$T/err") ]]; then
    show_output
    fail "expected exactly one line on stderr, got $lines: $*"
  fi
  log "refused (exit $RC): $(ERR)"
}

# --- assertions ----------------------------------------------------------

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

# jqr FILTER: applies a jq filter to the last run's stdout (raw output).
jqr() { jq -r "$1" <"$T/out"; }

# --- sets, mounts, daemons -----------------------------------------------

# make_set PREFIX MAIN_SIZE SPARE_SIZE [SECTOR_SIZE]: creates the sparse
# image $T/PREFIX.img, and with remapctl create the set: SPARE
# $T/PREFIX.spare (of SPARE_SIZE) and DB $T/PREFIX.db. Sets MAIN, SPARE, DB.
make_set() {
  local prefix=$1 main_size=$2 spare_size=$3 sector=${4:-4096}
  MAIN=$T/$prefix.img
  SPARE=$T/$prefix.spare
  DB=$T/$prefix.db
  truncate -s "$main_size" "$MAIN"
  must "$REMAPCTL" create "$MAIN" "$SPARE" --db "$DB" --sector-size "$sector" --spare-size "$spare_size"
  assert_contains "remapctl create output" "created set" "$(OUT)"
  [[ -f $SPARE && -f $DB ]] || fail "remapctl create did not make $SPARE and $DB"
}

# mount_set MAIN SPARE DB MNT [EXTRA_OPTS]: mounts the set with remapfs
# (daemonized), logging to a fresh $T/logs/NAME.N.log (in LOG), and checks
# that the exposed file is there with MAIN's size. Sets LOG, EXPOSED (the
# file in the mount) and DAEMON_PID.
mount_set() {
  local main=$1 spare=$2 db=$3 mnt=$4 extra=${5:-}
  mkdir -p "$mnt" "$T/logs"
  MOUNT_SEQ=$((MOUNT_SEQ + 1))
  LOG=$T/logs/$(basename "$mnt").$MOUNT_SEQ.log
  local opts="spare=$spare,db=$db,log=$LOG"
  [[ -n $extra ]] && opts+=",$extra"
  run timeout 30 "$REMAPFS" "$main" "$mnt" -o "$opts"
  if (( RC != 0 )); then
    show_output
    fail "remapfs failed to mount $main at $mnt (exit $RC)"
  fi
  [[ ! -s $T/err ]] || { show_output; fail "remapfs printed on stderr although it mounted"; }
  local name=""
  [[ ,$extra, =~ ,name=([^,]+), ]] && name=${BASH_REMATCH[1]}
  after_mount "$main" "$mnt" $name
}

# after_mount MAIN MNT [NAME]: checks a fresh mount (one file, NAME or
# MAIN's base name, of MAIN's size); sets EXPOSED and DAEMON_PID.
after_mount() {
  local main=$1 mnt=$2
  is_mounted "$mnt" || fail "$mnt is not mounted after remapfs returned"
  local name=${3:-$(basename "$main")}
  EXPOSED=$mnt/$name
  [[ -f $EXPOSED ]] || fail "$EXPOSED does not exist in the mount"
  local size
  if [[ -b $main ]]; then size=$(blockdev --getsize64 "$main"); else size=$(stat -c %s "$main"); fi
  assert_eq "size of $EXPOSED" "$size" "$(stat -c %s "$EXPOSED")"
  assert_eq "entries in $mnt" "$name" "$(ls -A "$mnt")"
  local pids
  pids=$(daemon_pids_for " $mnt ")
  [[ $(wc -w <<<"$pids") -eq 1 ]] || fail "expected one remapfs daemon for $mnt, found: '$pids'"
  DAEMON_PID=$pids
  log "mounted $main at $mnt (daemon $DAEMON_PID)"
}

# wait_unmounted MNT [SECONDS]: the mount must go away within the bound.
wait_unmounted() {
  local mnt=$1 secs=${2:-10} i
  for (( i = 0; i < secs * 10; i++ )); do
    is_mounted "$mnt" || return 0
    sleep 0.1
  done
  fail "$mnt is still mounted after ${secs}s"
}

# wait_pid_gone PID [SECONDS]: the process must exit within the bound.
wait_pid_gone() {
  local pid=$1 secs=${2:-10} i
  for (( i = 0; i < secs * 10; i++ )); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  fail "process $pid is still running after ${secs}s"
}

# unmount_set MNT: fusermount3 -u; the daemon must exit and the log must
# show the ordered shutdown.
unmount_set() {
  local mnt=$1 pid=${2:-$DAEMON_PID} logf=${3:-$LOG}
  must fusermount3 -u "$mnt"
  wait_unmounted "$mnt" 10
  wait_pid_gone "$pid" 10
  assert_shutdown_log "$logf" "the filesystem was unmounted"
}

# assert_shutdown_log LOG REASON: "shutdown requested: REASON" then
# "shutdown step 1" .. "shutdown step 6", each exactly once, in order, and
# no error line after the request.
assert_shutdown_log() {
  local logf=$1 reason=$2 n line prev=0
  [[ -f $logf ]] || fail "no log file $logf"
  line=$(grep -n -F "shutdown requested: $reason" "$logf" | head -1 | cut -d: -f1)
  [[ -n $line ]] || { tail -20 "$logf" >&2; fail "$logf: no 'shutdown requested: $reason'"; }
  prev=$line
  for n in 1 2 3 4 5 6; do
    local hits
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

# --- the verifying block writer -----------------------------------------

# blocks write|verify FILE --base B --blk N --nb NB --gen G --log LOG ...:
# tests/integration/blocks.py (see its help): writes generation-stamped
# blocks with fsyncs and logs what was acknowledged; verifies after a stop or
# a crash that every acknowledged block is there.
# In the background: start_bg python3 "$BLOCKS_PY" write ... (so that BG_PID
# is python's own pid).
BLOCKS_PY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/blocks.py
blocks() { python3 "$BLOCKS_PY" "$@"; }
# acked_count LOG: fsync-acknowledged batches in a blocks.py log.
acked_count() {
  if [[ -f $1 ]]; then grep -c '^a ' "$1" || true; else echo 0; fi
}

# Milliseconds since the epoch.
now_ms() { date +%s%3N; }

# stop_daemon HOW MNT PID BOUND_S: starts the ordered shutdown with HOW
# (unmount: fusermount3 -u MNT; TERM, INT: that signal to PID) and waits for
# PID to exit. Fails, instead of hanging, when it is still running BOUND_S
# seconds later (and shows the end of its log). Sets STOP_MS (request to exit)
# and STOP_REASON (what the log must say: "shutdown requested: REASON").
stop_daemon() {
  local how=$1 mnt=$2 pid=$3 bound=$4 t0 i
  t0=$(now_ms)
  case $how in
    unmount)
      must fusermount3 -u "$mnt"
      STOP_REASON="the filesystem was unmounted" ;;
    TERM) kill -TERM "$pid"; STOP_REASON="signal Terminated" ;;
    INT) kill -INT "$pid"; STOP_REASON="signal Interrupt" ;;
    *) fail "stop_daemon: unknown way '$how'" ;;
  esac
  for (( i = 0; ; i++ )); do
    pid_alive "$pid" || break
    if (( $(now_ms) - t0 > bound * 1000 )); then
      [[ -n $LOG ]] && tail -15 "$LOG" >&2
      fail "the daemon ($how) is still running ${bound}s after the shutdown was requested"
    fi
    sleep 0.01
  done
  STOP_MS=$(( $(now_ms) - t0 ))
  log "daemon $pid exited ${STOP_MS} ms after $how"
}

# after_orderly_stop MNT DB [LOG]: after stop_daemon: the log shows the
# ordered shutdown for STOP_REASON, steps 1..6; the mount is gone (one left
# dead by a signal while files were open is unmounted here); the set passes
# `remapctl check` and the DB says it was stopped cleanly.
after_orderly_stop() {
  local mnt=$1 db=$2 logf=${3:-$LOG}
  assert_shutdown_log "$logf" "$STOP_REASON"
  if is_mounted "$mnt"; then
    fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"
  fi
  wait_unmounted "$mnt" 10
  must "$REMAPCTL" check "$db"
  assert_contains "remapctl check after the stop" "ok:" "$(OUT)"
  must "$REMAPCTL" status "$db" --json
  assert_eq "was_clean in the DB after an orderly stop" true "$(jqr .was_clean)"
}

# step_ms LOG N: the duration the log gives for shutdown step N, whole ms.
step_ms() {
  sed -n "s/.*\] shutdown step $2: .* in \([0-9.]*\) ms.*/\1/p" "$1" | tail -1 | cut -d. -f1
}

# delayed_io PID: threads of daemon PID asleep in a --delay-ms fault rule
# (nanosleep; nothing else of the daemon's own sleeps that way), not counting
# the threads delayed_io_baseline found sleeping on their own (a sanitizer
# runtime's background thread).
DELAYED_IO_IGNORE=""
delayed_io() {
  local n=0 t
  for t in /proc/"$1"/task/*; do
    [[ " $DELAYED_IO_IGNORE " == *" ${t##*/} "* ]] && continue
    if [[ $(cat "$t/wchan" 2>/dev/null) == *nanosleep* ]]; then n=$((n + 1)); fi
  done
  echo $n
}

# delayed_io_baseline PID: before any delay rule is hit, the threads of PID
# seen in nanosleep over half a second are left out of delayed_io.
delayed_io_baseline() {
  local i t
  DELAYED_IO_IGNORE=""
  for (( i = 0; i < 25; i++ )); do
    for t in /proc/"$1"/task/*; do
      if [[ $(cat "$t/wchan" 2>/dev/null) == *nanosleep* && " $DELAYED_IO_IGNORE " != *" ${t##*/} "* ]]; then
        DELAYED_IO_IGNORE+=" ${t##*/}"
      fi
    done
    sleep 0.02
  done
  [[ -z $DELAYED_IO_IGNORE ]] || log "threads of $1 that sleep on their own:$DELAYED_IO_IGNORE"
}

# wait_delayed_io PID N: until N requests are held by delay rules (10 s
# bound). Call delayed_io_baseline PID first.
wait_delayed_io() {
  local i
  for (( i = 0; i < 500; i++ )); do
    (( $(delayed_io "$1") >= $2 )) && return 0
    sleep 0.02
  done
  fail "expected $2 requests held by delay rules in daemon $1, found $(delayed_io "$1")"
}

# --- the control channel, raw --------------------------------------------

# python3 "$CONTROL_PY" DB call JSON | silent | noread JSON: a raw client of
# the control channel of the daemon that has DB open (see control_client.py).
CONTROL_PY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/control_client.py
# control_socket DB: the abstract socket name of the control channel that DB
# records (the DB is owner-only: as root).
control_socket() {
  python3 -c 'import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(c.execute("SELECT control_socket FROM set_info").fetchone()[0])' "$1"
}
# set_uuid MNT: the UUID of the set mounted at MNT.
set_uuid() {
  must "$REMAPCTL" status "$1" --json
  jqr .uuid
}

# committed_sectors DB: table entries committed to the DB, read with SQLite
# read-only, so that it works while the daemon runs and asks it for nothing
# (remapctl given the DB of a running daemon asks the daemon).
committed_sectors() {
  python3 -c 'import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(c.execute("SELECT count(*) FROM sectors").fetchone()[0])' "$1"
}

# presync FILE...: fdatasync files from outside (puts the page cache of the
# images on disk, so that the daemon's own sync before a commit is quick).
presync() {
  python3 -c 'import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY); os.fdatasync(fd); os.close(fd)' "$@"
}

# --- bytes ---------------------------------------------------------------

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# sha_range FILE OFFSET LENGTH (bytes; multiples of 4096): through O_DIRECT
# reads when DIRECT=1 (the default), so that the mount is really read.
sha_range() {
  local f=$1 off=$2 len=$3 flag=iflag=direct
  [[ ${DIRECT:-1} == 1 ]] || flag=""
  dd if="$f" bs=4096 skip=$((off / 4096)) count=$((len / 4096)) $flag status=none | sha256sum | cut -d' ' -f1
}

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

# assert_unchanged SNAPSHOT_FILE WHAT: the files are byte-identical to the snapshot.
assert_unchanged() {
  local snap=$1 what=$2 files
  files=$(awk '$1 !~ /-wal$/ { print $1 }' "$snap")
  # shellcheck disable=SC2086
  if ! diff -u "$snap" <(snapshot_set $files) >&2; then
    fail "$what modified the set's files"
  fi
}

# random_file PATH BYTES: fills PATH with random bytes.
random_file() {
  head -c "$2" /dev/urandom >"$1"
}

# attach_loop FILE [losetup options]: sets LOOP_DEV.
attach_loop() {
  local file=$1
  shift
  LOOP_DEV=$(losetup -f --show "$@" "$file") || fail "losetup $* $file failed"
  LOOPS+=("$LOOP_DEV")
  log "attached $LOOP_DEV to $file ($*)"
}

detach_loop() {
  local dev=$1 i
  must losetup -d "$dev"
  # Forget it: once free, its number may be reused by someone else.
  local kept=() d
  for d in "${LOOPS[@]}"; do [[ $d == "$dev" ]] || kept+=("$d"); done
  LOOPS=("${kept[@]}")
  # Detach completes when the last reference goes: wait for it (bounded).
  for i in $(seq 100); do
    losetup "$dev" >/dev/null 2>&1 || return 0
    sleep 0.1
  done
  fail "$dev is still attached 10 s after losetup -d"
}

# --- a disk that fails on demand ------------------------------------------

# failing_fs DIR SIZE: a real filesystem on a disk whose writes fail while a
# trigger file exists, for failures that belong to the kernel (writeback
# errors): nbdkit's memory plugin behind its error filter, exposed as a file
# by nbdfuse, a loop device on that file (direct I/O, so errors are not
# absorbed by a second page cache), and ext4 on it, mounted at DIR/fs.
# `touch $FAIL_TRIGGER` makes every write of the disk fail with EIO; removing
# it heals the disk. Sets FAILING_FS and FAIL_TRIGGER. Cleanup unmounts it
# (the filesystem, lazily while a daemon still holds a file there, the loop
# device, then nbdfuse).
failing_fs() {
  local dir=$1 size=$2 i
  local tool
  for tool in nbdkit nbdfuse mkfs.ext4; do
    command -v "$tool" >/dev/null || skip "needs $tool (packages nbdkit, libnbd-bin, e2fsprogs)"
  done
  mkdir -p "$dir/nbd" "$dir/fs"
  FAIL_TRIGGER=$dir/fail
  # Not a start_bg job: cleanup must not kill it before the filesystem on it
  # is gone; it exits when cleanup unmounts it (after what sits on it).
  nbdfuse -P "$dir/nbdfuse.pid" "$dir/nbd/disk" [ nbdkit --filter=error memory "$size" \
    error-pwrite=EIO error-pwrite-rate=100% error-pwrite-file="$FAIL_TRIGGER" ] &
  for (( i = 0; i < 100; i++ )); do
    [[ -s $dir/nbdfuse.pid ]] && break
    sleep 0.1
  done
  [[ -f $dir/nbd/disk ]] || fail "nbdfuse did not expose $dir/nbd/disk"
  attach_loop "$dir/nbd/disk" --direct-io=on
  must mkfs.ext4 -q -F "$LOOP_DEV"
  must mount -o errors=continue "$LOOP_DEV" "$dir/fs"
  FS_MOUNTS+=("$dir/fs")
  FAILING_FS=$dir/fs
  log "failing disk: ext4 at $FAILING_FS on $LOOP_DEV (nbdkit error filter, trigger $FAIL_TRIGGER)"
}
