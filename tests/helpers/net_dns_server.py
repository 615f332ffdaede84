#!/usr/bin/env python3
"""Tiny authoritative DNS server for tests: net_dns_server.py ADDR PORT NAME=IPV4...

Answers A queries for the given names (case-insensitive), NXDOMAIN for
everything else.  Exits on SIGTERM.  Test use only (tests/net/)."""
import socket
import struct
import sys


def main():
    addr, port = sys.argv[1], int(sys.argv[2])
    table = {}
    for kv in sys.argv[3:]:
        k, v = kv.split("=", 1)
        table[k.lower().rstrip(".")] = socket.inet_aton(v)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    print("dns ready", flush=True)
    while True:
        q, src = s.recvfrom(4096)
        if len(q) < 12:
            continue
        qid, flags, qd = struct.unpack(">HHH", q[:6])
        off, labels = 12, []
        while off < len(q) and q[off] != 0:
            n = q[off]
            labels.append(q[off + 1:off + 1 + n].decode("ascii", "replace"))
            off += 1 + n
        off += 1
        qtype, _ = struct.unpack(">HH", q[off:off + 4])
        question = q[12:off + 4]
        name = ".".join(labels).lower()
        ip = table.get(name)
        rd = flags & 0x0100
        if ip is not None and qtype == 1:
            hdr = struct.pack(">HHHHHH", qid, 0x8400 | rd, 1, 1, 0, 0)
            ans = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + ip
            s.sendto(hdr + question + ans, src)
        elif ip is not None:
            s.sendto(struct.pack(">HHHHHH", qid, 0x8400 | rd, 1, 0, 0, 0) + question, src)
        else:
            s.sendto(struct.pack(">HHHHHH", qid, 0x8403 | rd, 1, 0, 0, 0) + question, src)


if __name__ == "__main__":
    main()
