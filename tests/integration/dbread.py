#!/usr/bin/env python3
"""Read-only looks at a set's DB while its daemon runs (through
functions.sh); SQLite directly, so the daemon is asked for nothing
(remapctl given the DB of a running daemon asks the daemon).

dbread.py DB sectors
    prints the number of table entries committed to the DB.
dbread.py DB hold
    opens a read transaction, prints the committed entries, and keeps the
    transaction open until killed (a reader that a checkpoint must not wait
    for).
dbread.py DB scrub
    prints the scrub's committed state and position ("running 1234"), or
    "none" when the DB has not recorded one.
"""
import signal
import sqlite3
import sys


def main():
    db, mode = sys.argv[1], sys.argv[2]
    c = sqlite3.connect("file:" + db + "?mode=ro", uri=True, isolation_level=None)
    if mode == "scrub":
        has = c.execute("SELECT count(*) FROM sqlite_master WHERE name = 'scrub'").fetchone()[0]
        row = c.execute("SELECT run, position FROM scrub").fetchone() if has else None
        print(f"{row[0]} {row[1]}" if row else "none")
        return
    if mode == "hold":
        c.execute("BEGIN")
    elif mode != "sectors":
        sys.exit(f"unknown mode {mode}")
    print(c.execute("SELECT count(*) FROM sectors").fetchone()[0], flush=True)
    if mode == "hold":
        while True:
            signal.pause()


if __name__ == "__main__":
    main()
