"""Hostile clients against a running `megafs serve` (issue #10); Python standard library only.

Usage: server_attack.py PORT PID --deadline S --idle S --max-body BYTES --concurrency N --queue N
       [--connections 200] [--rss-growth-mb 150]

The flags must match the server's own. Runs every attack in turn and prints, per case, the
expected and received status, the seconds to the answer (or to the close), whether the server
closed the connection, and the server's RSS and peak RSS (VmHWM) after the case. Exits 1 if any
case gets a wrong status, misses its time bound, lets the server's peak RSS grow by more than
--rss-growth-mb, or the server dies."""
import argparse
import json
import os
import select
import socket
import struct
import sys
import threading
import time
import urllib.request
import uuid
import zlib

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("pid", type=int)
parser.add_argument("--deadline", type=float, required=True)
parser.add_argument("--idle", type=float, required=True)
parser.add_argument("--max-body", type=int, required=True)
parser.add_argument("--concurrency", type=int, required=True)
parser.add_argument("--queue", type=int, required=True)
parser.add_argument("--connections", type=int, default=200)
parser.add_argument("--rss-growth-mb", type=float, default=150)
args = parser.parse_args()

LINGER = 2.0          # EarlyResponseCloser.lingerSeconds: how long a refused upload is drained
SLACK = 2.0           # allowance on every time bound for a loaded machine
SAMPLES = "examples/samples"
SOURCE = open(f"{SAMPLES}/synthetic_face.png", "rb").read()
TARGET = open(f"{SAMPLES}/astronaut_face.png", "rb").read()


# ---------------------------------------------------------------------------- server state

def proc_kb(field):
    try:
        with open(f"/proc/{args.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return None
    return None


def server_alive():
    try:
        with open(f"/proc/{args.pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def open_fds():
    try:
        return len(os.listdir(f"/proc/{args.pid}/fd"))
    except FileNotFoundError:
        return -1


# ---------------------------------------------------------------------------- requests

def form(parts, boundary=None):
    boundary = boundary or "----megafs-attack-" + uuid.uuid4().hex
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.bin"\r\n'.encode()
        + extra + b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
        for name, data, extra in ((p + (b"",))[:3] for p in parts))
    return boundary, body


def close_delimiter(boundary):
    return f"--{boundary}--\r\n".encode()


def swap_form():
    boundary, body = form([("source", SOURCE), ("target", TARGET)])
    return boundary, body + close_delimiter(boundary)


def head(path, boundary=None, length=None, chunked=False, extra=""):
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    if boundary:
        lines.append(f"Content-Type: multipart/form-data; boundary={boundary}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


class Outcome:
    def __init__(self):
        self.status = None
        self.headers = {}
        self.json = {}
        self.body = b""
        self.closed = False
        self.closed_at = None   # seconds from the start to the end of the server's output
        self.send_failed_at = None   # seconds from the start to a send refused by a closed connection
        self.seconds = 0.0
        self.sent = 0

    def __repr__(self):
        return f"status={self.status} closed={self.closed} {self.seconds:.2f}s sent={self.sent} {self.json}"


def attack(head_bytes, body=b"", stream=None, chunked=None, trickle=None, every=0.1, limit=30.0,
           keep_sending=False):
    """Sends the head, then the body: as given, streamed (`stream` bytes of filler), chunked
    (`chunked` bytes of filler in chunks) or trickled (`trickle` one byte every `every` s);
    stops sending at the first answer (unless keep_sending) and reads until the server closes
    or `limit` seconds pass."""
    out = Outcome()
    received = bytearray()
    start = time.monotonic()
    answered = None
    s = socket.create_connection(("127.0.0.1", args.port), timeout=limit)
    s.setblocking(False)

    def closed():
        out.closed = True
        out.closed_at = time.monotonic() - start

    def drain(wait):
        nonlocal answered
        if out.closed:
            return
        ready, _, _ = select.select([s], [], [], wait)
        if not ready:
            return
        try:
            data = s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            closed()
            return
        except BlockingIOError:
            return
        if not data:
            closed()
            return
        received.extend(data)
        if answered is None:
            answered = time.monotonic() - start

    def sending():
        return (out.send_failed_at is None and time.monotonic() - start < limit
                and (keep_sending or (answered is None and not out.closed)))

    def send_all(data):
        view = memoryview(data)
        while view and sending():
            _, writable, _ = select.select([], [s], [], 0.05)
            if writable:
                try:
                    n = s.send(view)
                except (ConnectionResetError, BrokenPipeError):
                    closed()
                    out.send_failed_at = time.monotonic() - start
                    return False
                except BlockingIOError:
                    n = 0
                view = view[n:]
            drain(0)
        return not view

    if send_all(head_bytes):
        if stream is not None or chunked is not None:
            total = stream if stream is not None else chunked
            piece = b"x" * 65536
            if chunked is not None:
                piece = b"%x\r\n" % len(piece) + piece + b"\r\n"
            while out.sent < total and sending():
                if not send_all(piece):
                    break
                out.sent += 65536
        elif trickle is not None:
            for i in range(len(trickle)):
                if not sending() or not send_all(trickle[i:i + 1]):
                    break
                out.sent += 1
                until = time.monotonic() + every
                while time.monotonic() < until:
                    if out.closed:
                        time.sleep(max(0.0, until - time.monotonic()))
                        break
                    drain(max(0.0, until - time.monotonic()))
        else:
            if send_all(body):
                out.sent = len(body)
    while not out.closed and time.monotonic() - start < limit:
        drain(0.05)
    s.close()
    out.seconds = answered if answered is not None else time.monotonic() - start
    parse(bytes(received), out)
    return out


def parse(data, out):
    split = data.find(b"\r\n\r\n")
    if split < 0:
        return
    lines = data[:split].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) >= 2 and parts[1].isdigit():
        out.status = int(parts[1])
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            out.headers[k.strip().lower()] = v.strip()
    body = data[split + 4:]
    if "content-length" in out.headers:
        body = body[:int(out.headers["content-length"])]
    out.body = body
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict):
            out.json = parsed
    except ValueError:
        pass


def normal_swap(fmt="png"):
    boundary, body = swap_form()
    request = urllib.request.Request(
        f"http://127.0.0.1:{args.port}/v1/swap?format={fmt}", data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    start = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            data = response.read()
            out = Outcome()
            out.status, out.body, out.closed = response.status, data, True
    except urllib.error.HTTPError as e:
        out = Outcome()
        out.status = e.code
        out.body = e.read()
    out.seconds = time.monotonic() - start
    return out


# ---------------------------------------------------------------------------- bombs

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width, height, max_raw_bytes=None):
    """A PNG announcing width x height RGB whose IDAT inflates to zeros (filter byte 0 and
    black pixels, row after row; only the first `max_raw_bytes` of them when given): a real
    deflate bomb, about 1/1000 of its raw size."""
    raw = height * (1 + 3 * width)
    if max_raw_bytes is not None:
        raw = min(raw, max_raw_bytes)
    compressor = zlib.compressobj(9)
    zeros = b"\0" * (1 << 20)
    pieces = [compressor.compress(zeros) for _ in range(raw >> 20)]
    idat = b"".join(pieces) + compressor.compress(b"\0" * (raw & ((1 << 20) - 1))) + compressor.flush()
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b""))


def jpeg_claiming(width, height, jpeg):
    """`jpeg` with its SOF size replaced."""
    data = bytearray(jpeg)
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            raise ValueError(f"no marker at {i}")
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xC2:
            data[i + 5:i + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        i += 2 + length
    raise ValueError("no SOF marker")


# ---------------------------------------------------------------------------- cases

results = []
failures = 0


def record(name, expected, out, bound, closed_required=True, json_code=None, words=None, note="",
           rss_checked=True):
    """Checks and prints one case."""
    global failures
    hwm_before = record.hwm
    hwm = proc_kb("VmHWM") or 0
    rss = proc_kb("VmRSS") or 0
    record.hwm = hwm
    problems = []
    if not server_alive():
        problems.append("the server died")
    if out.status not in (expected if isinstance(expected, tuple) else (expected,)):
        problems.append(f"status {out.status}, expected {expected}")
    if out.seconds > bound:
        problems.append(f"{out.seconds:.2f} s > {bound:.1f} s")
    if closed_required and not out.closed:
        problems.append("connection left open")
    if json_code and out.json.get("error") != json_code:
        problems.append(f"error code {out.json.get('error')}, expected {json_code}")
    if words and words not in out.json.get("message", ""):
        problems.append(f"message {out.json.get('message')!r} does not say {words!r}")
    growth = (hwm - hwm_before) / 1024
    if rss_checked and growth > args.rss_growth_mb:
        problems.append(f"peak RSS grew {growth:.0f} MB")
    status = "ok  " if not problems else "FAIL"
    failures += bool(problems)
    shown = "-" if out.status is None else out.status
    print(f"{status} {name:<44} status {str(shown):>4} (want {expected})  {out.seconds:6.2f} s (<= {bound:.0f})  "
          f"closed {str(out.closed):<5}  RSS {rss / 1024:6.1f} MB  peak {hwm / 1024:6.1f} MB"
          + (f"  {note}" if note else "") + ("  <- " + "; ".join(problems) if problems else ""), flush=True)


record.hwm = proc_kb("VmHWM") or 0
fds_at_start = open_fds()
deadline, idle = args.deadline, args.idle
print(f"server pid {args.pid}: RSS {proc_kb('VmRSS') / 1024:.1f} MB, {fds_at_start} open fds; "
      f"deadline {deadline} s, idle timeout {idle} s, max body {args.max_body} B, "
      f"concurrency {args.concurrency}, queue {args.queue}", flush=True)

# A normal swap first (it also warms up the models, so later growth is the attacks'), and a
# JPEG of the server's own making to turn into a bomb.
out = normal_swap("png")
record("normal swap (warm-up)", 200, out, deadline, rss_checked=False)
jpeg_out = normal_swap("jpeg")
record("normal swap, JPEG result", 200, jpeg_out, deadline, rss_checked=False)

# 1. Bodies over the limit.
boundary, _ = swap_form()
out = attack(head("/v1/swap", boundary, length=4 << 30), stream=4 << 30)
record("body 4 GB, truthful Content-Length", 413, out, SLACK, json_code="body_too_large",
       note=f"{out.sent >> 10} kB sent before the answer")
out = attack(head("/v1/swap", boundary, chunked=True), chunked=4 << 30)
record("body 4 GB, chunked", 413, out, SLACK, json_code="body_too_large",
       note=f"{out.sent >> 10} kB sent before the answer")
_, big = form([("source", b"\7" * (2 * args.max_body)), ("target", TARGET)], boundary)
out = attack(head("/v1/swap", boundary, length=2000), body=big + close_delimiter(boundary))
record("Content-Length 2000, body larger", 400, out, SLACK, json_code="bad_multipart")

# 2. Slow clients.
slow_head = head("/v1/swap", boundary, length=1000)[:-2] + b"X-Slow: " + b"s" * 400   # never ends
out = attack(b"", trickle=slow_head, every=0.2, limit=idle + 20)
record("head trickled, 1 byte / 200 ms", None, out, idle + SLACK, note=f"{out.sent} bytes sent")
boundary, body = swap_form()
out = attack(head("/v1/swap", boundary, length=len(body)), trickle=body, every=0.05, limit=deadline + 20)
record("swap body trickled, 1 byte / 50 ms", 408, out, deadline + SLACK, json_code="body_timeout")
# A route that ignores bodies answers at once; the client keeps trickling, yet the connection
# must end within the linger instead of being drained for as long as the client likes.
out = attack(head("/healthz", length=100000), trickle=b"\1" * 100000, every=0.05, limit=30, keep_sending=True)
dropped = out.send_failed_at is not None and out.send_failed_at <= LINGER + SLACK
if not dropped:
    out.closed = False    # still reading the trickled body: the connection is held
record("body trickled to /healthz", (404, 405), out, SLACK,
       note=f"the client kept sending; the server dropped the connection after "
            f"{out.send_failed_at or float('nan'):.2f} s (linger {LINGER:.0f} s)")

# 3. Malformed requests.
png_part = [("source", SOURCE), ("target", TARGET)]
boundary, body = form(png_part)
cases = [
    ("multipart: another boundary", head("/v1/swap", "other-boundary", length=len(body) + len(close_delimiter(boundary))),
     body + close_delimiter(boundary), "bad_multipart", "boundary"),
    ("multipart: no closing delimiter", head("/v1/swap", boundary, length=len(body)), body,
     "bad_multipart", "closing boundary"),
]
b2, dup = form([("source", SOURCE), ("source", TARGET)])
cases.append(("multipart: duplicate names", head("/v1/swap", b2, length=len(dup) + len(close_delimiter(b2))),
              dup + close_delimiter(b2), "bad_multipart", "given twice"))
b3, huge = form([("source", SOURCE, b"X-Junk: " + b"j" * 10000 + b"\r\n"), ("target", TARGET)])
cases.append(("multipart: 10 kB part headers", head("/v1/swap", b3, length=len(huge) + len(close_delimiter(b3))),
              huge + close_delimiter(b3), "bad_multipart", "headers are longer"))
b4 = "megafs-empty"
cases.append(("multipart: no parts", head("/v1/swap", b4, length=len(close_delimiter(b4))),
              close_delimiter(b4), "missing_field", "source"))
b5, many = form([(f"f{i}", b"1") for i in range(1000)])
cases.append(("multipart: 1000 parts", head("/v1/swap", b5, length=len(many) + len(close_delimiter(b5))),
              many + close_delimiter(b5), "bad_multipart", "parts"))
for name, h, body, code, words in cases:
    out = attack(h, body=body)
    record(name, 400, out, SLACK, closed_required=False, json_code=code, words=words)
out = attack(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: " + b"h" * 300_000 + b"\r\n\r\n")
record("HTTP head of 300 kB", (400, 431), out, SLACK)

# 4. Decompression bombs: tiny files announcing billions of pixels.
bomb = png_bomb(60_000, 60_000, max_raw_bytes=64 << 20)
jpeg = jpeg_out.body
for name, image in [(f"PNG bomb 60000x60000 ({len(bomb) >> 10} kB, real deflate)", bomb),
                    ("JPEG claiming 65000x65000", jpeg_claiming(65000, 65000, jpeg))]:
    boundary, body = form([("source", SOURCE), ("target", image)])
    body += close_delimiter(boundary)
    out = attack(head("/v1/swap", boundary, length=len(body)), body=body)
    record(name, 413, out, SLACK, closed_required=False, json_code="image_too_large")
boundary, body = form([("source", SOURCE), ("target", TARGET), ("target_mask", bomb)])
body += close_delimiter(boundary)
out = attack(head("/v1/swap", boundary, length=len(body)), body=body)
record("PNG bomb as the label map", 413, out, SLACK, closed_required=False, json_code="image_too_large")

# 5. Many connections at once: idle, trickled heads, trickled swap bodies.
n = args.connections
kinds = ["idle" if i % 4 < 2 else "slow head" if i % 4 == 2 else "slow body" for i in range(n)]
outcomes = [None] * n
boundary, body = swap_form()
swap_head = head("/v1/swap", boundary, length=len(body))


def run(i):
    if kinds[i] == "idle":
        outcomes[i] = attack(b"", limit=idle + 20)
    elif kinds[i] == "slow head":
        outcomes[i] = attack(b"", trickle=slow_head, every=0.2, limit=idle + 20)
    else:
        outcomes[i] = attack(swap_head, trickle=body, every=0.1, limit=deadline + 20)


hwm_before = proc_kb("VmHWM")
start = time.monotonic()
threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
time.sleep(0.5)
fds_during = open_fds()
for t in threads:
    t.join()
wall = time.monotonic() - start
admitted = args.concurrency + args.queue
uploads = [o for o, k in zip(outcomes, kinds) if k == "slow body"]
quiet = [o for o, k in zip(outcomes, kinds) if k != "slow body"]
summary = Outcome()
summary.closed = all(o.closed for o in outcomes)
summary.seconds = wall
statuses = {}
for o in uploads:
    statuses[o.status] = statuses.get(o.status, 0) + 1
want = {408: admitted, 503: len(uploads) - admitted}
summary.status = "ok" if statuses == want else "wrong"
late_quiet = [o for o in quiet if o.status is not None or o.seconds > idle + SLACK]
late_503 = [o for o in uploads if o.status == 503 and o.seconds > SLACK]
late_408 = [o for o in uploads if o.status == 408 and o.seconds > deadline + SLACK]
note = (f"{n} connections ({fds_during} server fds while open): uploads {statuses} (want {want}); "
        f"{len(quiet)} idle/slow heads closed, {len(late_quiet)} late; 503 late {len(late_503)}, 408 late {len(late_408)}")
if late_quiet or late_503 or late_408:
    summary.status = "late"
record(f"{n} connections at once", "ok", summary, deadline + 4 * SLACK, note=note)
out = normal_swap("png")
record("normal swap afterwards", 200, out, deadline, rss_checked=False)
time.sleep(LINGER + 0.5)
fds_now = open_fds()
leak = Outcome()
leak.status = "ok" if fds_now <= fds_at_start + 2 else "leak"
leak.closed = True
record("server fds back to start", "ok", leak, 1, note=f"{fds_at_start} at start, {fds_now} now")

# 6. Not an attack: the largest image the pixel limit allows, to show its memory cost.
allowed = png_bomb(4000, 4000)
boundary, body = form([("source", allowed), ("target", TARGET)])
body += close_delimiter(boundary)
out = attack(head("/v1/swap", boundary, length=len(body)), body=body, limit=deadline + 10)
record(f"4000x4000 PNG source ({len(allowed) >> 10} kB), allowed", 200, out, deadline,
       closed_required=False, rss_checked=False, note="(memory of the largest allowed image)")

alive = server_alive()
print(f"server {'alive' if alive else 'DEAD'}; peak RSS {proc_kb('VmHWM') / 1024 if alive else 0:.1f} MB; "
      f"{failures} failing case(s)")
sys.exit(1 if failures or not alive else 0)
