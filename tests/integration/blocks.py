#!/usr/bin/env python3
"""Verifying block writer of the integration tests (used through functions.sh).

A REGION of the exposed file is a ring of NB blocks of BLK bytes at byte BASE.
Block k goes to ring slot k % NB and holds pattern(GEN, k): every 512-byte
piece is different (so a misplaced sector shows), and GEN keeps writes of
different rounds apart.

write: writes batches of 1..--batch blocks (sizes drawn from --seed), then
  fsyncs (unless --no-fsync). The LOG says "w K N" before blocks K..K+N-1 are
  written and "a K N" once their fsync succeeded (acknowledged; with
  --no-fsync: once the writes returned, which only an orderly stop of the
  daemon makes durable). Stops at the
  first error, saying on stderr "stopped at block K at TIME: ERROR", exit 3.
  --count C: stop after C blocks; --hold: then print "written C" on stdout and
  keep the file open until SIGTERM or SIGKILL, so no close-time flush
  commits what is queued.
verify: reads the region back. A block acknowledged last in its slot must be
  there exactly. The blocks of the last batch that was not acknowledged (in
  flight when the daemon stopped or died) may hold, sector by sector, the old
  or the new bytes. Slots not written in this LOG must hold what --baseline
  says (a file of the region's bytes; a missing file means zeros), when given;
  --save-baseline FILE writes what was read, for the next round. Exit 1 when
  something differs.
baselines: --region BASE:FILE (repeated): each region holds exactly its
  baseline file (what an earlier verify saved). Exit 1 when one differs.
"""
import argparse
import hashlib
import os
import random
import signal
import sys
import time

PIECE = 512


def pattern(gen, k, blk):
    out = bytearray()
    for off in range(0, blk, PIECE):
        unit = hashlib.sha256(f"{gen}:{k}:{off}".encode()).digest()
        out += (unit * (PIECE // len(unit)))
    return bytes(out)


def do_write(a):
    fd = os.open(a.file, os.O_WRONLY)
    log = open(a.log, "w", buffering=1)
    rng = random.Random(a.seed)
    k = 0
    while a.count is None or k < a.count:
        n = rng.randint(1, a.batch)
        if a.count is not None:
            n = min(n, a.count - k)
        log.write(f"w {k} {n}\n")
        try:
            for j in range(k, k + n):
                got = os.pwrite(fd, pattern(a.gen, j, a.blk), a.base + (j % a.nb) * a.blk)
                if got != a.blk:
                    raise OSError(0, f"short write of {got} bytes")
            if not a.no_fsync:
                os.fsync(fd)
        except OSError as e:
            print(f"stopped at block {k} at {time.time():.6f}: {e}", file=sys.stderr, flush=True)
            sys.exit(3)
        log.write(f"a {k} {n}\n")
        k += n
    if a.hold:
        print(f"written {k}", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        while True:
            signal.pause()
    os.close(fd)


def read_region(fd, base, size):
    got = bytearray()
    while len(got) < size:
        chunk = os.pread(fd, min(1 << 20, size - len(got)), base + len(got))
        if not chunk:
            sys.exit("short read of the region")
        got += chunk
    return bytes(got)


def do_baselines(a):
    fd = os.open(a.file, os.O_RDONLY)
    bad = 0
    for spec in a.region:
        base, path = spec.split(":", 1)
        want = open(path, "rb").read()
        have = read_region(fd, int(base), len(want))
        if have != want:
            bad += 1
            first = next(i for i in range(len(want)) if have[i] != want[i])
            print(f"region at {base} differs from {path} at byte {first}", file=sys.stderr)
    print(f"{len(a.region)} regions: {bad} differ")
    sys.exit(1 if bad else 0)


def do_verify(a):
    if a.batch > a.nb:
        sys.exit("batch larger than the ring")
    acked = {}     # ring slot -> last acknowledged block
    inflight = []  # blocks of the last batch written but not acknowledged
    expect_next = 0
    for line in open(a.log).read().splitlines():
        op, k, n = line.split()
        k, n = int(k), int(n)
        if op == "w":
            if k != expect_next:
                sys.exit(f"{a.log}: batch at {k}, expected {expect_next}")
            inflight = list(range(k, k + n))
            expect_next = k + n
        elif op == "a":
            if inflight != list(range(k, k + n)):
                sys.exit(f"{a.log}: ack of {k}+{n} without its write")
            for j in inflight:
                acked[j % a.nb] = j
            inflight = []
    size = a.nb * a.blk
    baseline = None
    if a.baseline is not None:
        baseline = open(a.baseline, "rb").read() if os.path.exists(a.baseline) else bytes(size)
        if len(baseline) != size:
            sys.exit(f"{a.baseline}: {len(baseline)} bytes, expected {size}")
    fd = os.open(a.file, os.O_RDONLY)
    got = read_region(fd, a.base, size)
    os.close(fd)
    maybe = {j % a.nb: j for j in inflight}
    bad = 0
    for slot in range(a.nb):
        lo = slot * a.blk
        have = bytes(got[lo:lo + a.blk])
        if slot in acked:
            old = pattern(a.gen, acked[slot], a.blk)
        elif baseline is not None:
            old = baseline[lo:lo + a.blk]
        else:
            old = None  # never written in this round, nothing known
        if slot in maybe:
            new = pattern(a.gen, maybe[slot], a.blk)
            for s in range(0, a.blk, a.sector):
                piece = have[s:s + a.sector]
                if piece != new[s:s + a.sector] and old is not None and piece != old[s:s + a.sector]:
                    bad += 1
                    if bad <= 5:
                        print(f"slot {slot} (in-flight block {maybe[slot]}), byte {s}: neither old nor new",
                              file=sys.stderr)
                    break
        elif old is not None and have != old:
            bad += 1
            if bad <= 5:
                what = f"acknowledged block {acked[slot]}" if slot in acked else "baseline"
                first = next(i for i in range(a.blk) if have[i] != old[i])
                print(f"slot {slot} ({what}) differs from byte {first}", file=sys.stderr)
    n_acked = sum(1 for line in open(a.log) if line.startswith("a "))
    print(f"verified {len(acked)} acknowledged slots ({n_acked} fsyncs, {len(inflight)} blocks in flight) "
          f"of {a.nb}: {bad} differ")
    if bad:
        sys.exit(1)
    if a.save_baseline:
        tmp = a.save_baseline + ".tmp"
        with open(tmp, "wb") as f:
            f.write(got)
        os.replace(tmp, a.save_baseline)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["write", "verify", "baselines"])
    p.add_argument("file")
    p.add_argument("--base", type=int, help="byte offset of the region")
    p.add_argument("--blk", type=int, default=PIECE, help="block size, bytes")
    p.add_argument("--nb", type=int, default=1, help="blocks in the ring")
    p.add_argument("--gen", help="generation stamp of this round's patterns")
    p.add_argument("--log")
    p.add_argument("--region", action="append", default=[], help="baselines: BASE:FILE")
    p.add_argument("--batch", type=int, default=1, help="at most this many blocks per fsync")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-fsync", action="store_true")
    p.add_argument("--count", type=int)
    p.add_argument("--hold", action="store_true")
    p.add_argument("--sector", type=int, default=512, help="verify: the set's sector size")
    p.add_argument("--baseline")
    p.add_argument("--save-baseline")
    a = p.parse_args()
    if a.mode == "baselines":
        return do_baselines(a)
    if a.base is None or a.gen is None or a.log is None:
        p.error("write and verify need --base, --gen and --log")
    if a.blk % PIECE or a.batch < 1 or a.batch > a.nb:
        p.error("blk must be a multiple of 512 and 1 <= batch <= nb")
    do_write(a) if a.mode == "write" else do_verify(a)


if __name__ == "__main__":
    main()
