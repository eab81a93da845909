#!/usr/bin/env python3
"""tests/hub_mirror.py - a loopback stand-in for the Hugging Face hub, for
tests/test_hub.sh (standard library only; never used at run time).

    hub_mirror.py ROOT PORTFILE LOGFILE

Serves every ROOT/ORG/NAME/ folder as the hub repository ORG/NAME, with the
hub's URLs and headers:
  GET  /api/models/ORG/NAME/tree/main     JSON list: path, size, oid (git blob
                                          sha1), lfs {oid: sha256, size}
  GET|HEAD /ORG/NAME/resolve/main/FILE    LFS files (*.safetensors, *.gguf,
       *.gz): 302 to /cdn/ORG/NAME/SHA256 with X-Linked-Etag "sha256", X-Linked-Size,
       X-Repo-Commit; other files: 200 with ETag "git blob sha1"
  GET  /cdn/ORG/NAME/SHA256               the bytes; honours "Range: bytes=N-"
A file ROOT/ORG/NAME/.fault selects a fault for that repository:
  drop        the first CDN request of each file sends half, then hangs up
  corrupt     the CDN sends one byte changed
  gated TOK   resolve/ answers 401 unless "Authorization: Bearer TOK"
  404 | 500   resolve/ answers that status
  slow        the CDN sends in small pieces with pauses
Binds 127.0.0.1 on a free port, writes it to PORTFILE, and logs one line per
request to LOGFILE: "METHOD PATH range=R auth=A".
"""
import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT, PORTFILE, LOGFILE = sys.argv[1:4]
LFS_SUFFIXES = (".safetensors", ".gguf", ".gz")
log_lock = threading.Lock()
dropped = set()  # (repo, sha256) already cut short once


def repo_files(repo):
    d = os.path.join(ROOT, repo)
    if repo.count("/") != 1 or ".." in repo or not os.path.isdir(d):
        return None
    return {f: os.path.join(d, f) for f in sorted(os.listdir(d)) if not f.startswith(".")}


def fault(repo):
    try:
        with open(os.path.join(ROOT, repo, ".fault")) as f:
            return f.read().split()
    except OSError:
        return []


def meta(path):
    data = open(path, "rb").read()
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    return data, blob, hashlib.sha256(data).hexdigest()


def commit_of(repo):
    return hashlib.sha1(repo.encode()).hexdigest()


def find_sha(repo, sha):
    for path in (repo_files(repo) or {}).values():
        data, _, s = meta(path)
        if s == sha:
            return data
    return None


class Hub(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def log_request_line(self):
        with log_lock, open(LOGFILE, "a") as f:
            f.write("%s %s range=%s auth=%s\n" % (self.command, self.path,
                    self.headers.get("Range", "-").replace(" ", ""),
                    self.headers.get("Authorization", "-").replace(" ", "_")))

    def send(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self.log_request_line()
        p = self.path.split("?")[0]
        if p.startswith("/api/models/") and p.endswith("/tree/main"):
            return self.tree(p[len("/api/models/"):-len("/tree/main")])
        parts = p.lstrip("/").split("/")
        if len(parts) == 4 and parts[0] == "cdn":
            return self.cdn(parts[1] + "/" + parts[2], parts[3])
        if len(parts) == 5 and parts[2:4] == ["resolve", "main"]:
            return self.resolve(parts[0] + "/" + parts[1], parts[4])
        self.send(404, b'{"error":"Not Found"}')

    def tree(self, repo):
        files = repo_files(repo)
        if files is None:
            return self.send(404, b'{"error":"Repository not found"}')
        out = []
        for name, path in files.items():
            data, blob, sha = meta(path)
            e = {"type": "file", "oid": blob, "size": len(data), "path": name}
            if name.endswith(LFS_SUFFIXES):
                e["lfs"] = {"oid": sha, "size": len(data), "pointerSize": 134}
            out.append(e)
        self.send(200, json.dumps(out).encode(), [("Content-Type", "application/json")])

    def resolve(self, repo, name):
        files = repo_files(repo)
        if files is None or name not in files:
            return self.send(404, b"Entry not found", [("X-Error-Code", "EntryNotFound")])
        f = fault(repo)
        if f[:1] == ["gated"] and self.headers.get("Authorization") != "Bearer " + f[1]:
            return self.send(401, b'{"error":"Access to model %s is restricted."}' % repo.encode(),
                             [("X-Error-Code", "GatedRepo")])
        if f[:1] in (["404"], ["500"]):
            return self.send(int(f[0]), b"fault")
        data, blob, sha = meta(files[name])
        common = [("X-Repo-Commit", commit_of(repo)), ("Accept-Ranges", "bytes")]
        if not name.endswith(LFS_SUFFIXES):
            return self.send(200, data, common + [("ETag", '"%s"' % blob)])
        host = self.headers.get("Host")
        self.send(302, b"", common + [("Location", "http://%s/cdn/%s/%s" % (host, repo, sha)),
                                      ("X-Linked-Etag", '"%s"' % sha), ("X-Linked-Size", str(len(data))),
                                      ("ETag", '"%s"' % sha)])

    def cdn(self, repo, sha):
        data = find_sha(repo, sha)
        if data is None:
            return self.send(404, b"no such object")
        f = fault(repo)
        if f[:1] == ["corrupt"]:
            data = bytearray(data)
            data[len(data) // 2] ^= 0x40
            data = bytes(data)
        start = 0
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
        if start >= len(data) and data:
            return self.send(416, b"", [("Content-Range", "bytes */%d" % len(data))])
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("ETag", '"%s"' % sha)
        self.end_headers()
        body = data[start:]
        if f[:1] == ["drop"] and (repo, sha) not in dropped:
            dropped.add((repo, sha))
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        step = 65536 if f[:1] == ["slow"] else len(body) or 1
        for i in range(0, len(body), step):
            self.wfile.write(body[i:i + step])
            if step != len(body):
                time.sleep(0.02)


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    srv.daemon_threads = True
    with open(PORTFILE + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(PORTFILE + ".tmp", PORTFILE)
    srv.serve_forever()


if __name__ == "__main__":
    main()
