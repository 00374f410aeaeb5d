#!/usr/bin/env bash
# The test command: installs missing Debian packages, then runs the whole suite in release
# mode (numeric loops in debug builds are 10-100x slower) with testing enabled.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
# --no-parallel: with 2 cores Swift Testing's pool has 2 threads, and long synchronous tests
# (the corruption sweep, the node-limit tests) running beside the server's queue and deadline
# tests starved their event loops past the deadlines they check. Serial: about 60 s instead of
# 30 s for the test run itself, and no such interference.
exec swift test -c release -Xswiftc -enable-testing --no-parallel "$@"
