#!/usr/bin/env python3
"""First writes of the subblock test (used through functions.sh), in an
order that decides which SPARE slot each sector gets.

fill_interleaved.py FILE K
    writes 512 zero bytes to sector k of each of the eight 1 MiB regions of
    FILE (region 0..7 in turn), for k = 0..K-1, on one descriptor, then
    fsyncs it.
"""
import os
import sys


def main():
    fd = os.open(sys.argv[1], os.O_WRONLY)
    for k in range(int(sys.argv[2])):
        for r in range(8):
            os.pwrite(fd, b"\0" * 512, (r << 20) + k * 512)
    os.fsync(fd)


if __name__ == "__main__":
    main()
