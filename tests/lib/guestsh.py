#!/usr/bin/env python3
"""Run a command in a guest through its serial console.

usage: guestsh.py [--timeout S] SOCKET 'command'
       guestsh.py [--timeout S] --wait-ready SOCKET
       guestsh.py [--timeout S] --qmp SOCKET 'command' ['{"arg": 1}']

SOCKET is a unix stream socket that carries the guest's serial console both
ways (the supervisor's <vm_dir>/console.sock, or QEMU's
`-chardev socket,id=c,path=SOCK,server=on,wait=off -serial chardev:c`).

Command mode: probes the shell until it answers, then sends the command
wrapped so its output is delimited by unique markers and its exit status is
printed; prints the command's output (stdout and stderr, which share the tty)
and exits with the command's status.  The markers are typed with '' inside
them, so the console echoing the typed line never matches them.  The command
runs in a subshell (so `exit N` is its status, and cd/variables do not
persist) with stdin from /dev/null so it cannot swallow later console input.
Exit status 124 on timeout, 125 on a connection error.  --timeout is a
ceiling for the whole call (default 600 s, or $GUESTSH_TIMEOUT): a loaded
host makes TCG guests slow, and the answer comes as soon as it is there.

--wait-ready: waits until the tiny guest's shell answers a probe (it starts
right after "hutch-tiny: ready"; that line itself is not trusted, since it may
come from an earlier boot replayed by whatever serves the socket, or have been
printed before we connected).

--qmp: a small QMP client for tests (capabilities handshake, one command,
prints the "return" as JSON, exit 1 on an "error").
"""
import base64
import json
import os
import re
import select
import socket
import sys
import time

def die(msg, code=125):
    sys.stderr.write("guestsh: %s\n" % msg)
    sys.exit(code)


def connect(path, deadline):
    """Connects, retrying while the socket does not exist yet (QEMU starting)."""
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError as e:
            s.close()
            if time.monotonic() >= deadline:
                die("cannot connect to %s: %s" % (path, e))
            time.sleep(0.2)


class Console:
    def __init__(self, sock, deadline):
        self.sock = sock
        self.buf = b""
        self.deadline = deadline

    def send(self, data):
        self.sock.sendall(data)

    def read_some(self, until):
        left = min(until, self.deadline) - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([self.sock], [], [], left)
        if not r:
            return False
        data = self.sock.recv(65536)
        if not data:
            die("console closed (guest gone?)", 125)
        # busybox's line editor asks the terminal where the cursor is
        # (ESC[6n) after a long line; nobody answers on a serial console and
        # it can stall input, so answer like a terminal would
        tail = self.buf[-3:] + data
        for _ in range(tail.count(b"\x1b[6n")):
            self.sock.sendall(b"\x1b[1;1R")
        self.buf += data
        if os.environ.get("GUESTSH_DEBUG"):
            sys.stderr.buffer.write(data)
            sys.stderr.flush()
        return True

    def timed_out(self):
        return time.monotonic() >= self.deadline


def probe(con, nonce):
    """Types a probe until the shell answers it: at once, then again after 1,
    1.5, 2.25 and then every 3 seconds.  A guest slowed down by a busy
    host answers late, not never, and every probe typed is a line its shell
    must work through, so they get rarer rather than pile up."""
    want = b"HUTCH_P_" + nonce
    typed = b"echo HUTCH''_P_" + nonce + b"\n"
    gap = 1.0
    while True:
        con.send(b"\n" + typed)
        until = time.monotonic() + gap
        while time.monotonic() < until:
            if want in con.buf:
                return
            if not con.read_some(until):
                break
        if want in con.buf:
            return
        if con.timed_out():
            die("timed out waiting for the guest shell", 124)
        gap = min(gap * 1.5, 3.0)


# busybox ash's line editor keeps at most 1024 characters of a line: longer
# commands are typed in pieces into a file first, each piece acknowledged.
CHUNK = 600


def wait_for(con, what):
    while what not in con.buf:
        if not con.read_some(con.deadline) and con.timed_out():
            die("timed out waiting for the guest shell", 124)


def run_command(con, cmd):
    nonce = os.urandom(6).hex()
    probe(con, nonce.encode())
    con.buf = b""
    b64 = base64.b64encode(cmd.encode()).decode()
    if len(b64) <= CHUNK:
        src = "echo %s | base64 -d" % b64
        cleanup = ""
    else:
        f = "/tmp/.guestsh.%s" % nonce
        for i in range(0, len(b64), CHUNK):
            con.send((" echo -n %s >>%s; echo HUTCH''_C_%s_%d_\n" %
                      (b64[i:i + CHUNK], f, nonce, i)).encode())
            wait_for(con, ("HUTCH_C_%s_%d_" % (nonce, i)).encode())
        con.buf = b""
        src = "base64 -d %s" % f
        cleanup = "rm -f %s; " % f
    line = (" echo HUTCH''_S_{n}; ( eval \"$({src})\" ) </dev/null; "
            "r=$?; {c}echo HUTCH''_E_{n} $r\n").format(n=nonce, src=src, c=cleanup)
    con.send(line.encode())
    pat = re.compile(re.escape(("HUTCH_S_" + nonce).encode()) + rb"\r?\n(.*?)" +
                     re.escape(("HUTCH_E_" + nonce).encode()) + rb" (\d+)\r?\n", re.S)
    while True:
        m = pat.search(con.buf)
        if m:
            out = m.group(1).replace(b"\r\n", b"\n")
            sys.stdout.buffer.write(out)
            sys.stdout.flush()
            return int(m.group(2))
        if not con.read_some(con.deadline):
            if con.timed_out():
                die("timed out waiting for the command to finish", 124)


def qmp(path, deadline, cmd, args):
    s = connect(path, deadline)
    f = s.makefile("rwb")

    def recv():
        while True:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            line = f.readline()
            if not line:
                die("QMP closed", 125)
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    recv()  # greeting
    f.write(b'{"execute":"qmp_capabilities"}\n')
    f.flush()
    recv()
    req = {"execute": cmd}
    if args:
        req["arguments"] = json.loads(args)
    f.write(json.dumps(req).encode() + b"\n")
    f.flush()
    r = recv()
    if "error" in r:
        print(json.dumps(r["error"]))
        return 1
    print(json.dumps(r.get("return")))
    return 0


def main(argv):
    timeout = float(os.environ.get("GUESTSH_TIMEOUT", 600))
    mode = "cmd"
    rest = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--timeout":
            i += 1
            timeout = float(argv[i])
        elif a.startswith("--timeout="):
            timeout = float(a.split("=", 1)[1])
        elif a == "--wait-ready":
            mode = "ready"
        elif a == "--qmp":
            mode = "qmp"
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            rest.append(a)
        i += 1
    deadline = time.monotonic() + timeout
    if mode == "qmp":
        if len(rest) not in (2, 3):
            die("usage: guestsh.py --qmp SOCKET COMMAND [ARGS_JSON]", 2)
        return qmp(rest[0], deadline, rest[1], rest[2] if len(rest) == 3 else None)
    if mode == "ready":
        if len(rest) != 1:
            die("usage: guestsh.py --wait-ready SOCKET", 2)
        con = Console(connect(rest[0], deadline), deadline)
        probe(con, os.urandom(6).hex().encode())
        return 0
    if len(rest) != 2:
        die("usage: guestsh.py [--timeout S] SOCKET 'command'", 2)
    con = Console(connect(rest[0], deadline), deadline)
    return run_command(con, rest[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
