#!/usr/bin/env bash
# The test command: installs missing Debian packages, then runs the whole suite in release
# mode (numeric loops in debug builds are 10-100x slower) with testing enabled.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
exec swift test -c release -Xswiftc -enable-testing "$@"
