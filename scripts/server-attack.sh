#!/usr/bin/env bash
# Hostile clients against `megafs serve` on loopback (issue #10): bodies over the limit
# (truthful Content-Length, chunked, untruthful), slow heads and bodies, malformed multipart,
# a huge HTTP head, decompression bombs (PNG, JPEG, label map), 200 idle or slow connections
# at once, then a normal swap. Prints per case the status, the time to the answer and the
# server's RSS and peak RSS; exits non-zero if a case gets a wrong status, misses its time
# bound, the server's peak RSS grows past the bound, or the server dies.
# (scripts/server_attack.py, Python standard library only; server start-up in serve-support.sh.)
#
#   bash scripts/server-attack.sh [MODELS_DIR=models] [CONNECTIONS=200]
#   MEGAFS_BIN=path/to/megafs to use another build (default .build/release/megafs).
set -euo pipefail
cd "$(dirname "$0")/.."
models=${1:-models}; connections=${2:-200}
source scripts/serve-support.sh
# Short limits so that the slow cases finish in seconds; the client must know the same values.
deadline=6; idle=2; max_body=$((4 << 20)); concurrency=1; queue=2
start_megafs_server out/server-attack-server.log "$models" --deadline $deadline --idle-timeout $idle \
  --max-body $max_body --concurrency $concurrency --queue $queue
echo "server ready on port $port (models: $models)"
status=0
python3 scripts/server_attack.py "$port" "$server" --deadline $deadline --idle $idle --max-body $max_body \
  --concurrency $concurrency --queue $queue --connections "$connections" || status=$?
if ! kill -0 $server 2>/dev/null; then
  echo "the server is gone; see out/server-attack-server.log" >&2; exit 1
fi
if grep -qiE "fatal error|crash|panic" out/server-attack-server.log; then
  echo "the server log reports a crash:" >&2; grep -iE "fatal error|crash|panic" out/server-attack-server.log | head >&2; status=1
fi
kill -TERM $server; wait $server || { echo "the server exited with status $? on SIGTERM" >&2; status=1; }
exit $status
