"""Concurrent clients POSTing the sample swap to a megafs server for a bounded time.

Usage: load_client.py PORT CLIENTS SECONDS [SOURCE TARGET]
Prints throughput, p50/p99 latency of successful swaps and the count of every status."""
import collections
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

port, clients, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
source = sys.argv[4] if len(sys.argv) > 4 else "examples/samples/synthetic_face.png"
target = sys.argv[5] if len(sys.argv) > 5 else "examples/samples/astronaut_face.png"
parts = [("source", open(source, "rb").read()), ("target", open(target, "rb").read())]
boundary = "----megafs" + uuid.uuid4().hex
body = b"".join(
    f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.png"\r\n'
    f"Content-Type: image/png\r\n\r\n".encode() + data + b"\r\n" for name, data in parts
) + f"--{boundary}--\r\n".encode()

latencies, statuses = [], collections.Counter()
lock = threading.Lock()
deadline = time.time() + seconds


def client():
    while time.time() < deadline:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/swap", data=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        start = time.time()
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                response.read()
                status = response.status
        except urllib.error.HTTPError as e:
            e.read()
            status = e.code
        except Exception as e:  # connection errors count as failures, by type
            status = type(e).__name__
        elapsed = time.time() - start
        with lock:
            statuses[status] += 1
            if status == 200:
                latencies.append(elapsed)
        if status == 503:
            time.sleep(0.05)   # the server said busy: back off a little, as a client should


threads = [threading.Thread(target=client) for _ in range(clients)]
start = time.time()
for t in threads:
    t.start()
for t in threads:
    t.join()
wall = time.time() - start
latencies.sort()


def quantile(p):
    return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")


failed = sum(n for s, n in statuses.items() if s not in (200, 503))
print(f"{clients} clients for {wall:.1f} s: {statuses[200] / wall:.2f} swaps/s, "
      f"p50 {quantile(0.5):.0f} ms, p99 {quantile(0.99):.0f} ms, statuses {dict(statuses)}, "
      f"errors other than 503: {failed}")
sys.exit(1 if failed else 0)
