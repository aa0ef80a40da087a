#!/usr/bin/env python3
"""A write and its fsync on one file descriptor (used through functions.sh),
for the answer the fsync gets.

write_fsync.py FILE [OFFSET DATA]
    opens FILE, writes the bytes of the file DATA at OFFSET (when given; the
    write must succeed), then fsyncs that descriptor; prints "ok" or the
    errno name of the fsync (EIO).
"""
import errno
import os
import sys


def main():
    fd = os.open(sys.argv[1], os.O_WRONLY)
    if len(sys.argv) > 2:
        os.pwrite(fd, open(sys.argv[3], "rb").read(), int(sys.argv[2]))
    try:
        os.fsync(fd)
        print("ok")
    except OSError as e:
        print(errno.errorcode[e.errno])


if __name__ == "__main__":
    main()
