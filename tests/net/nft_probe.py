#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Listeners and probes for tests/net/t-isolation*.sh (run inside namespaces).

serve NAME LOG PORT...        TCP and UDP on every address (v4 and v6) of
                              each PORT; answers "NAME\\n"; logs "proto src sport port"; port 7 echoes
mcast NAME LOG GROUP PORT     joins GROUP on every interface, logs datagrams
probe [-s SRC] [-t SECS] SPEC...   SPEC = tcp|udp:ADDR:PORT (ADDR may be
                              [v6%dev]); prints "SPEC RESULT" per SPEC, RESULT
                              = open:NAME | refused | timeout | unreach | error:X
echo ADDR PORT N              sends N bytes to a TCP echo (serve port 7), checks them back
bcast ADDR PORT               one UDP datagram with SO_BROADCAST
raw IFACE arp SRCMAC SENDERIP TARGETIP        gratuitous ARP reply (broadcast)
raw IFACE udp SRCMAC DSTMAC SRCIP DSTIP SPORT DPORT   hand-made IPv4/UDP frame
"""
import os
import socket
import struct
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from frames import csum, mac  # noqa: E402  (the one frame builder of the tests)


def log_line(path, text):
    with open(path, "a") as f:
        f.write(text + "\n")


def serve(name, logf, ports):
    socks = []
    for port in ports:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(socket.AF_INET6, kind)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if kind == socket.SOCK_DGRAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            s.bind(("::", port))
            if kind == socket.SOCK_STREAM:
                s.listen(64)
            socks.append((s, kind, port))

    def run(s, kind, port):
        while True:
            if kind == socket.SOCK_STREAM:
                c, addr = s.accept()
                log_line(logf, "tcp %s %d %d" % (addr[0].replace("::ffff:", ""), addr[1], port))
                if port == 7:
                    threading.Thread(target=echo_conn, args=(c,), daemon=True).start()
                    continue
                try:
                    c.sendall((name + "\n").encode())
                except OSError:
                    pass
                c.close()
            else:
                data, addr = s.recvfrom(65536)
                log_line(logf, "udp %s %d %d" % (addr[0].replace("::ffff:", ""), addr[1], port))
                try:
                    s.sendto((name + "\n").encode(), addr)
                except OSError:
                    pass

    for s, kind, port in socks:
        threading.Thread(target=run, args=(s, kind, port), daemon=True).start()
    log_line(logf, "ready")
    threading.Event().wait()


def echo_conn(c):
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            c.sendall(d)
        c.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    c.close()


def echo_client(addr, port, n):
    """Send n bytes, half-close, expect the same n bytes back."""
    data = bytes((i * 7) & 0xFF for i in range(n))
    s = socket.create_connection((addr, port), timeout=20)
    got = []

    def reader():
        while True:
            d = s.recv(65536)
            if not d:
                break
            got.append(d)

    t = threading.Thread(target=reader)
    t.start()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    t.join(30)
    back = b"".join(got)
    print("echo %s %d" % ("ok" if back == data else "bad", len(back)))


def mcast(name, logf, group, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", port))
    for _, ifname in socket.if_nameindex():
        idx = socket.if_nametoindex(ifname)
        mreq = struct.pack("4s4si", socket.inet_aton(group), socket.inet_aton("0.0.0.0"), idx)
        try:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        except OSError:
            pass
    log_line(logf, "ready")
    while True:
        _, addr = s.recvfrom(65536)
        log_line(logf, "mcast %s %d %d" % (addr[0], addr[1], port))


def parse_spec(spec):
    proto, rest = spec.split(":", 1)
    if rest.startswith("["):
        addr, port = rest[1:].split("]:")
    else:
        addr, port = rest.rsplit(":", 1)
    return proto, addr, int(port)


def probe_one(spec, src, timeout, out):
    proto, addr, port = parse_spec(spec)
    try:
        infos = socket.getaddrinfo(addr, port, 0, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
        fam, kind, _, _, sa = infos[0]
        s = socket.socket(fam, kind)
        s.settimeout(timeout)
        if src:
            s.bind((src, 0))
        if proto == "tcp":
            s.connect(sa)
            data = s.recv(100)
        else:
            s.connect(sa)
            s.send(b"ping")
            data = s.recv(100)
        out[spec] = "open:" + data.decode(errors="replace").strip()
    except socket.timeout:
        out[spec] = "timeout"
    except ConnectionRefusedError:
        out[spec] = "refused"
    except OSError as e:
        if e.errno in (101, 113, 22):  # ENETUNREACH, EHOSTUNREACH, EINVAL
            out[spec] = "unreach"
        else:
            out[spec] = "error:%d" % e.errno


def probe(args):
    src, timeout = None, 2.0
    while args and args[0] in ("-s", "-t"):
        if args[0] == "-s":
            src = args[1]
        else:
            timeout = float(args[1])
        args = args[2:]
    out = {}
    threads = [threading.Thread(target=probe_one, args=(a, src, timeout, out)) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a in args:
        print(a, out.get(a, "error:none"))


def raw(iface, kind, args):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    if kind == "arp":
        src, sender_ip, target_ip = args
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, mac(src), socket.inet_aton(sender_ip),
                          b"\xff" * 6, socket.inet_aton(target_ip))
        frame = b"\xff" * 6 + mac(src) + b"\x08\x06" + arp
    else:
        src, dst, sip, dip, sport, dport = args
        payload = b"hutch-raw"
        udp = struct.pack("!HHHH", int(sport), int(dport), 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                         socket.inet_aton(sip), socket.inet_aton(dip))
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        frame = mac(dst) + mac(src) + b"\x08\x00" + ip + udp
    for _ in range(3):
        s.send(frame)


def main():
    a = sys.argv[1:]
    if a[0] == "serve":
        serve(a[1], a[2], [int(p) for p in a[3:]])
    elif a[0] == "mcast":
        mcast(a[1], a[2], a[3], int(a[4]))
    elif a[0] == "probe":
        probe(a[1:])
    elif a[0] == "echo":
        echo_client(a[1], int(a[2]), int(a[3]))
    elif a[0] == "bcast":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        for _ in range(3):
            s.sendto(b"bcast", (a[1], int(a[2])))
    elif a[0] == "raw":
        raw(a[1], a[2], a[3:])
    else:
        sys.exit("usage")


if __name__ == "__main__":
    main()
