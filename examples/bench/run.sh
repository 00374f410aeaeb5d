#!/usr/bin/env bash
# The benchmark in one command (issue 8): builds megafs (release, own scratch path), then runs
# bench.py in the exporter's virtualenv. All options go to bench.py (see --help).
#   examples/bench/run.sh [--quick] [--models enc-b1,ftm,...] [--engines ours-fp32,ort-all,...]
#                         [--runs N] [--rounds N] [--cache DIR] [--out DIR] [--no-kernels] [--no-scaling]
# Environment: PYTHON (default /work/venv/bin/python, else python3), MEGAFS (use this binary, no build).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
py="${PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x /work/venv/bin/python ]; then py=/work/venv/bin/python; else py=python3; fi
fi
for a in "$@"; do
  if [ "$a" = "-h" ] || [ "$a" = "--help" ]; then exec "$py" "$root/examples/bench/bench.py" --help; fi
done
"$py" -c "import onnxruntime, openvino, nncf, torch, onnx, matplotlib" 2>/dev/null || {
  echo "missing Python packages: $py -m pip install -r examples/bench/requirements.txt" >&2; exit 1; }
for a in "$@"; do
  if [ "$a" = "--render" ]; then exec "$py" "$root/examples/bench/bench.py" "$@"; fi
done
megafs="${MEGAFS:-}"
cd "$root"
if [ -z "$megafs" ]; then
  # The build and the artifacts that do not need megafs (exports, peers' int8 models, PyTorch
  # weights, inputs) run side by side; measuring starts only when both are done.
  mkdir -p out
  log="$root/out/bench-build.log"
  echo "building megafs (swift build -c release --scratch-path .build-bench --product megafs, log: $log)" >&2
  t0=$(date +%s)
  ( swift build -c release --scratch-path .build-bench --product megafs >"$log" 2>&1; echo $? >"$log.rc"; date +%s >"$log.end" ) &
  build_pid=$!
  trap 'kill $build_pid 2>/dev/null' INT TERM
  "$py" "$root/examples/bench/bench.py" --prepare-only "$@" || echo "preparing artifacts failed; the main run retries what is missing" >&2
  wait $build_pid || true
  trap - INT TERM
  # SwiftPM can report an error (a source edited while it builds) and still exit 0, leaving the
  # previous binary in place: measuring that would credit the current tree with old code.
  if [ "$(cat "$log.rc" 2>/dev/null)" != 0 ] || grep -q "^error:" "$log"; then
    tail -30 "$log" >&2; echo "building megafs failed (log: $log)" >&2; exit 1
  fi
  export BENCH_BUILD_SECONDS=$(( $(cat "$log.end") - t0 ))
  export BENCH_OVERLAP_SECONDS=$(( $(date +%s) - t0 ))
  echo "megafs built in ${BENCH_BUILD_SECONDS} s; ${BENCH_OVERLAP_SECONDS} s before measuring" >&2
  megafs="$root/.build-bench/release/megafs"
fi
exec "$py" "$root/examples/bench/bench.py" --megafs "$megafs" "$@"
