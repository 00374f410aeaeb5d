#!/usr/bin/env python3
"""Reference swap with ONNX Runtime on exported models (what the Swift runtime
must reproduce): encoder on [target, source] -> swapper -> generator -> released
post-processing (min-max denorm, soft-erosion mask from the target's labels,
blend with the target at the generator's resolution).

  python run_swap.py --models /work/full/torchscript --swapper ftm \\
      --source ../samples/synthetic_face.png --target ../samples/astronaut_face.png \\
      --labels ../samples/astronaut_face_labels.png -o swapped.png

--models is a folder written by export.py (encoder.onnx, swapper-<type>.onnx,
generator.onnx). With random weights the output is noise inside the mask.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import megafs_pipeline as pp  # noqa: E402
from export import run_ort  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", required=True)
    ap.add_argument("--swapper", default="ftm", choices=["ftm", "injection", "lcr"])
    ap.add_argument("--source", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--labels", required=True, help="uint8 label map of the target (CelebAMask-HQ ids)")
    ap.add_argument("-o", "--output", default="swapped.png")
    ap.add_argument("--save-npy", default=None, help="folder for the intermediate arrays")
    a = ap.parse_args()
    from PIL import Image
    d = Path(a.models)
    src = np.array(Image.open(a.source).convert("RGB"))
    tgt = np.array(Image.open(a.target).convert("RGB"))
    labels = np.array(Image.open(a.labels))
    t0 = time.time()
    x = np.stack([pp.preprocess(tgt), pp.preprocess(src)])
    e = run_ort(d / "encoder.onnx", {"image": x})
    t1 = time.time()
    sw = run_ort(d / f"swapper-{a.swapper}.onnx",
                 {"idd": e["latents"][1:2], "att": e["latents"][0:1]})["swapped_latents"]
    t2 = time.time()
    img = run_ort(d / "generator.onnx", {"struct": e["struct"][0:1], "latents": sw})["image"]
    t3 = time.time()
    g = img.shape[-1]
    den = pp.denorm(img)
    mask = pp.soft_erosion(pp.face_map(labels, g))
    tgt_r = pp.resize_bilinear(tgt, g, g).astype(np.float32)
    out = pp.blend(den, tgt_r, mask)
    t4 = time.time()
    Image.fromarray(pp.to_u8(out)).save(a.output)
    print(f"encoder {t1 - t0:.1f}s, swapper {t2 - t1:.2f}s, generator {t3 - t2:.1f}s, "
          f"post-processing {t4 - t3:.1f}s -> {a.output} ({g}x{g})")
    if a.save_npy:
        o = Path(a.save_npy)
        o.mkdir(parents=True, exist_ok=True)
        for k, v in {"encoder_input": x, "latents": e["latents"], "struct": e["struct"],
                     "swapped_latents": sw, "generated": img, "generated_denorm": den,
                     "mask": mask, "blended": out}.items():
            np.save(o / f"{k}.npy", v)


if __name__ == "__main__":
    main()
