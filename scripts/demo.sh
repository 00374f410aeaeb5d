#!/usr/bin/env bash
# The main job on the bundled sample: installs missing Debian packages, builds megafs in release
# mode, converts every bundled fixture model (tiny exports of the three MegaFS networks) to the
# native format and inspects the result. Everything it writes goes to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
echo "== building megafs (release)" >&2
swift build -c release --product megafs
bin=.build/release/megafs
mkdir -p out
shopt -s nullglob
models=(fixtures/*/model.onnx)
[ ${#models[@]} -gt 0 ] || { echo "no fixture models under fixtures/" >&2; exit 1; }
for model in "${models[@]}"; do
  name=$(basename "$(dirname "$model")")
  case "$name" in ops-*) continue ;; esac
  echo "== $name: convert" >&2
  "$bin" convert "$model" -o "out/$name.mfs"
  echo "== $name: inspect" >&2
  "$bin" inspect "out/$name.mfs"
done
echo "== done: model files in out/" >&2
