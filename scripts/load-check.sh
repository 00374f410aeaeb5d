#!/usr/bin/env bash
# Load check of `megafs serve` on loopback: starts the server on the given models, drives it
# with concurrent clients for a bounded time (scripts/load_client.py, Python standard library
# only), then prints throughput, p50/p99 latency, the status counts (503 = queue full, the
# intended back-pressure; anything else is an error) and the server's peak RSS.
#
#   bash scripts/load-check.sh [MODELS_DIR=models] [CLIENTS=8] [SECONDS=20] [extra serve flags...]
#   MEGAFS_BIN=path/to/megafs to use another build (default .build/release/megafs).
set -euo pipefail
cd "$(dirname "$0")/.."
models=${1:-models}; clients=${2:-8}; seconds=${3:-20}; shift $(( $# > 3 ? 3 : $# )) || true
source scripts/serve-support.sh
start_megafs_server out/load-check-server.log "$models" "$@"
echo "server ready on port $port (models: $models); idle RSS $(grep VmRSS /proc/$server/status | awk '{print $2/1024 " MB"}')"
status=0
python3 scripts/load_client.py "$port" "$clients" "$seconds" || status=$?
echo "server peak RSS $(grep VmHWM /proc/$server/status | awk '{print $2/1024 " MB"}'), now $(grep VmRSS /proc/$server/status | awk '{print $2/1024 " MB"}')"
kill -TERM $server; wait $server || true
exit $status
