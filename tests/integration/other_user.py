#!/usr/bin/env python3
"""Another local user at a remapfs control channel (used through
functions.sh): run as root, it becomes the user nobody (group nogroup, no
supplementary groups) before it touches a socket. That user cannot read the
set's DB, so channels are given by name.

other_user.py listen NAME...
    binds each abstract socket NAME and poses as the daemon: prints
    "listening", then for every connection "connect" and, for a request,
    "got REQUEST", and answers any request with a made-up status.
other_user.py request NAME JSON
    connects to NAME, sends JSON as one request line and prints the reply
    (its repr), or "closed" when the daemon closed the connection instead.
"""
import grp
import json
import os
import pwd
import select
import socket
import sys

FAKE_STATUS = {"ok": True, "result": {"uuid": "squatted", "state": "squatted", "was_clean": True,
                                      "slots": {}, "store_error": "", "counters": {}}}


def become_nobody():
    os.setgroups([])
    os.setgid(grp.getgrnam("nogroup").gr_gid)
    os.setuid(pwd.getpwnam("nobody").pw_uid)


def listen(names):
    socks = []
    for name in names:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind("\0" + name)
        s.listen(8)
        socks.append(s)
    print("listening", flush=True)
    while True:
        ready, _, _ = select.select(socks, [], [])
        for s in ready:
            c, _ = s.accept()
            print("connect", flush=True)
            c.settimeout(2)
            try:
                data = c.recv(65536)
                if data:
                    print("got " + data.decode(errors="replace").strip(), flush=True)
                    c.sendall((json.dumps(FAKE_STATUS) + "\n").encode())
            except OSError:
                pass
            c.close()


def request(name, line):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("\0" + name)
    try:
        s.sendall(line.encode() + b"\n")
        data = s.recv(65536)
        print(repr(data) if data else "closed")
    except (BrokenPipeError, ConnectionResetError):
        print("closed")


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    become_nobody()
    if mode == "listen":
        listen(args)
    elif mode == "request":
        request(args[0], args[1])
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
