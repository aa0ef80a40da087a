#!/usr/bin/env bash
# refusals: a second daemon on a mounted set is refused and the first keeps
# working; then every kind of bad input through the CLIs is refused with a
# non-zero exit and exactly one line on stderr, and leaves MAIN, SPARE and
# DB byte-identical.
source "$(dirname "$0")/lib.sh"
setup

SS=4096
make_set b 16M 2M $SS   # same size as A: only the UUIDs tell them apart
B_MAIN=$MAIN B_SPARE=$SPARE B_DB=$DB
make_set a 16M 2M $SS
A_MAIN=$MAIN A_SPARE=$SPARE A_DB=$DB
MNT=$T/mnt
MNT2=$T/mnt2
mkdir -p "$MNT2"

mount_set "$A_MAIN" "$A_SPARE" "$A_DB" "$MNT"
A_PID=$DAEMON_PID A_LOG=$LOG F=$EXPOSED
random_file "$T/d1" $((16 * SS))
must dd if="$T/d1" of="$F" bs=$SS seek=10 conv=notrunc,fsync status=none
must "$REMAPCTL" remap "$MNT" 12       # one live remap, so the table is not empty
must "$REMAPCTL" fault add "$MNT" --device main --sectors 40-41 --op write

# --- a second daemon on the same set -------------------------------------
must_fail_one_line timeout 30 "$REMAPFS" "$A_MAIN" "$MNT2" -o "spare=$A_SPARE,db=$A_DB,log=$T/logs/second.log"
assert_contains "second daemon" "in use" "$(ERR)"
is_mounted "$MNT2" && fail "the refused daemon mounted $MNT2"
[[ -z $(daemon_pids_for " $MNT2 ") ]] || fail "the refused daemon is still running"
pid_alive "$A_PID" || fail "the first daemon died"
random_file "$T/d2" $((8 * SS))
must dd if="$T/d2" of="$F" bs=$SS seek=40 conv=notrunc,fsync status=none
assert_eq "first mount still serves data" "$(sha_of "$T/d1")" "$(sha_range "$F" $((10 * SS)) $((16 * SS)))"
assert_eq "first mount still writes" "$(sha_of "$T/d2")" "$(sha_range "$F" $((40 * SS)) $((8 * SS)))"
must "$REMAPCTL" list "$MNT" --json
assert_eq "first mount's table" "12 40 41" "$(jqr '[.[].sector] | map(tostring) | join(" ")')"

# --- live bad input (the daemon answers, nothing may change) ------------
live_refused() {
  must "$REMAPCTL" list "$MNT" --json
  local before
  before=$(OUT)
  must_fail_one_line "$REMAPCTL" "$@"
  must "$REMAPCTL" list "$MNT" --json
  assert_eq "table after refused '$*'" "$before" "$(OUT)"
}
live_refused remap "$MNT" 4096            # 16 MiB / 4 KiB = 4096 sectors: 0-4095
live_refused unremap "$MNT" 99999999999
live_refused remap "$MNT" -5
live_refused fault add "$MNT" --device main --sectors 9-3 --op write
live_refused fault add "$MNT" --device main --sectors 1..4 --op write
live_refused fault add "$MNT" --device disk --sectors 1-4 --op write
live_refused fault add "$MNT" --device main --sectors 1-4 --op sometimes
live_refused fault add "$MNT" --device main --sectors 99999990-99999999 --op write
live_refused fault remove "$MNT" 999
# Numbers that CLI11 or sscanf would take and wrap around (issue 7, item 6).
live_refused fault add "$MNT" --sectors 1 --times -1
live_refused fault add "$MNT" --sectors 1 --times=-1
live_refused fault add "$MNT" --sectors 1 --times 18446744073709551616
live_refused fault add "$MNT" --sectors 1 --times 0
live_refused fault add "$MNT" --sectors 1 --seed -1
live_refused fault add "$MNT" --sectors 1 --delay-ms 4294967296
live_refused fault add "$MNT" --sectors 1 --probability nan
live_refused fault remove "$MNT" -1
live_refused fault remove "$MNT" 18446744073709551617
must "$REMAPCTL" fault list "$MNT" --json
assert_eq "rules after the refused fault commands" 1 "$(jqr length)"

unmount_set "$MNT" "$A_PID" "$A_LOG"

# --- offline bad input ---------------------------------------------------
SNAP=$T/snapshot
take_snapshot() { snapshot_set "$A_MAIN" "$A_SPARE" "$A_DB" "$B_MAIN" "$B_SPARE" "$B_DB" >"$SNAP"; }
take_snapshot

# refused WHAT CMD...: one line, non-zero, nothing changed, nothing mounted.
refused() {
  local what=$1
  shift
  must_fail_one_line timeout 30 "$@"
  assert_unchanged "$SNAP" "$what"
  is_mounted "$MNT2" && fail "$what: something got mounted on $MNT2"
  [[ -z $(daemon_pids_for " $MNT2 ") ]] || fail "$what: a daemon is left running"
  return 0
}
RO="spare=$A_SPARE,db=$A_DB"

refused "remapfs: MAIN missing" "$REMAPFS" "$T/nope.img" "$MNT2" -o "$RO"
refused "remapfs: SPARE missing" "$REMAPFS" "$A_MAIN" "$MNT2" -o "spare=$T/nope.spare,db=$A_DB"
refused "remapfs: DB missing" "$REMAPFS" "$A_MAIN" "$MNT2" -o "spare=$A_SPARE,db=$T/nope.db"
[[ ! -e $T/nope.db ]] || fail "remapfs created the missing DB"
refused "remapfs: mountpoint missing" "$REMAPFS" "$A_MAIN" "$T/nomnt" -o "$RO"
refused "remapfs: no spare option" "$REMAPFS" "$A_MAIN" "$MNT2"
refused "remapfs: no mountpoint" "$REMAPFS" "$A_MAIN" -o "$RO"
refused "remapfs: SPARE of another set" "$REMAPFS" "$A_MAIN" "$MNT2" -o "spare=$B_SPARE,db=$A_DB"
assert_contains "SPARE of another set" "set" "$(ERR)"
refused "remapfs: DB of another set" "$REMAPFS" "$A_MAIN" "$MNT2" -o "spare=$A_SPARE,db=$B_DB"
assert_contains "DB of another set" "set" "$(ERR)"
run "$REMAPCTL" check "$A_DB" --spare "$B_SPARE"
assert_eq "check with the SPARE of another set: exit" 1 "$RC"
assert_contains "check with the SPARE of another set" "problem" "$(OUT)"
assert_unchanged "$SNAP" "check with the SPARE of another set"
refused "remapfs: MAIN given as SPARE" "$REMAPFS" "$A_MAIN" "$MNT2" -o "spare=$A_MAIN,db=$A_DB"
refused "remapfs: unknown -o option" "$REMAPFS" "$A_MAIN" "$MNT2" -o "$RO,no_such_option=1"
refused "remapfs: unknown -o flag" "$REMAPFS" "$A_MAIN" "$MNT2" -o "$RO,frobnicate"
refused "remapfs: bad name=" "$REMAPFS" "$A_MAIN" "$MNT2" -o "$RO,name=a/b"
refused "remapfs: bad log_level=" "$REMAPFS" "$A_MAIN" "$MNT2" -o "$RO,log=$T/logs/bad.log,log_level=loud"
refused "remapfs: log_level= outside the four" "$REMAPFS" "$A_MAIN" "$MNT2" -o "$RO,log=$T/logs/bad.log,log_level=trace"
refused "remapfs: bad threads=" "$REMAPFS" "$A_MAIN" "$MNT2" -o "$RO,threads=0"
# Numbers and names (issue 7, item 6): sscanf's %u took "-5" and wrapped it.
for opt in threads=-1 threads=65 threads= threads=4x commit_ms=-5 commit_ms=99999999999999999999 commit_ms=0 \
           commit_ms=3600001 name=.. name=. name= "name=$(printf 'a\tb')" spare= db=; do
  refused "remapfs: -o $opt" "$REMAPFS" "$A_MAIN" "$MNT2" -o "$RO,$opt"
done
assert_contains "remapfs: -o db= (the last one)" "db= is empty" "$(ERR)"
refused "remapctl: unknown verb" "$REMAPCTL" frobnicate "$A_DB"
refused "remapctl: unknown option" "$REMAPCTL" status "$A_DB" --frobnicate
refused "remapctl: missing TARGET" "$REMAPCTL" status
refused "remapctl: TARGET missing" "$REMAPCTL" status "$T/nope.db"
refused "remapctl: TARGET not a DB" "$REMAPCTL" list "$A_MAIN"
refused "remapctl: remap out of range" "$REMAPCTL" remap "$A_DB" 4096
refused "remapctl: unremap out of range" "$REMAPCTL" unremap "$A_DB" 99999999
refused "remapctl: mark-pending out of range" "$REMAPCTL" mark-pending "$A_DB" 4096
refused "remapctl: sector not a number" "$REMAPCTL" remap "$A_DB" twelve
refused "remapctl: unremap of a normal sector" "$REMAPCTL" unremap "$A_DB" 500
refused "remapctl: bad --sectors (reversed)" "$REMAPCTL" fault add "$A_DB" --device main --sectors 20-10 --op read
refused "remapctl: bad --sectors (text)" "$REMAPCTL" fault add "$A_DB" --device main --sectors ten --op read
refused "remapctl: bad --sectors (empty)" "$REMAPCTL" fault add "$A_DB" --device main --sectors "" --op read
assert_contains "bad --sectors (empty)" "is not N, A-B or A+COUNT" "$(ERR)"
refused "remapctl: bad --sectors (out of range)" "$REMAPCTL" fault add "$A_DB" --device main --sectors 4090-4100 --op read
refused "remapctl: bad --op" "$REMAPCTL" fault add "$A_DB" --device main --sectors 1-2 --op maybe
refused "remapctl: bad --probability" "$REMAPCTL" fault add "$A_DB" --device main --sectors 1-2 --probability 2
refused "remapctl: bad list --sectors" "$REMAPCTL" list "$A_DB" --sectors 5-1
refused "remapctl: fault remove unknown id" "$REMAPCTL" fault remove "$A_DB" 4242
# Numbers (issue 7, item 6): one line, exit 2 (bad usage), nothing opened.
refused_usage() {
  local what=$1
  refused "$@"
  assert_eq "$what: exit" 2 "$RC"
}
refused_usage "remapctl: --times -1" "$REMAPCTL" fault add "$A_DB" --sectors 1 --times -1
refused_usage "remapctl: --times=-1" "$REMAPCTL" fault add "$A_DB" --sectors 1 --times=-1
refused_usage "remapctl: --times 2^64" "$REMAPCTL" fault add "$A_DB" --sectors 1 --times 18446744073709551616
refused_usage "remapctl: --times 2^63" "$REMAPCTL" fault add "$A_DB" --sectors 1 --times 9223372036854775808
refused_usage "remapctl: --times 0" "$REMAPCTL" fault add "$A_DB" --sectors 1 --times 0
assert_contains "--times 0" "leave --times out" "$(ERR)"
refused_usage "remapctl: --times ''" "$REMAPCTL" fault add "$A_DB" --sectors 1 --times ""
refused_usage "remapctl: --seed -1" "$REMAPCTL" fault add "$A_DB" --sectors 1 --seed -1
refused_usage "remapctl: --seed 2^64" "$REMAPCTL" fault add "$A_DB" --sectors 1 --seed 18446744073709551616
refused_usage "remapctl: --delay-ms -1" "$REMAPCTL" fault add "$A_DB" --sectors 1 --delay-ms -1
refused_usage "remapctl: --delay-ms 2^32" "$REMAPCTL" fault add "$A_DB" --sectors 1 --delay-ms 4294967296
refused_usage "remapctl: --probability 0" "$REMAPCTL" fault add "$A_DB" --sectors 1 --probability 0
refused_usage "remapctl: --probability -0.5" "$REMAPCTL" fault add "$A_DB" --sectors 1 --probability -0.5
refused_usage "remapctl: --probability nan" "$REMAPCTL" fault add "$A_DB" --sectors 1 --probability nan
refused_usage "remapctl: --probability 1e-400" "$REMAPCTL" fault add "$A_DB" --sectors 1 --probability 1e-400
refused_usage "remapctl: events --limit -1" "$REMAPCTL" events "$A_DB" --limit -1
refused_usage "remapctl: events --limit 0" "$REMAPCTL" events "$A_DB" --limit 0
refused_usage "remapctl: events --limit 2^64" "$REMAPCTL" events "$A_DB" --limit 18446744073709551616
refused_usage "remapctl: fault remove -1" "$REMAPCTL" fault remove "$A_DB" -1
refused_usage "remapctl: fault remove 0" "$REMAPCTL" fault remove "$A_DB" 0
refused_usage "remapctl: fault remove 1x" "$REMAPCTL" fault remove "$A_DB" 1x
refused_usage "remapctl: list --sectors ''" "$REMAPCTL" list "$A_DB" --sectors ""
assert_contains "list --sectors ''" "is not N, A-B or A+COUNT" "$(ERR)"
refused_usage "remapctl: list --sectors=" "$REMAPCTL" list "$A_DB" --sectors=
refused_usage "remapctl: remap -1" "$REMAPCTL" remap "$A_DB" -1
refused_usage "remapctl: --sector-size 2^32+4096" "$REMAPCTL" create "$T/odd.img" "$T/odd.spare" --db "$T/odd.db" --sector-size 4294971392 --spare-size 4M
refused_usage "remapctl: --sector-size -4096" "$REMAPCTL" create "$T/odd.img" "$T/odd.spare" --db "$T/odd.db" --sector-size -4096 --spare-size 4M
refused "remapctl: create over an existing set" "$REMAPCTL" create "$A_MAIN" "$A_SPARE" --db "$A_DB"
refused "remapctl: create with SPARE of a set" "$REMAPCTL" create "$A_MAIN" "$A_SPARE" --db "$T/new.db"
[[ ! -e $T/new.db ]] || fail "create made $T/new.db"
refused "remapctl: create with an existing DB" "$REMAPCTL" create "$A_MAIN" "$T/new.spare" --db "$A_DB" --spare-size 4M
[[ ! -e $T/new.spare ]] || fail "create made $T/new.spare"
refused "remapctl: create MAIN as SPARE" "$REMAPCTL" create "$A_MAIN" "$A_MAIN" --db "$T/new.db"

# create: sector size not dividing MAIN, and a bad sector size.
truncate -s $((16 * 1024 * 1024 + 512)) "$T/odd.img"
refused "remapctl: sector size does not divide MAIN" "$REMAPCTL" create "$T/odd.img" "$T/odd.spare" --db "$T/odd.db" --sector-size 4096 --spare-size 4M
refused "remapctl: sector size 1000" "$REMAPCTL" create "$T/odd.img" "$T/odd.spare" --db "$T/odd.db" --sector-size 1000 --spare-size 4M
refused "remapctl: MAIN missing at create" "$REMAPCTL" create "$T/none.img" "$T/odd.spare" --db "$T/odd.db" --spare-size 4M
refused "remapctl: bad --spare-size" "$REMAPCTL" create "$T/odd.img" "$T/odd.spare" --db "$T/odd.db" --spare-size lots
for f in odd.spare odd.db odd.spare.db; do
  [[ ! -e $T/$f ]] || fail "a refused create left $T/$f"
done
assert_eq "odd MAIN untouched" $((16 * 1024 * 1024 + 512)) "$(stat -c %s "$T/odd.img")"
assert_eq "odd MAIN still zeros" "$(head -c $((16 * 1024 * 1024 + 512)) /dev/zero | sha256sum | cut -d' ' -f1)" "$(sha_of "$T/odd.img")"

# --- damaged sets: refused, and the damage is left as it is --------------
backup() { local f; for f in "$A_MAIN" "$A_SPARE" "$A_DB"; do cp --sparse=always "$f" "$f.bak"; done; }
restore() { local f; for f in "$A_MAIN" "$A_SPARE" "$A_DB"; do cp --sparse=always "$f.bak" "$f"; rm -f "$f.bak"; done; }
[[ ! -e $A_DB-wal || ! -s $A_DB-wal ]] || fail "the DB has a non-empty WAL after a clean shutdown"

# MAIN resized (grown by one sector).
backup
truncate -s +$SS "$A_MAIN"
take_snapshot
refused "remapfs: MAIN resized" "$REMAPFS" "$A_MAIN" "$MNT2" -o "$RO"
refused "remapctl remap: MAIN resized" "$REMAPCTL" remap "$A_DB" 5
run "$REMAPCTL" check "$A_DB"
assert_eq "check on a resized MAIN: exit" 1 "$RC"
assert_unchanged "$SNAP" "check on a resized MAIN"
restore

# DB replaced by random bytes (same size).
backup
random_file "$T/junk" "$(stat -c %s "$A_DB")"
cp "$T/junk" "$A_DB"
take_snapshot
refused "remapfs: DB of random bytes" "$REMAPFS" "$A_MAIN" "$MNT2" -o "$RO"
refused "remapctl status: DB of random bytes" "$REMAPCTL" status "$A_DB"
refused "remapctl remap: DB of random bytes" "$REMAPCTL" remap "$A_DB" 5
run "$REMAPCTL" check "$A_DB"
(( RC != 0 )) || fail "check passed a DB of random bytes"
assert_unchanged "$SNAP" "check on a DB of random bytes"
restore

# SPARE header damaged (bytes inside the UUID and sizes).
backup
printf 'garbage-garbage-garbage-garbage!' | dd of="$A_SPARE" bs=1 seek=12 conv=notrunc status=none
take_snapshot
refused "remapfs: SPARE header corrupt" "$REMAPFS" "$A_MAIN" "$MNT2" -o "$RO"
refused "remapctl remap: SPARE header corrupt" "$REMAPCTL" remap "$A_DB" 5
run "$REMAPCTL" check "$A_DB"
assert_eq "check on a corrupt SPARE header: exit" 1 "$RC"
assert_contains "check on a corrupt SPARE header" "problem" "$(OUT)"
assert_unchanged "$SNAP" "check on a corrupt SPARE header"
restore

# SPARE truncated (slots missing).
backup
truncate -s 1M "$A_SPARE"
take_snapshot
refused "remapfs: SPARE truncated" "$REMAPFS" "$A_MAIN" "$MNT2" -o "$RO"
restore

# After all that, the set is intact: mounts, same data, same table.
take_snapshot
mount_set "$A_MAIN" "$A_SPARE" "$A_DB" "$MNT"
assert_eq "data after the refusals" "$(sha_of "$T/d1")" "$(sha_range "$EXPOSED" $((10 * SS)) $((16 * SS)))"
assert_eq "data after the refusals (2)" "$(sha_of "$T/d2")" "$(sha_range "$EXPOSED" $((40 * SS)) $((8 * SS)))"
must "$REMAPCTL" list "$MNT" --json
assert_eq "table after the refusals" "12 40 41" "$(jqr '[.[].sector] | map(tostring) | join(" ")')"
must "$REMAPCTL" status "$MNT" --json
assert_eq "was_clean after the refusals" true "$(jqr .was_clean)"
unmount_set "$MNT"
must "$REMAPCTL" check "$A_DB"
must "$REMAPCTL" check "$B_DB"
