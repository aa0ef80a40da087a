#!/usr/bin/env python3
"""Extended attributes of a file (used through functions.sh; getfattr is not
a dependency).

xattrs.py PATH
    prints PATH's extended attributes, NAME=VALUE separated by spaces.
"""
import os
import sys


def main():
    path = sys.argv[1]
    print(" ".join(n + "=" + os.getxattr(path, n).decode(errors="replace") for n in os.listxattr(path)))


if __name__ == "__main__":
    main()
