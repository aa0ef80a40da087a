#!/usr/bin/env bash
# refusals: bad input is refused and changes nothing. Cases (the argument):
#   live      a second daemon on a mounted set is refused and the first keeps
#             working; bad requests to the running daemon change neither its
#             table nor its rules
#   files     mounts of a stopped set with files missing, of another set,
#             or the same file twice
#   options   mounts of a stopped set with bad -o options
#   remapctl  bad remapctl commands on a stopped set (verbs, options,
#             sectors out of range)
#   numbers   numbers remapctl must not wrap around or take (exit 2)
#   create    bad `remapctl create` (over a set, sizes, sector sizes)
#   damaged   a set with a resized MAIN, a DB of random bytes, a damaged or
#             truncated SPARE: refused, and the damage is left as it is
# Offline, each refusal has a non-zero exit and exactly one line on stderr,
# and leaves MAIN, SPARE and DB of both sets byte-identical; afterwards the
# set mounts with the same data and table.
source "$(dirname "$0")/functions.sh"
variant=$(one_of "${1:-}" live files options remapctl numbers create damaged)

SS=4096
# Two sets of the same size: only the UUIDs tell them apart.
a_main=$T/a.img a_spare=$T/a.spare a_db=$T/a.db
b_main=$T/b.img b_spare=$T/b.spare b_db=$T/b.db
mnt=$T/mnt mnt2=$T/mnt2   # mnt2: where refused daemons would mount
make_set "$b_main" "$b_spare" "$b_db" 16M 2M $SS
make_set "$a_main" "$a_spare" "$a_db" 16M 2M $SS
mkdir -p "$mnt2"
random_file "$T/d1" $((16 * SS))
random_file "$T/d2" $((8 * SS))

# mount_a LOG: mounts set A at $mnt with $T/d1 at sector 10, sector 12
# remapped and a write rule on 40-41, so that the table is not empty; prints
# the daemon's pid.
mount_a() {
  local pid
  pid=$(mount_set "$a_main" "$a_spare" "$a_db" "$mnt" "$1")
  must dd if="$T/d1" of="$mnt/a.img" bs=$SS seek=10 conv=notrunc,fsync status=none
  must "$REMAPCTL" remap "$mnt" 12 >/dev/null
  must "$REMAPCTL" fault add "$mnt" --device main --sectors 40-41 --op write >/dev/null
  echo "$pid"
}

# write_d2: $T/d2 at sector 40 of the mounted set A (40 and 41 get remapped).
write_d2() { must dd if="$T/d2" of="$mnt/a.img" bs=$SS seek=40 conv=notrunc,fsync status=none; }

# table TARGET: the sectors of TARGET's table, "A B C".
table() { must "$REMAPCTL" list "$1" --json | jq -r '[.[].sector] | map(tostring) | join(" ")'; }

# assert_a_intact WHAT: set A mounts and serves $T/d1 and $T/d2 with its
# table, it was stopped cleanly; both sets pass `remapctl check`.
assert_a_intact() {
  local pid logf=$T/mount-after.log
  pid=$(mount_set "$a_main" "$a_spare" "$a_db" "$mnt" "$logf")
  assert_eq "data after $1" "$(sha_of "$T/d1")" "$(sha_range "$mnt/a.img" $((10 * SS)) $((16 * SS)))"
  assert_eq "data after $1 (2)" "$(sha_of "$T/d2")" "$(sha_range "$mnt/a.img" $((40 * SS)) $((8 * SS)))"
  assert_eq "table after $1" "12 40 41" "$(table "$mnt")"
  assert_eq "was_clean after $1" true "$(must "$REMAPCTL" status "$mnt" --json | jq -r .was_clean)"
  unmount_set "$mnt" "$pid" "$logf"
  must "$REMAPCTL" check "$a_db" >/dev/null
  must "$REMAPCTL" check "$b_db" >/dev/null
}

# take_snapshot: the bytes of both sets, for assert_unchanged.
take_snapshot() { snapshot_set "$a_main" "$a_spare" "$a_db" "$b_main" "$b_spare" "$b_db" >"$T/snapshot"; }

# exit_status_to FILE CMD...: runs CMD and writes its exit status into FILE;
# returns that status.
exit_status_to() {
  local file=$1 rc=0
  shift
  "$@" || rc=$?
  echo "$rc" >"$file"
  return "$rc"
}

# refused WHAT CMD...: CMD is refused (a non-zero exit, exactly one line on
# stderr), no file of the sets changed, nothing got mounted on $mnt2 and no
# daemon is left; prints the line. The exit status is left in $T/status.
refused() {
  local what=$1 err
  shift
  err=$(must_fail_one_line exit_status_to "$T/status" timeout 30 "$@")
  assert_unchanged "$T/snapshot" "$what"
  ! is_mounted "$mnt2" || fail "$what: something got mounted on $mnt2"
  [[ -z $(daemon_pids_for " $mnt2 ") ]] || fail "$what: a daemon is left running"
  echo "$err"
}

# refused_usage WHAT CMD...: refused, with exit status 2 (bad usage: refused
# before anything was opened); prints the line.
refused_usage() {
  refused "$@"
  assert_eq "$1: exit" 2 "$(<"$T/status")"
}

# stopped_set: set A with its data and table, stopped; the snapshot taken.
stopped_set() {
  local pid
  pid=$(mount_a "$T/mount-a.log")
  write_d2
  unmount_set "$mnt" "$pid" "$T/mount-a.log"
  take_snapshot
}

case $variant in
live)
  pid=$(mount_a "$T/mount-a.log")
  err=$(must_fail_one_line timeout 30 "$REMAPFS" "$a_main" "$mnt2" -o "spare=$a_spare,db=$a_db,log=$T/second.log")
  assert_contains "second daemon" "in use" "$err"
  ! is_mounted "$mnt2" || fail "the refused daemon mounted $mnt2"
  [[ -z $(daemon_pids_for " $mnt2 ") ]] || fail "the refused daemon is still running"
  pid_alive "$pid" || fail "the first daemon died"
  write_d2
  assert_eq "first mount still serves data" "$(sha_of "$T/d1")" "$(sha_range "$mnt/a.img" $((10 * SS)) $((16 * SS)))"
  assert_eq "first mount still writes" "$(sha_of "$T/d2")" "$(sha_range "$mnt/a.img" $((40 * SS)) $((8 * SS)))"
  assert_eq "first mount's table" "12 40 41" "$(table "$mnt")"

  # Bad requests: the daemon answers, nothing may change.
  live_refused() {
    local before
    before=$(must "$REMAPCTL" list "$mnt" --json)
    must_fail_one_line "$REMAPCTL" "$@" >/dev/null
    assert_eq "table after refused '$*'" "$before" "$(must "$REMAPCTL" list "$mnt" --json)"
  }
  live_refused remap "$mnt" 4096            # 16 MiB / 4 KiB = 4096 sectors: 0-4095
  live_refused unremap "$mnt" 99999999999
  live_refused remap "$mnt" -5
  live_refused fault add "$mnt" --device main --sectors 9-3 --op write
  live_refused fault add "$mnt" --device main --sectors 1..4 --op write
  live_refused fault add "$mnt" --device disk --sectors 1-4 --op write
  live_refused fault add "$mnt" --device main --sectors 1-4 --op sometimes
  live_refused fault add "$mnt" --device main --sectors 99999990-99999999 --op write
  live_refused fault remove "$mnt" 999
  # Numbers that CLI11 or sscanf would take and wrap around (issue 7, item 6).
  live_refused fault add "$mnt" --sectors 1 --times -1
  live_refused fault add "$mnt" --sectors 1 --times=-1
  live_refused fault add "$mnt" --sectors 1 --times 18446744073709551616
  live_refused fault add "$mnt" --sectors 1 --times 0
  live_refused fault add "$mnt" --sectors 1 --seed -1
  live_refused fault add "$mnt" --sectors 1 --delay-ms 4294967296
  live_refused fault add "$mnt" --sectors 1 --probability nan
  live_refused fault remove "$mnt" -1
  live_refused fault remove "$mnt" 18446744073709551617
  # The scrub verbs: what does not apply to the scrub's state, bad rates.
  live_refused scrub pause "$mnt"
  live_refused scrub resume "$mnt"
  live_refused scrub stop "$mnt"
  live_refused scrub start "$mnt" --rate -5
  assert_eq "scrub after the refusals" idle "$(must "$REMAPCTL" scrub status "$mnt" --json | jq -r .state)"
  assert_eq "rules after the refused fault commands" 1 "$(must "$REMAPCTL" fault list "$mnt" --json | jq length)"
  unmount_set "$mnt" "$pid" "$T/mount-a.log"
  ;;

files)
  stopped_set
  ro="spare=$a_spare,db=$a_db"
  refused "remapfs: MAIN missing" "$REMAPFS" "$T/nope.img" "$mnt2" -o "$ro" >/dev/null
  refused "remapfs: SPARE missing" "$REMAPFS" "$a_main" "$mnt2" -o "spare=$T/nope.spare,db=$a_db" >/dev/null
  refused "remapfs: DB missing" "$REMAPFS" "$a_main" "$mnt2" -o "spare=$a_spare,db=$T/nope.db" >/dev/null
  [[ ! -e $T/nope.db ]] || fail "remapfs created the missing DB"
  refused "remapfs: mountpoint missing" "$REMAPFS" "$a_main" "$T/nomnt" -o "$ro" >/dev/null
  refused "remapfs: no spare option" "$REMAPFS" "$a_main" "$mnt2" >/dev/null
  refused "remapfs: no mountpoint" "$REMAPFS" "$a_main" -o "$ro" >/dev/null
  assert_contains "SPARE of another set" "set" \
    "$(refused "remapfs: SPARE of another set" "$REMAPFS" "$a_main" "$mnt2" -o "spare=$b_spare,db=$a_db")"
  assert_contains "DB of another set" "set" \
    "$(refused "remapfs: DB of another set" "$REMAPFS" "$a_main" "$mnt2" -o "spare=$a_spare,db=$b_db")"
  assert_eq "check with the SPARE of another set: exit" 1 "$(run "$T/check" "$REMAPCTL" check "$a_db" --spare "$b_spare")"
  assert_contains "check with the SPARE of another set" "problem" "$(cat "$T/check.out")"
  assert_unchanged "$T/snapshot" "check with the SPARE of another set"
  refused "remapfs: MAIN given as SPARE" "$REMAPFS" "$a_main" "$mnt2" -o "spare=$a_main,db=$a_db" >/dev/null
  assert_a_intact "the refusals"
  ;;

options)
  stopped_set
  # refused_option OPT: a mount with -o spare=...,db=...,OPT is refused;
  # prints the line.
  refused_option() { refused "remapfs: -o $1" "$REMAPFS" "$a_main" "$mnt2" -o "spare=$a_spare,db=$a_db,$1"; }
  # Unknown options and flags, bad names, log levels and thread counts.
  for opt in no_such_option=1 frobnicate name=a/b "log=$T/bad.log,log_level=loud" \
             "log=$T/bad.log,log_level=trace" threads=0; do
    refused_option "$opt" >/dev/null
  done
  # Numbers and names (issue 7, item 6): sscanf's %u took "-5" and wrapped it.
  for opt in threads=-1 threads=65 threads= threads=4x commit_ms=-5 commit_ms=99999999999999999999 commit_ms=0 \
             commit_ms=3600001 name=.. name=. name= "name=$(printf 'a\tb')" spare= \
             scrub_every=0 scrub_every=-1 scrub_every=8761 scrub_rate=-1 scrub_rate=100001 scrub_rate=1.5 \
             scrub_rate= scrub_slow_ms=0 scrub_slow_ms=60001 metrics= metrics_every=5 "metrics=$T/no/such/dir/m.prom" \
             "metrics=$T" "metrics=$T/m.prom,metrics_every=0" "metrics=$T/m.prom,metrics_every=-1" \
             "metrics=$T/m.prom,metrics_every=86401" "metrics=$T/m.prom,metrics_every=1.5"; do
    refused_option "$opt" >/dev/null
  done
  assert_contains "remapfs: -o db=" "db= is empty" "$(refused_option db=)"
  assert_a_intact "the refusals"
  ;;

remapctl)
  stopped_set
  refused "remapctl: unknown verb" "$REMAPCTL" frobnicate "$a_db" >/dev/null
  refused "remapctl: unknown option" "$REMAPCTL" status "$a_db" --frobnicate >/dev/null
  refused "remapctl: missing TARGET" "$REMAPCTL" status >/dev/null
  refused "remapctl: TARGET missing" "$REMAPCTL" status "$T/nope.db" >/dev/null
  refused "remapctl: TARGET not a DB" "$REMAPCTL" list "$a_main" >/dev/null
  refused "remapctl: remap out of range" "$REMAPCTL" remap "$a_db" 4096 >/dev/null
  refused "remapctl: unremap out of range" "$REMAPCTL" unremap "$a_db" 99999999 >/dev/null
  refused "remapctl: mark-pending out of range" "$REMAPCTL" mark-pending "$a_db" 4096 >/dev/null
  refused "remapctl: sector not a number" "$REMAPCTL" remap "$a_db" twelve >/dev/null
  refused "remapctl: unremap of a normal sector" "$REMAPCTL" unremap "$a_db" 500 >/dev/null
  refused "remapctl: bad --sectors (reversed)" "$REMAPCTL" fault add "$a_db" --device main --sectors 20-10 --op read >/dev/null
  refused "remapctl: bad --sectors (text)" "$REMAPCTL" fault add "$a_db" --device main --sectors ten --op read >/dev/null
  assert_contains "bad --sectors (empty)" "is not N, A-B or A+COUNT" \
    "$(refused "remapctl: bad --sectors (empty)" "$REMAPCTL" fault add "$a_db" --device main --sectors "" --op read)"
  refused "remapctl: bad --sectors (out of range)" "$REMAPCTL" fault add "$a_db" --device main --sectors 4090-4100 --op read >/dev/null
  refused "remapctl: bad --op" "$REMAPCTL" fault add "$a_db" --device main --sectors 1-2 --op maybe >/dev/null
  refused "remapctl: bad --probability" "$REMAPCTL" fault add "$a_db" --device main --sectors 1-2 --probability 2 >/dev/null
  refused "remapctl: bad list --sectors" "$REMAPCTL" list "$a_db" --sectors 5-1 >/dev/null
  refused "remapctl: fault remove unknown id" "$REMAPCTL" fault remove "$a_db" 4242 >/dev/null
  refused_usage "export: no format" "$REMAPCTL" export "$a_db" >/dev/null
  refused_usage "export: unknown format" "$REMAPCTL" export "$a_db" --format xml >/dev/null
  refused_usage "export: block size" "$REMAPCTL" export "$a_db" --format badblocks --block-size 1000 >/dev/null
  refused_usage "export: block size -1" "$REMAPCTL" export "$a_db" --format badblocks --block-size -1 >/dev/null
  refused_usage "export: block size elsewhere" "$REMAPCTL" export "$a_db" --format md --block-size 4096 >/dev/null
  echo 5 >"$T/list.txt"
  refused_usage "import: no format" "$REMAPCTL" import "$a_db" "$T/list.txt" >/dev/null
  refused_usage "import: no file" "$REMAPCTL" import "$a_db" --format badblocks >/dev/null
  refused_usage "import: unknown format" "$REMAPCTL" import "$a_db" "$T/list.txt" --format csv >/dev/null
  refused_usage "import: --statuses" "$REMAPCTL" import "$a_db" "$T/list.txt" --format ddrescue --statuses '+' >/dev/null
  refused_usage "import: --statuses elsewhere" "$REMAPCTL" import "$a_db" "$T/list.txt" --format badblocks --statuses - >/dev/null
  refused_usage "import: --block-size elsewhere" "$REMAPCTL" import "$a_db" "$T/list.txt" --format md --block-size 512 >/dev/null
  refused_usage "import: --block-size 0" "$REMAPCTL" import "$a_db" "$T/list.txt" --format badblocks --block-size 0 >/dev/null
  refused "import: no such file" "$REMAPCTL" import "$a_db" "$T/nope.txt" --format badblocks >/dev/null
  refused "import: not a mapfile" "$REMAPCTL" import "$a_db" "$T/list.txt" --format ddrescue >/dev/null
  refused "import: JSON of another set's sectors" "$REMAPCTL" import "$a_db" <(echo '{"sector_size": 512, "runs": []}') --format json >/dev/null
  refused "fault import: not a mapfile" "$REMAPCTL" fault import "$a_db" "$T/list.txt" >/dev/null
  refused_usage "fault import: --op" "$REMAPCTL" fault import "$a_db" "$T/list.txt" --op sometimes >/dev/null
  for bad in "--width 7" "--width 513" "--width -1" "--rows 0" "--rows 4097" "--rows 1.5"; do
    # shellcheck disable=SC2086
    refused_usage "map $bad" "$REMAPCTL" map "$a_db" $bad >/dev/null
  done
  refused "map: --svg into a missing directory" "$REMAPCTL" map "$a_db" --svg "$T/no/such/dir/m.svg" >/dev/null
  refused "health: TARGET missing" "$REMAPCTL" health "$T/nope.db" >/dev/null
  refused "metrics: TARGET not a DB" "$REMAPCTL" metrics "$a_main" >/dev/null
  refused_usage "status: --check=x" "$REMAPCTL" status "$a_db" --check=x >/dev/null
  assert_a_intact "the refusals"
  ;;

numbers)
  # Numbers (issue 7, item 6): one line, exit 2 (bad usage), nothing opened.
  stopped_set
  refused_usage "remapctl: --times -1" "$REMAPCTL" fault add "$a_db" --sectors 1 --times -1 >/dev/null
  refused_usage "remapctl: --times=-1" "$REMAPCTL" fault add "$a_db" --sectors 1 --times=-1 >/dev/null
  refused_usage "remapctl: --times 2^64" "$REMAPCTL" fault add "$a_db" --sectors 1 --times 18446744073709551616 >/dev/null
  refused_usage "remapctl: --times 2^63" "$REMAPCTL" fault add "$a_db" --sectors 1 --times 9223372036854775808 >/dev/null
  assert_contains "--times 0" "leave --times out" \
    "$(refused_usage "remapctl: --times 0" "$REMAPCTL" fault add "$a_db" --sectors 1 --times 0)"
  refused_usage "remapctl: --times ''" "$REMAPCTL" fault add "$a_db" --sectors 1 --times "" >/dev/null
  refused_usage "remapctl: --seed -1" "$REMAPCTL" fault add "$a_db" --sectors 1 --seed -1 >/dev/null
  refused_usage "remapctl: --seed 2^64" "$REMAPCTL" fault add "$a_db" --sectors 1 --seed 18446744073709551616 >/dev/null
  refused_usage "remapctl: --delay-ms -1" "$REMAPCTL" fault add "$a_db" --sectors 1 --delay-ms -1 >/dev/null
  refused_usage "remapctl: --delay-ms 2^32" "$REMAPCTL" fault add "$a_db" --sectors 1 --delay-ms 4294967296 >/dev/null
  refused_usage "remapctl: --probability 0" "$REMAPCTL" fault add "$a_db" --sectors 1 --probability 0 >/dev/null
  refused_usage "remapctl: --probability -0.5" "$REMAPCTL" fault add "$a_db" --sectors 1 --probability -0.5 >/dev/null
  refused_usage "remapctl: --probability nan" "$REMAPCTL" fault add "$a_db" --sectors 1 --probability nan >/dev/null
  refused_usage "remapctl: --probability 1e-400" "$REMAPCTL" fault add "$a_db" --sectors 1 --probability 1e-400 >/dev/null
  refused_usage "remapctl: events --limit -1" "$REMAPCTL" events "$a_db" --limit -1 >/dev/null
  refused_usage "remapctl: events --limit 0" "$REMAPCTL" events "$a_db" --limit 0 >/dev/null
  refused_usage "remapctl: events --limit 2^64" "$REMAPCTL" events "$a_db" --limit 18446744073709551616 >/dev/null
  refused_usage "remapctl: fault remove -1" "$REMAPCTL" fault remove "$a_db" -1 >/dev/null
  refused_usage "remapctl: fault remove 0" "$REMAPCTL" fault remove "$a_db" 0 >/dev/null
  refused_usage "remapctl: fault remove 1x" "$REMAPCTL" fault remove "$a_db" 1x >/dev/null
  assert_contains "list --sectors ''" "is not N, A-B or A+COUNT" \
    "$(refused_usage "remapctl: list --sectors ''" "$REMAPCTL" list "$a_db" --sectors "")"
  refused_usage "remapctl: list --sectors=" "$REMAPCTL" list "$a_db" --sectors= >/dev/null
  refused_usage "remapctl: remap -1" "$REMAPCTL" remap "$a_db" -1 >/dev/null
  refused_usage "remapctl: scrub --rate -1" "$REMAPCTL" scrub start "$a_db" --rate -1 >/dev/null
  refused_usage "remapctl: scrub --rate 100001" "$REMAPCTL" scrub resume "$a_db" --rate 100001 >/dev/null
  refused_usage "remapctl: scrub --rate 2.5" "$REMAPCTL" scrub start "$a_db" --rate 2.5 >/dev/null
  refused_usage "remapctl: scrub frobnicate" "$REMAPCTL" scrub frobnicate "$a_db" >/dev/null
  refused_usage "remapctl: scrub pause --rate" "$REMAPCTL" scrub pause "$a_db" --rate 5 >/dev/null
  assert_contains "scrub start offline" "a scrub runs in the daemon" \
    "$(refused "remapctl: scrub start offline" "$REMAPCTL" scrub start "$a_db")"
  assert_a_intact "the refusals"
  ;;

create)
  stopped_set
  refused_usage "remapctl: --sector-size 2^32+4096" "$REMAPCTL" create "$T/odd.img" "$T/odd.spare" --db "$T/odd.db" --sector-size 4294971392 --spare-size 4M >/dev/null
  refused_usage "remapctl: --sector-size -4096" "$REMAPCTL" create "$T/odd.img" "$T/odd.spare" --db "$T/odd.db" --sector-size -4096 --spare-size 4M >/dev/null
  refused "remapctl: create over an existing set" "$REMAPCTL" create "$a_main" "$a_spare" --db "$a_db" >/dev/null
  refused "remapctl: create with SPARE of a set" "$REMAPCTL" create "$a_main" "$a_spare" --db "$T/new.db" >/dev/null
  [[ ! -e $T/new.db ]] || fail "create made $T/new.db"
  refused "remapctl: create with an existing DB" "$REMAPCTL" create "$a_main" "$T/new.spare" --db "$a_db" --spare-size 4M >/dev/null
  [[ ! -e $T/new.spare ]] || fail "create made $T/new.spare"
  refused "remapctl: create MAIN as SPARE" "$REMAPCTL" create "$a_main" "$a_main" --db "$T/new.db" >/dev/null
  # A sector size not dividing MAIN, a bad sector size, MAIN missing, a bad
  # spare size.
  truncate -s $((16 * 1024 * 1024 + 512)) "$T/odd.img"
  refused "remapctl: sector size does not divide MAIN" "$REMAPCTL" create "$T/odd.img" "$T/odd.spare" --db "$T/odd.db" --sector-size 4096 --spare-size 4M >/dev/null
  refused "remapctl: sector size 1000" "$REMAPCTL" create "$T/odd.img" "$T/odd.spare" --db "$T/odd.db" --sector-size 1000 --spare-size 4M >/dev/null
  refused "remapctl: MAIN missing at create" "$REMAPCTL" create "$T/none.img" "$T/odd.spare" --db "$T/odd.db" --spare-size 4M >/dev/null
  refused "remapctl: bad --spare-size" "$REMAPCTL" create "$T/odd.img" "$T/odd.spare" --db "$T/odd.db" --spare-size lots >/dev/null
  for f in odd.spare odd.db odd.spare.db; do
    [[ ! -e $T/$f ]] || fail "a refused create left $T/$f"
  done
  assert_eq "odd MAIN untouched" $((16 * 1024 * 1024 + 512)) "$(stat -c %s "$T/odd.img")"
  assert_eq "odd MAIN still zeros" "$(head -c $((16 * 1024 * 1024 + 512)) /dev/zero | sha256sum | cut -d' ' -f1)" "$(sha_of "$T/odd.img")"
  assert_a_intact "the refusals"
  ;;

damaged)
  stopped_set
  [[ ! -e $a_db-wal || ! -s $a_db-wal ]] || fail "the DB has a non-empty WAL after a clean shutdown"
  ro="spare=$a_spare,db=$a_db"
  # Each damage is made on the set, refused, then undone from a backup.
  backup() { local f; for f in "$a_main" "$a_spare" "$a_db"; do cp --sparse=always "$f" "$f.bak"; done; }
  restore() { local f; for f in "$a_main" "$a_spare" "$a_db"; do cp --sparse=always "$f.bak" "$f"; rm -f "$f.bak"; done; }

  # MAIN resized (grown by one sector).
  backup
  truncate -s +$SS "$a_main"
  take_snapshot
  refused "remapfs: MAIN resized" "$REMAPFS" "$a_main" "$mnt2" -o "$ro" >/dev/null
  refused "remapctl remap: MAIN resized" "$REMAPCTL" remap "$a_db" 5 >/dev/null
  assert_eq "check on a resized MAIN: exit" 1 "$(run "$T/check" "$REMAPCTL" check "$a_db")"
  assert_unchanged "$T/snapshot" "check on a resized MAIN"
  restore

  # DB replaced by random bytes (same size).
  backup
  random_file "$T/junk" "$(stat -c %s "$a_db")"
  cp "$T/junk" "$a_db"
  take_snapshot
  refused "remapfs: DB of random bytes" "$REMAPFS" "$a_main" "$mnt2" -o "$ro" >/dev/null
  refused "remapctl status: DB of random bytes" "$REMAPCTL" status "$a_db" >/dev/null
  refused "remapctl remap: DB of random bytes" "$REMAPCTL" remap "$a_db" 5 >/dev/null
  (( $(run "$T/check" "$REMAPCTL" check "$a_db") != 0 )) || fail "check passed a DB of random bytes"
  assert_unchanged "$T/snapshot" "check on a DB of random bytes"
  restore

  # SPARE header damaged (bytes inside the UUID and sizes).
  backup
  printf 'garbage-garbage-garbage-garbage!' | dd of="$a_spare" bs=1 seek=12 conv=notrunc status=none
  take_snapshot
  refused "remapfs: SPARE header corrupt" "$REMAPFS" "$a_main" "$mnt2" -o "$ro" >/dev/null
  refused "remapctl remap: SPARE header corrupt" "$REMAPCTL" remap "$a_db" 5 >/dev/null
  assert_eq "check on a corrupt SPARE header: exit" 1 "$(run "$T/check" "$REMAPCTL" check "$a_db")"
  assert_contains "check on a corrupt SPARE header" "problem" "$(cat "$T/check.out")"
  assert_unchanged "$T/snapshot" "check on a corrupt SPARE header"
  restore

  # SPARE truncated (slots missing).
  backup
  truncate -s 1M "$a_spare"
  take_snapshot
  refused "remapfs: SPARE truncated" "$REMAPFS" "$a_main" "$mnt2" -o "$ro" >/dev/null
  restore

  assert_a_intact "the damage was undone"
  ;;
esac
