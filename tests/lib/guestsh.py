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
Every typed line starts with ^U (kill the line): a late answer to the line
editor's cursor query (see read_some) that reaches the shell after a line
was sent is left on the next line, and, its escape sequence split by a
starved guest, lands as text ("[1;1R echo ...") that breaks the line's first
command; ^U drops it, whether the line editor or the tty's canonical mode
holds it.  Long commands go in acknowledged chunks, each to a file of its
own, acknowledged with the file's size: a chunk that arrived short is typed
again.  Should the end marker come without the start marker, the line was
garbled: that is exit status 125 with the console's text, not a wait until
the ceiling.
Exit status 124 on timeout, 125 on a connection error or a garbled line.  --timeout is a
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
        self.tail = b""     # the last bytes read, for a query split across reads
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
        tail = self.tail + data
        for _ in range(tail.count(b"\x1b[6n")):
            self.sock.sendall(b"\x1b[1;1R")
        self.tail = tail[-3:]
        self.buf += data
        if os.environ.get("GUESTSH_DEBUG"):
            sys.stderr.buffer.write(data)
            sys.stderr.flush()
        return True

    def timed_out(self):
        return time.monotonic() >= self.deadline


KILL = b"\x15"    # ^U: the line editor (or the tty) drops what the line held


def probe(con, nonce):
    """Types a probe until the shell answers it: at once, then again after 1,
    1.5, 2.25 and then every 3 seconds.  A guest slowed down by a busy
    host answers late, not never, and every probe typed is a line its shell
    must work through, so they get rarer rather than pile up."""
    want = b"HUTCH_P_" + nonce
    typed = KILL + b"echo HUTCH''_P_" + nonce + b"\n"
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
# commands are typed in pieces into files first, each piece acknowledged.
CHUNK = 600
TRIES = 3


def wait_re(con, pat):
    """The first match of pat in what the console printed, waiting for it."""
    while True:
        m = pat.search(con.buf)
        if m:
            return m
        if not con.read_some(con.deadline) and con.timed_out():
            die("timed out waiting for the guest shell", 124)


def send_chunks(con, nonce, b64):
    """Types b64 into /tmp/.guestsh.NONCE.NNNNN, one file per chunk, each
    acknowledged with its size; a short one (a line the console garbled) is
    typed again, as a whole, so that typing it twice does no harm.
    Returns the files' glob."""
    f = "/tmp/.guestsh.%s" % nonce
    for i in range(0, len(b64), CHUNK):
        piece = b64[i:i + CHUNK]
        for _ in range(TRIES):
            con.buf = b""
            con.send((KILL.decode() + " echo -n %s >%s.%06d; echo HUTCH''_C_%s_%d_$(wc -c <%s.%06d)_\n" %
                      (piece, f, i, nonce, i, f, i)).encode())
            m = wait_re(con, re.compile(("HUTCH_C_%s_%d_ *([0-9]+)_" % (nonce, i)).encode()))
            if int(m.group(1)) == len(piece):
                break
        else:
            die("chunk %d of the command did not reach the guest whole in %d tries" % (i, TRIES), 125)
    return f + ".*"


def run_command(con, cmd):
    nonce = os.urandom(6).hex()
    probe(con, nonce.encode())
    con.buf = b""
    b64 = base64.b64encode(cmd.encode()).decode()
    if len(b64) <= CHUNK:
        src = "echo %s | base64 -d" % b64
        cleanup = ""
    else:
        files = send_chunks(con, nonce, b64)
        src = "cat %s | base64 -d" % files
        cleanup = "rm -f %s; " % files
    con.buf = b""
    line = (KILL.decode() + " echo HUTCH''_S_{n}; ( eval \"$({src})\" ) </dev/null; "
            "r=$?; {c}echo HUTCH''_E_{n} $r\n").format(n=nonce, src=src, c=cleanup)
    con.send(line.encode())
    pat = re.compile(re.escape(("HUTCH_S_" + nonce).encode()) + rb"\r?\n(.*?)" +
                     re.escape(("HUTCH_E_" + nonce).encode()) + rb" (\d+)\r?\n", re.S)
    end = re.compile(re.escape(("HUTCH_E_" + nonce).encode()) + rb" (\d+)\r?\n")
    while True:
        m = pat.search(con.buf)
        if m:
            out = m.group(1).replace(b"\r\n", b"\n")
            sys.stdout.buffer.write(out)
            sys.stdout.flush()
            return int(m.group(2))
        if end.search(con.buf):
            sys.stdout.buffer.write(con.buf.replace(b"\r\n", b"\n"))
            sys.stdout.flush()
            die("the command line reached the guest garbled (an end marker, no start marker)", 125)
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
