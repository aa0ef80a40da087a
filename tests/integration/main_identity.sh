#!/usr/bin/env bash
# main_identity: MAIN's identity is recorded at create and checked at every
# open. Cases (the argument):
#   file    another image of the same size in MAIN's place (under another
#           name, or renamed into MAIN's) is refused with one line and
#           nothing changes; a rename of MAIN itself is fine; a clone is
#           taken only after `remapctl rebind`; create refuses a MAIN that
#           belongs to a set
#   loop    the same for a loop device as MAIN
#   create  SPARE's space is reserved (a too small host filesystem is
#           refused, leaving no file), --spare-size 0 is out of range, a
#           spare with more slots than the numbering has is refused (to be
#           made or existing) leaving nothing, and the directory is synced
#           after the DB's rename
source "$(dirname "$0")/functions.sh"

SS=4096
mnt=$T/mnt

# write_data MAIN SPARE DB LOG: mounts the set, writes $T/d1 at sector 100
# and remaps sector 110, unmounts.
write_data() {
  local logf=$4 pid
  random_file "$T/d1" $((32 * SS))
  pid=$(mount_set "$1" "$2" "$3" "$mnt" "$logf")
  must dd if="$T/d1" of="$mnt/$(basename "$1")" bs=$SS seek=100 conv=notrunc,fsync status=none
  must "$REMAPCTL" remap "$mnt" 110 >/dev/null
  unmount_set "$mnt" "$pid" "$logf"
}

# check_data WHAT MAIN SPARE DB LOG: the set mounts with MAIN and serves
# what write_data wrote, with its table.
check_data() {
  local what=$1 main=$2 logf=$5 pid
  pid=$(mount_set "$main" "$3" "$4" "$mnt" "$logf")
  assert_eq "data through $what" "$(sha_of "$T/d1")" \
    "$(sha_range "$mnt/$(basename "$main")" $((100 * SS)) $((32 * SS)))"
  assert_eq "table through $what" 110 "$(must "$REMAPCTL" list "$mnt" --json | jq -r '[.[].sector] | map(tostring) | join(" ")')"
  unmount_set "$mnt" "$pid" "$logf"
}

# refused_mount WHAT MAIN SPARE DB NEEDLE: remapfs refuses with one line
# saying NEEDLE, changes no file of the set, mounts nothing.
refused_mount() {
  local what=$1 main=$2 spare=$3 db=$4 needle=$5 err
  snapshot_set "$main" "$spare" "$db" >"$T/snapshot"
  mkdir -p "$mnt"
  err=$(must_fail_one_line timeout 30 "$REMAPFS" "$main" "$mnt" -o "spare=$spare,db=$db")
  assert_contains "$what" "$needle" "$err"
  assert_unchanged "$T/snapshot" "$what"
  ! is_mounted "$mnt" || fail "$what: mounted"
}

case $(one_of "${1:-}" file loop create) in
file)
  main=$T/a.img spare=$T/a.spare db=$T/a.db
  make_set "$main" "$spare" "$db" 16M 2M $SS
  write_data "$main" "$spare" "$db" "$T/mount-data.log"

  # Another file of the same size.
  random_file "$T/other.img" $((16 * 1024 * 1024))
  refused_mount "another MAIN of the same size" "$T/other.img" "$spare" "$db" "remapctl rebind $db --main $T/other.img"
  mv "$main" "$T/saved.img"
  mv "$T/other.img" "$main"
  refused_mount "another file renamed into MAIN's place" "$main" "$spare" "$db" "is not the disk or file"
  snapshot_set "$main" "$spare" "$db" >"$T/snapshot"
  err=$(must_fail_one_line "$REMAPCTL" remap "$db" 5)
  assert_contains "remapctl remap with the wrong MAIN" "is not the disk or file" "$err"
  assert_eq "check with the wrong MAIN: exit" 1 "$(run "$T/check" "$REMAPCTL" check "$db")"
  assert_contains "check with the wrong MAIN" "is not the disk or file" "$(cat "$T/check.out")"
  assert_unchanged "$T/snapshot" "remapctl with the wrong MAIN"

  # MAIN itself, renamed: accepted.
  mv "$T/saved.img" "$T/renamed.img"
  check_data "the renamed MAIN" "$T/renamed.img" "$spare" "$db" "$T/mount-renamed.log"

  # A clone: refused until rebound.
  cp --sparse=always "$T/renamed.img" "$T/clone.img"
  refused_mount "a clone of MAIN" "$T/clone.img" "$spare" "$db" "remapctl rebind"
  truncate -s 8M "$T/small.img"
  snapshot_set "$T/small.img" "$spare" "$db" >"$T/snapshot"
  err=$(must_fail_one_line "$REMAPCTL" rebind "$db" --main "$T/small.img")
  assert_contains "rebind to a MAIN of another size" "bytes but the set was made for" "$err"
  assert_unchanged "$T/snapshot" "a refused rebind"
  assert_contains "rebind" "now has MAIN $T/clone.img" "$(must "$REMAPCTL" rebind "$db" --main "$T/clone.img")"
  check_data "the clone" "$T/clone.img" "$spare" "$db" "$T/mount-clone.log"
  refused_mount "the old MAIN after the rebind" "$T/renamed.img" "$spare" "$db" "is not the disk or file"

  # create refuses a MAIN that belongs to a set.
  snapshot_set "$T/clone.img" "$spare" "$db" >"$T/snapshot"
  err=$(must_fail_one_line "$REMAPCTL" create "$T/clone.img" "$T/new.spare" --db "$T/new.db" --spare-size 1M)
  assert_contains "create with a set's MAIN" "already belongs to set" "$err"
  [[ ! -e $T/new.spare && ! -e $T/new.db ]] || fail "a refused create left files"
  assert_unchanged "$T/snapshot" "create with a set's MAIN"
  ;;

loop)
  truncate -s 16M "$T/lo.img"
  lo=$(attach_loop "$T/lo.img")
  spare=$T/lo.spare db=$T/lo.db
  out=$(must "$REMAPCTL" create "$lo" "$spare" --db "$db" --spare-size 2M)
  assert_contains "identity of a loop device" "MAIN's identity: block loop file ino=" "$out"
  write_data "$lo" "$spare" "$db" "$T/mount-data.log"
  detach_loop "$lo"
  # Another image on a loop device (likely the same /dev/loopN).
  truncate -s 16M "$T/lo2.img"
  lo2=$(attach_loop "$T/lo2.img")
  refused_mount "another loop device image" "$lo2" "$spare" "$db" "is not the disk or file"
  detach_loop "$lo2"
  # The set's image again, attached anew (as after a reboot): accepted.
  lo=$(attach_loop "$T/lo.img")
  check_data "the loop device attached again" "$lo" "$spare" "$db" "$T/mount-again.log"
  ;;

create)
  truncate -s 1M "$T/c.img"
  err=$(must_fail_one_line "$REMAPCTL" create "$T/c.img" "$T/c0.spare" --spare-size 0)
  assert_contains "--spare-size 0" "out of range" "$err"
  [[ ! -e $T/c0.spare && ! -e $T/c0.spare.db ]] || fail "create --spare-size 0 left files"
  # 2^32 slots of 512 bytes: one more than the slot numbering has.
  err=$(must_fail_one_line "$REMAPCTL" create "$T/c.img" "$T/c1.spare" --sector-size 512 --spare-size $((4096 + (1 << 41))))
  assert_contains "--spare-size of 2^32 slots" "at most 4294967295 fit the slot numbering" "$err"
  assert_contains "--spare-size of 2^32 slots" "or --sector-size 4096" "$err"
  [[ ! -e $T/c1.spare && ! -e $T/c1.spare.db ]] || fail "create of a too big spare left files"
  truncate -s $((4096 + (1 << 41))) "$T/c2.spare"
  err=$(must_fail_one_line "$REMAPCTL" create "$T/c.img" "$T/c2.spare" --sector-size 512)
  assert_contains "an existing spare of 2^32 slots" "holds 4294967296 slots of 512 bytes" "$err"
  assert_eq "blocks of the refused spare (not reserved)" 0 "$(stat -c %b "$T/c2.spare")"
  [[ ! -e $T/c2.spare.db ]] || fail "create of a too big spare left a DB"
  rm "$T/c2.spare"
  mount_fs tmpfs "$T/small" -t tmpfs -o size=4M
  err=$(must_fail_one_line "$REMAPCTL" create "$T/c.img" "$T/small/c.spare" --spare-size 64M)
  assert_contains "create on a too small filesystem" "cannot reserve" "$err"
  assert_eq "files left on the small filesystem" "" "$(ls -A "$T/small")"
  must "$REMAPCTL" create "$T/c.img" "$T/small/c.spare" --spare-size 2M >/dev/null
  assert_ge "blocks of the spare (reserved, not sparse)" $((2 * 1024 * 1024)) $(( $(stat -c '%b * %B' "$T/small/c.spare") ))
  if command -v strace >/dev/null; then
    truncate -s 1M "$T/s.img"
    # LeakSanitizer cannot run under a tracer (an ASan build of remapctl).
    must env ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
      strace -f -y -e trace=rename,renameat,renameat2,fsync -o "$T/strace" \
      "$REMAPCTL" create "$T/s.img" "$T/s.spare" --spare-size 1M >/dev/null
    # After the DB's rename, an fsync of its directory (strace -y: "fsync(5</dir>)").
    sed -n '/rename.*s\.spare\.db\.creating/,$p' "$T/strace" | grep -F "fsync(" | grep -F "<$T>)" >/dev/null ||
      { cat "$T/strace" >&2; fail "create did not fsync $T after renaming the DB"; }
  else
    log "no strace: the directory sync is not checked"
  fi
  ;;
esac
