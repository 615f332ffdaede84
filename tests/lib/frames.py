#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hand-made Ethernet frames for the security tests, printed as hex (for
net_helper's guest mode: "tx HEX" writes one to the VM's tap as QEMU would).

udp DSTMAC SRCMAC SRCIP DSTIP SPORT DPORT TEXT   IPv4/UDP with payload TEXT
udp6 DSTMAC SRCMAC SRCIP DSTIP SPORT DPORT TEXT  IPv6/UDP
raw DSTMAC SRCMAC ETHERTYPE TEXT                 any ether type, payload TEXT
dhcp TYPE MAC XID [key=value...]                 a client's DHCP message from
                                                 0.0.0.0:68 to broadcast:67;
                                                 keys: src dst dstmac ciaddr req server
dns DSTMAC SRCMAC SRCIP DSTIP SPORT ID NAME [key=value...]   a DNS message to port 53;
                                                 keys: opcode qr qd an ns ar (counts as
                                                 written in the header), opt (OPT records
                                                 appended), rr (plain A records appended)
tcpsyn DSTMAC SRCMAC SRCIP DSTIP SPORT DPORT     a TCP SYN
rxcount FILE udp|tcp SPORT [HEXPREFIX]           how many "rx HEX" lines of FILE are IPv4
                                                 UDP/TCP from port SPORT (whose payload
                                                 starts with HEXPREFIX; for TCP: SYN+ACK)
"""
import socket
import struct
import sys


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src, dst, proto, payload):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0x1234, 0x4000, 64, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def udp4(src, dst, sport, dport, data):
    u = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    ph = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, len(u))
    c = csum(ph + u) or 0xFFFF
    return ipv4(src, dst, 17, u[:6] + struct.pack("!H", c) + u[8:])


def udp6(src, dst, sport, dport, data):
    s6, d6 = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
    u = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    ph = s6 + d6 + struct.pack("!I3xB", len(u), 17)
    u = u[:6] + struct.pack("!H", csum(ph + u) or 0xFFFF) + u[8:]
    return struct.pack("!IHBB", 0x60000000, len(u), 17, 64) + s6 + d6 + u


def dhcp(mtype, cmac, xid, kv):
    ciaddr = socket.inet_aton(kv.get("ciaddr", "0.0.0.0"))
    bp = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0, ciaddr, b"\0" * 4,
                     b"\0" * 4, b"\0" * 4, mac(cmac), b"", b"")
    opts = b"\x63\x82\x53\x63" + bytes([53, 1, mtype])
    if "req" in kv:
        opts += bytes([50, 4]) + socket.inet_aton(kv["req"])
    if "server" in kv:
        opts += bytes([54, 4]) + socket.inet_aton(kv["server"])
    opts += b"\xff"
    body = bp + opts
    body += b"\0" * max(0, 300 - len(body))
    ip = udp4(kv.get("src", "0.0.0.0"), kv.get("dst", "255.255.255.255"), 68, 67, body)
    return mac(kv.get("dstmac", "ff:ff:ff:ff:ff:ff")) + mac(cmac) + b"\x08\x00" + ip


def dnsmsg(qid, name, kv):
    g = lambda k, d: int(kv.get(k, d))
    flags = (g("qr", 0) << 15) | (g("opcode", 0) << 11) | 0x0100
    nopt, nrr = g("opt", 0), g("rr", 0)
    hdr = struct.pack("!HHHHHH", qid, flags, g("qd", 1), g("an", 0), g("ns", 0), g("ar", nopt + nrr))
    q = b"".join(bytes([len(x)]) + x.encode() for x in name.split(".") if x) + b"\0" + struct.pack("!HH", 1, 1)
    rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + b"\x01\x02\x03\x04"
    opt = b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0)
    return hdr + q + opt * nopt + rr * nrr


def tcp4(src, dst, sport, dport, flags):
    t = struct.pack("!HHIIBBHHH", sport, dport, 1000, 0, 5 << 4, flags, 65535, 0, 0)
    ph = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(t))
    return ipv4(src, dst, 6, t[:16] + struct.pack("!H", csum(ph + t)) + t[18:])


def rxcount(path, proto, sport, prefix):
    n = 0
    for line in open(path):
        if not line.startswith("rx "):
            continue
        f = bytes.fromhex(line[3:].strip())
        if len(f) < 34 or f[12:14] != b"\x08\x00":
            continue
        ihl = (f[14] & 15) * 4
        l4 = f[14 + ihl:]
        if proto == "udp" and f[23] == 17 and len(l4) >= 8 and struct.unpack("!H", l4[:2])[0] == sport:
            n += l4[8:].startswith(bytes.fromhex(prefix))
        elif proto == "tcp" and f[23] == 6 and len(l4) >= 14 and struct.unpack("!H", l4[:2])[0] == sport:
            n += (l4[13] & 0x12) == 0x12
    return n


def main(a):
    if a[0] == "rxcount":
        print(rxcount(a[1], a[2], int(a[3]), a[4] if len(a) > 4 else ""))
        return
    if a[0] == "udp":
        f = mac(a[1]) + mac(a[2]) + b"\x08\x00" + udp4(a[3], a[4], int(a[5]), int(a[6]), a[7].encode())
    elif a[0] == "udp6":
        f = mac(a[1]) + mac(a[2]) + b"\x86\xdd" + udp6(a[3], a[4], int(a[5]), int(a[6]), a[7].encode())
    elif a[0] == "raw":
        f = mac(a[1]) + mac(a[2]) + struct.pack("!H", int(a[3], 16)) + a[4].encode()
        f += b"\0" * max(0, 60 - len(f))
    elif a[0] == "dns":
        kv = dict(x.split("=", 1) for x in a[8:])
        f = mac(a[1]) + mac(a[2]) + b"\x08\x00" + udp4(a[3], a[4], int(a[5]), 53, dnsmsg(int(a[6], 0), a[7], kv))
    elif a[0] == "tcpsyn":
        f = mac(a[1]) + mac(a[2]) + b"\x08\x00" + tcp4(a[3], a[4], int(a[5]), int(a[6]), 0x02)
    elif a[0] == "dhcp":
        kv = dict(x.split("=", 1) for x in a[4:])
        f = dhcp(int(a[1]), a[2], int(a[3], 0), kv)
    else:
        sys.exit("usage: frames.py udp|udp6|raw|dhcp ...")
    print(f.hex())


if __name__ == "__main__":
    main(sys.argv[1:])
