#!/usr/bin/env python3
"""Single reads, writes and fsyncs of the integration tests, each one
request that a test can hold in flight (through functions.sh).

fileio.py pwrite FILE DATA OFFSET [--hold]
    opens FILE (prints "opened"), writes the bytes of the file DATA at
    OFFSET (1 MiB per request, no fsync; prints "wrote N"), then closes it
    (a failed close, the FUSE flush, prints "close: ERROR" and is not an
    error). --hold: keeps FILE open instead, until killed, so that no close
    flushes what was written. Exit 0 when every byte was written.
fileio.py pread FILE OUT LENGTH OFFSET
    one O_DIRECT read of LENGTH bytes at OFFSET; prints "read N" and saves
    the bytes in OUT; a failed close prints "close: ERROR".
fileio.py fsync FILE [--then MS CMD...]
    prints "sending", fsyncs FILE, then prints one JSON line {"sent": T,
    "replied": T, "reply": {"ok": ...}, "then": {...}} (times: time.time()),
    as control_client.py call does; exit 0 when the fsync succeeded.
    --then: runs CMD (a stop of the daemon) MS ms after the fsync was sent,
    from here, so that a loaded machine does not delay it; "then" says when
    it ran ("at") and its exit status ("rc").
"""
import json
import mmap
import os
import signal
import subprocess
import sys
import threading
import time

PIECE = 1 << 20


def close_reporting(fd):
    try:
        os.close(fd)
    except OSError as e:
        print(f"close: {e}", flush=True)


def do_pwrite(path, data_path, offset, hold):
    data = open(data_path, "rb").read()
    fd = os.open(path, os.O_WRONLY)
    print("opened", flush=True)
    n = 0
    for i in range(0, len(data), PIECE):
        n += os.pwrite(fd, data[i:i + PIECE], offset + i)
    print(f"wrote {n}", flush=True)
    if hold:
        while True:
            signal.pause()
    close_reporting(fd)
    return 0 if n == len(data) else 1


def do_pread(path, out, length, offset):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, length)  # page-aligned, as O_DIRECT needs
    n = os.preadv(fd, [buf], offset)
    open(out, "wb").write(buf[:n])
    print(f"read {n}", flush=True)
    close_reporting(fd)
    return 0


def run_later(then):
    """[--then MS CMD...]: starts a timer that runs CMD MS ms from now.
    Returns the timer (None without --then) and the record it fills in."""
    record = {}
    if not then:
        return None, record
    if then[0] != "--then" or len(then) < 3:
        sys.exit("expected --then MS CMD...")
    cmd = then[2:]

    def run():
        record["at"] = time.time()
        record["rc"] = subprocess.run(cmd).returncode

    timer = threading.Timer(float(then[1]) / 1000, run)
    timer.start()
    return timer, record


def do_fsync(path, then):
    fd = os.open(path, os.O_RDONLY)
    print("sending", flush=True)
    sent = time.time()
    timer, record = run_later(then)
    try:
        os.fsync(fd)
        reply = {"ok": True}
    except OSError as e:
        reply = {"ok": False, "error": str(e)}
    replied = time.time()
    if timer:
        timer.join()
    print(json.dumps({"sent": sent, "replied": replied, "reply": reply, "then": record}), flush=True)
    try:
        os.close(fd)
    except OSError:
        pass
    return 0 if reply["ok"] else 1


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "pwrite":
        return do_pwrite(args[0], args[1], int(args[2]), args[3:] == ["--hold"])
    if mode == "pread":
        return do_pread(args[0], args[1], int(args[2]), int(args[3]))
    if mode == "fsync":
        return do_fsync(args[0], args[1:])
    sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    sys.exit(main())
