#!/usr/bin/env python3
"""A raw client of a remapfs daemon's control channel (used through functions.sh).

control_client.py DB socket
    prints the abstract socket name of the channel that DB records.

control_client.py DB call JSON [--then MS CMD...]
    sends one request line and waits for the reply; prints "sending" just
    before it sends, then one JSON line {"sent": T, "replied": T, "reply":
    {...}, "then": {...}} (times: time.time()); exit 0 when the reply says
    ok, 1 otherwise, 2 when the connection failed. --then: as in fileio.py
    fsync, CMD runs MS ms after the request was sent.
control_client.py DB silent
    connects and never sends a request, like a stuck remapctl; prints
    "connected" then, once the daemon closes the connection, "closed".
control_client.py DB noread JSON
    sends the request and never reads the reply (a stopped client); prints
    "sent" then, once the daemon closes the connection, "closed".
"""
import json
import select
import socket
import sqlite3
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from fileio import run_later  # noqa: E402


def socket_name(db):
    c = sqlite3.connect("file:" + db + "?mode=ro", uri=True)
    return c.execute("SELECT control_socket FROM set_info").fetchone()[0]


def connect(db):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("\0" + socket_name(db))
    return s


def wait_closed(s):
    p = select.poll()
    p.register(s, select.POLLRDHUP | select.POLLHUP)
    while True:
        for _, ev in p.poll():
            if ev & (select.POLLRDHUP | select.POLLHUP):
                print("closed", flush=True)
                return


def main():
    db, mode = sys.argv[1], sys.argv[2]
    if mode == "socket":
        print(socket_name(db))
        return
    try:
        s = connect(db)
    except OSError as e:
        print(json.dumps({"error": str(e)}), flush=True)
        sys.exit(2)
    if mode == "call":
        print("sending", flush=True)
        sent = time.time()
        timer, record = run_later(sys.argv[4:])
        s.sendall(sys.argv[3].encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            data += chunk
        replied = time.time()
        if timer:
            timer.join()
        reply = json.loads(data) if data.endswith(b"\n") else {"ok": False, "error": "connection closed"}
        print(json.dumps({"sent": sent, "replied": replied, "reply": reply, "then": record}), flush=True)
        sys.exit(0 if reply.get("ok") else 1)
    if mode == "silent":
        print("connected", flush=True)
        wait_closed(s)
    elif mode == "noread":
        s.sendall(sys.argv[3].encode() + b"\n")
        print("sent", flush=True)
        wait_closed(s)
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
