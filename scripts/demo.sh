#!/usr/bin/env bash
# The main job on the bundled sample: installs missing Debian packages, builds megafs in release
# mode, converts the bundled fixture models (tiny exports of the three MegaFS networks, made by
# examples/export/) into ./models, inspects them, and swaps the sample faces.
# Writes: models/*.mfs (+ models.json), out/swapped.png, out/grid.png.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
echo "== building megafs (release)" >&2
swift build -c release --product megafs
bin=.build/release/megafs
mkdir -p models out
for name in encoder swapper-ftm swapper-injection swapper-lcr generator; do
  echo "== convert fixtures/$name/model.onnx -> models/$name.mfs" >&2
  "$bin" convert "fixtures/$name/model.onnx" -o "models/$name.mfs" --quiet
done
cat > models/models.json <<'JSON'
{"encoder": "encoder.mfs", "generator": "generator.mfs",
 "swappers": {"ftm": "swapper-ftm.mfs", "injection": "swapper-injection.mfs", "lcr": "swapper-lcr.mfs"}}
JSON
echo "== inspect models/generator.mfs" >&2
"$bin" inspect models/generator.mfs
echo "== swap: source examples/samples/synthetic_face.png onto target examples/samples/astronaut_face.png" >&2
"$bin" swap --source examples/samples/synthetic_face.png --target examples/samples/astronaut_face.png \
  --target-mask examples/samples/astronaut_face_labels.png --models models \
  -o out/swapped.png --grid out/grid.png
echo "== done: out/swapped.png, out/grid.png (tiny random-weight models: the face is not meant to look real)" >&2
