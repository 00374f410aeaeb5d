#!/usr/bin/env bash
# The main job on the bundled sample: installs missing Debian packages, builds megafs in release
# mode, converts the bundled fixture models (tiny exports of the three MegaFS networks, made by
# examples/export/) into ./models (float32) and ./models-int8 (int8 weights), validates the int8
# drift (each model, then the whole swap), and swaps the sample faces with both.
# Writes: models/, models-int8/ (+ models.json), out/swapped.png, out/swapped-int8.png,
# out/grid.png, out/drift/ (validation report of the int8 generator).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
echo "== building megafs (release)" >&2
swift build -c release --product megafs
bin=.build/release/megafs
mkdir -p models models-int8 out
manifest='{"encoder": "encoder.mfs", "generator": "generator.mfs",
 "swappers": {"ftm": "swapper-ftm.mfs", "injection": "swapper-injection.mfs", "lcr": "swapper-lcr.mfs"}}'
for name in encoder swapper-ftm swapper-injection swapper-lcr generator; do
  echo "== convert fixtures/$name/model.onnx -> models/$name.mfs and models-int8/$name.mfs" >&2
  "$bin" convert "fixtures/$name/model.onnx" -o "models/$name.mfs" --quiet
  # The tiny fixtures' weights are small: quantize them all (--min-elements 0). The encoder (a
  # deep BN ResNet) keeps its most drift-sensitive weights float32 to stay within cosine 0.999.
  extra=(--min-elements 0)
  if [ "$name" = encoder ]; then extra+=(--drift-budget 0.001); fi
  "$bin" convert "fixtures/$name/model.onnx" -o "models-int8/$name.mfs" --quiet --quantize int8 "${extra[@]}" | grep -E "^(int8|drift)" || true
done
echo "$manifest" > models/models.json
echo "$manifest" > models-int8/models.json
echo "== inspect models-int8/generator.mfs" >&2
"$bin" inspect models-int8/generator.mfs
echo "== validate: int8 models against float32 (fails the demo when a threshold is crossed)" >&2
"$bin" validate models-int8/generator.mfs --reference models/generator.mfs --min-psnr 40 --layers 3 --report out/drift -q
"$bin" validate models-int8/swapper-ftm.mfs --reference models/swapper-ftm.mfs --min-cosine 0.9999 --layers 3 -q
"$bin" validate models-int8/encoder.mfs --reference models/encoder.mfs --min-cosine 0.999 --layers 3 -q
sample=(--source examples/samples/synthetic_face.png --target examples/samples/astronaut_face.png
        --target-mask examples/samples/astronaut_face_labels.png)
"$bin" validate --swap --models models-int8 --reference-models models "${sample[@]}" --min-psnr 35 -q
echo "== swap: source examples/samples/synthetic_face.png onto target examples/samples/astronaut_face.png" >&2
"$bin" swap "${sample[@]}" --models models -o out/swapped.png --grid out/grid.png
"$bin" swap "${sample[@]}" --models models-int8 -o out/swapped-int8.png
echo "== done: out/swapped.png (float32), out/swapped-int8.png (int8), out/grid.png, out/drift/index.html" >&2
echo "   (tiny random-weight models: the face is not meant to look real)" >&2
