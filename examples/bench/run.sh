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
megafs="${MEGAFS:-}"
if [ -z "$megafs" ]; then
  echo "building megafs (swift build -c release --scratch-path .build-bench --product megafs)" >&2
  (cd "$root" && swift build -c release --scratch-path .build-bench --product megafs >&2)
  megafs="$root/.build-bench/release/megafs"
fi
cd "$root"
exec "$py" "$root/examples/bench/bench.py" --megafs "$megafs" "$@"
