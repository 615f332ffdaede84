#!/usr/bin/env python3
"""A small HTTP server for the image tests, on 127.0.0.1 only.

Serves files from ROOT with Range support (bytes=N- and N-M), and a few
test paths:
  /norange/P   serve P ignoring Range (always 200, whole file)
  /cut/P       without Range: announce the whole length, send half, close
               (an interrupted download); with Range: served normally
  /badrange/P  answer any Range with 206 for the whole file (a wrong range)
  /redir/P     302 to /P
  /loop/P      302 to itself (a redirect loop)
  /tohttp/P    302 to http://example.invalid/P (not local: must be refused)
  /status/N    answer HTTP status N
Every request line and its Range header is appended to LOG.
usage: range_server.py ROOT PORTFILE LOG
"""
import http.server
import os
import re
import sys

ROOT, PORTFILE, LOG = sys.argv[1], sys.argv[2], sys.argv[3]


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send_body(self, code, body, headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        rng = self.headers.get("Range")
        with open(LOG, "a") as f:
            f.write("%s range=%s\n" % (self.path, rng or "-"))
        p = self.path
        if p.startswith("/status/"):
            self.send_body(int(p[8:]), b"status page\n")
            return
        if p.startswith("/redir/"):
            self.send_body(302, b"", [("Location", p[6:])])
            return
        if p.startswith("/loop/"):
            self.send_body(302, b"", [("Location", p)])
            return
        if p.startswith("/tohttp/"):
            self.send_body(302, b"", [("Location", "http://example.invalid" + p[7:])])
            return
        mode = ""
        for m in ("/norange/", "/cut/", "/badrange/"):
            if p.startswith(m):
                mode, p = m, p[len(m) - 1:]
        path = os.path.join(ROOT, p.lstrip("/"))
        if ".." in p or not os.path.isfile(path):
            self.send_body(404, b"not found\n")
            return
        data = open(path, "rb").read()
        if mode == "/cut/" and not rng:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if mode == "/badrange/" and rng:
            self.send_body(206, data, [("Content-Range", "bytes 0-%d/%d" % (len(data) - 1, len(data)))])
            return
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
        if m and mode != "/norange/":
            start = int(m.group(1))
            end = int(m.group(2)) if m.group(2) else len(data) - 1
            if start >= len(data):
                self.send_body(416, b"", [("Content-Range", "bytes */%d" % len(data))])
                return
            end = min(end, len(data) - 1)
            self.send_body(206, data[start : end + 1],
                           [("Content-Range", "bytes %d-%d/%d" % (start, end, len(data)))])
            return
        self.send_body(200, data)


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)
srv.serve_forever()
