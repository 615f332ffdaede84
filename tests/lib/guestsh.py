#!/usr/bin/env python3
"""Run a command in a guest through its serial console.

usage: guestsh.py [--timeout S] SOCKET 'command'
       guestsh.py [--timeout S] --wait-ready SOCKET
       guestsh.py [--timeout S] --qmp SOCKET 'command' ['{"arg": 1}']

SOCKET is a unix stream socket that carries the guest's serial console both
ways (the supervisor's <vm_dir>/console.sock, or QEMU's
`-chardev socket,id=c,path=SOCK,server=on,wait=off -serial chardev:c`).

Command mode: probes the shell until it answers, then sends the command
wrapped so that its output (stdout and stderr) goes to a file and its exit
status to another, delimited by unique markers; prints the command's output
and exits with the command's status.  The markers are typed with '' inside
them, so the console echoing the typed line never matches them.  The command
runs in a subshell (so `exit N` is its status, and cd/variables do not
persist) with stdin from /dev/null so it cannot swallow later console input.
Every typed line starts with ^U (kill the line): a late answer to the line
editor's cursor query (see read_some) that reaches the shell after a line
was sent is left on the next line, and, its escape sequence split by a
starved guest, lands as text ("[1;1R echo ...") that breaks the line's first
command; ^U drops it, whether the line editor or the tty's canonical mode
holds it.  The console may also lose bytes on the way to us (the
supervisor never blocks on a console client: a client it finds slow, as on
a loaded host, misses output): so the command's output goes to a file in
the guest and is fetched with its md5 until the two agree, and every marker
that does not come is asked for again (each step can run twice unharmed).
Long commands go in chunks, each to a file of its own, acknowledged with
the file's size, and typed again when short or unacknowledged.
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
import hashlib
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
        # it can stall input, so answer like a terminal would; once per
        # read, however many it holds: only the last query is still asked
        # (the history a new client gets holds many old ones), and every
        # extra answer is input the guest's shell must wade through
        tail = self.tail + data
        if b"\x1b[6n" in tail:
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


def wait_re(con, pat, until=None):
    """The first match of pat in what the console printed, waiting for it
    until @until (None: the call's deadline, then exit 124)."""
    while True:
        m = pat.search(con.buf)
        if m:
            return m
        if not con.read_some(until if until is not None else con.deadline):
            if con.timed_out():
                die("timed out waiting for the guest shell", 124)
            if until is not None and time.monotonic() >= until:
                return None


# how long to wait for a marker before asking again (the line or its
# answer may have been lost: see the module's doc)
RETRY_S = float(os.environ.get("GUESTSH_RETRY_S", 60))


def send_chunks(con, nonce, b64):
    """Types b64 into /tmp/.guestsh.NONCE.NNNNNN, one file per chunk, each
    acknowledged with its size; a chunk that arrived short, or whose
    acknowledgement did not come, is typed again, as a whole, so that
    typing it twice does no harm.  Returns the files' glob."""
    f = "/tmp/.guestsh.%s" % nonce
    for i in range(0, len(b64), CHUNK):
        piece = b64[i:i + CHUNK]
        for _ in range(TRIES):
            con.buf = b""
            con.send((KILL.decode() + " echo -n %s >%s.%06d; echo HUTCH''_C_%s_%d_$(wc -c <%s.%06d)_\n" %
                      (piece, f, i, nonce, i, f, i)).encode())
            m = wait_re(con, re.compile(("HUTCH_C_%s_%d_ *([0-9]+)_" % (nonce, i)).encode()),
                        time.monotonic() + RETRY_S)
            if m and int(m.group(1)) == len(piece):
                break
        else:
            die("chunk %d of the command did not reach the guest whole in %d tries" % (i, TRIES), 125)
    return f + ".*"


def run_command(con, cmd):
    """The command's output goes to a file in the guest, its status to
    another; the output is then printed with its md5 and fetched again
    until the two agree.  Every step is idempotent and asked again when its
    answer does not come: bytes the console lost cost a retry, not a wrong
    result or a wait until the ceiling."""
    nonce = os.urandom(6).hex()
    probe(con, nonce.encode())
    b64 = base64.b64encode(cmd.encode()).decode()
    if len(b64) <= CHUNK:
        src = "echo %s | base64 -d" % b64
    else:
        src = "cat %s | base64 -d" % send_chunks(con, nonce, b64)
    f = "/tmp/.guestsh.%s" % nonce
    con.buf = b""
    line = (KILL.decode() + " ( eval \"$({src})\" ) >{f}.out 2>&1 </dev/null; echo $? >{f}.rt; "
            "mv {f}.rt {f}.rc; echo HUTCH''_E_{n}_$(cat {f}.rc)_\n").format(
                src=src, f=f, n=nonce).encode()
    # GUESTSH_TEST_LOSE_LINE: the first line goes without its newline, as
    # if the console lost it (tests/images/t-tiny-recipe.sh)
    con.send(line[:-1] if os.environ.get("GUESTSH_TEST_LOSE_LINE") else line)
    done = re.compile(("HUTCH_[ED]_%s_([0-9]+)_" % nonce).encode())
    m = wait_re(con, done, time.monotonic() + RETRY_S)
    rc = int(m.group(1)) if m else None
    ask = 0
    typed = 1
    while rc is None:
        # still running, or its end marker was lost, or the line itself was
        # (a lost newline: the next line's ^U dropped it): ask.  The
        # question waits behind a running command in the guest's shell, so
        # an answer means the shell is idle: no .out means the command
        # never started, and it is typed again; an .out without an .rc
        # means the line broke after it started, and running it twice
        # could do harm, so that is an error.
        ask += 1
        con.send((KILL.decode() + " [ -e {f}.rc ] && echo HUTCH''_D_{n}_$(cat {f}.rc)_ || "
                  "{{ [ -e {f}.out ] && echo HUTCH''_X_{n}_{k}_ || echo HUTCH''_N_{n}_{k}_; }}\n").format(
                      f=f, n=nonce, k=ask).encode())
        state = re.compile(("HUTCH_(?:[ED]_%s_([0-9]+)|([XN])_%s_%d)_" % (nonce, nonce, ask)).encode())
        a = wait_re(con, state, time.monotonic() + RETRY_S)
        if a and a.group(1) is not None:
            rc = int(a.group(1))
        elif a and a.group(2) == b"X":
            die("the command's line broke in the guest after it started (console lost bytes)", 125)
        elif a and a.group(2) == b"N":
            if typed > TRIES:
                die("the command's line did not reach the guest's shell in %d tries" % typed, 125)
            typed += 1
            sys.stderr.write("guestsh: the command line never reached the shell; typing it again\n")
            con.send(line)
            m = wait_re(con, done, time.monotonic() + RETRY_S)
            rc = int(m.group(1)) if m else None
    out = None
    for k in range(TRIES * 2):
        con.buf = b""
        con.send((KILL.decode() + " echo HUTCH''_O_{n}_{k}; cat {f}.out; echo; "
                  "echo HUTCH''_Q_{n}_{k}_$(md5sum <{f}.out | cut -c1-32)_\n").format(
                      f=f, n=nonce, k=k).encode())
        pat = re.compile(re.escape(("HUTCH_O_%s_%d" % (nonce, k)).encode()) + rb"\r?\n(.*?)\r?\n" +
                         re.escape(("HUTCH_Q_%s_%d_" % (nonce, k)).encode()) + rb"([0-9a-f]{32})_", re.S)
        m = wait_re(con, pat, time.monotonic() + RETRY_S)
        if not m:
            continue
        out = m.group(1).replace(b"\r\n", b"\n")
        if hashlib.md5(out).hexdigest() == m.group(2).decode():
            break
    else:
        if out is None:
            die("the command's output could not be fetched from the guest", 125)
        sys.stderr.write("guestsh: the output may be incomplete (console lost bytes)\n")
    # waited for: bytes still on their way when we hang up may be dropped
    con.send((KILL.decode() + " rm -f %s.*; echo HUTCH''_R_%s_\n" % (f, nonce)).encode())
    wait_re(con, re.compile(("HUTCH_R_%s_" % nonce).encode()), time.monotonic() + RETRY_S)
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    return rc


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
