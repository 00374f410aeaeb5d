#!/usr/bin/env python3
"""Regenerate fixtures/ (tiny MegaFS models, golden data, manifest.json).

  python examples/export/make_fixtures.py [-o fixtures]

Deterministic: seeded weights and inputs, one thread for torch and ONNX
Runtime. Every model folder holds model.onnx, inputs/<input>.npy,
torch/<output>.npy and ort/<output>.npy (float32, little-endian .npy v1,
C order); chain/ holds a tiny end-to-end swap. See examples/export/README.md.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from megafs_models import (N_LATENTS, SWAP_INDICE, TINY_LATENT, TINY_BASE_WIDTH,  # noqa: E402
                           config_dict)
from megafs_init import smooth_images  # noqa: E402
import megafs_pipeline as pp  # noqa: E402
from export import (build_encoder, build_swapper, build_generator, example_inputs,  # noqa: E402
                    export_and_check, run_ort, save_npy)

SEED = 0
GEN_SIZE = 64
SAMPLES = HERE.parent / "samples"
# the only folders of fixtures/ this script creates or deletes (plus manifest.json)
OWNED_DIRS = ("encoder", "encoder-dynamo", "swapper-ftm", "swapper-injection", "swapper-lcr",
              "swapper-injection-dynamo", "generator", "generator-dynamo",
              "generator-opset13", "chain")


def _versions():
    import onnx
    import onnxruntime
    return {"torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}


def _load_samples():
    from PIL import Image
    src = np.array(Image.open(SAMPLES / "synthetic_face.png").convert("RGB"))
    tgt = np.array(Image.open(SAMPLES / "astronaut_face.png").convert("RGB"))
    labels = np.array(Image.open(SAMPLES / "astronaut_face_labels.png"))
    return src, tgt, labels


def chain_encoder_input():
    """The encoder fixture's golden input: the chain's batch [target, source]."""
    src, tgt, _ = _load_samples()
    return np.stack([pp.preprocess(tgt), pp.preprocess(src)])


def make_chain(root, enc, sw, gen, model_rel):
    """Tiny end-to-end swap with the fixture models; returns the manifest 'chain' entry."""
    src, tgt, labels = _load_samples()
    G = gen.cfg.size
    files = {}

    def put(key, arr, desc, sub=""):
        rel = f"chain/{sub}{key}.npy"
        save_npy(root / rel, arr)
        files[(sub + key)] = {"file": rel, "shape": list(arr.shape), "dtype": str(arr.dtype),
                              "description": desc}

    put("source_image", src, "source face (identity donor), RGB HWC uint8, "
        "examples/samples/synthetic_face.png")
    put("target_image", tgt, "target face (kept attributes, background), RGB HWC uint8, "
        "examples/samples/astronaut_face.png")
    put("target_labels", labels, "face-parsing labels of the target, CelebAMask-HQ numbering, "
        "uint8 HW, examples/samples/astronaut_face_labels.png")
    x = chain_encoder_input()
    enc_in_file = root / "encoder" / "inputs" / "image.npy"
    if not np.array_equal(np.load(enc_in_file), x):
        raise RuntimeError("encoder fixture input is not the chain's encoder input")
    files["encoder_input"] = {
        "file": "encoder/inputs/image.npy", "shape": list(x.shape), "dtype": "float32",
        "description": "step 1: batch [target, source]; bilinear resize to 256 (identity here), "
                       "/255, (x-0.5)/0.5; float32 NCHW. Shared with the encoder fixture's input."}

    # --- torch reference --------------------------------------------------- #
    with torch.no_grad():
        lat, struct = enc(torch.from_numpy(x))
        swapped = sw(lat[1:2], lat[0:1])
        img = gen(struct[0:1], swapped)
    lat, struct, swapped, img = (t.numpy() for t in (lat, struct, swapped, img))
    # --- the same chain in ONNX Runtime (each step fed its own previous outputs)
    o = run_ort(root / model_rel["encoder"], {"image": x}, threads=1)
    o_sw = run_ort(root / model_rel["swapper"], {"idd": o["latents"][1:2], "att": o["latents"][0:1]},
                   threads=1)["swapped_latents"]
    o_img = run_ort(root / model_rel["generator"], {"struct": o["struct"][0:1], "latents": o_sw},
                    threads=1)["image"]

    m0 = pp.face_map(labels, G)
    mask = pp.soft_erosion(m0)
    tgt_r = pp.resize_bilinear(tgt, G, G).astype(np.float32)
    den = pp.denorm(img)
    out = pp.blend(den, tgt_r, mask)
    o_den = pp.denorm(o_img)
    o_out = pp.blend(o_den, tgt_r, mask)

    put("latents", lat, "step 2: encoder latents (2,18,D), row 0 target, row 1 source (torch)")
    put("struct", struct, "step 2: encoder struct (2,C,4,4) (torch)")
    put("swapped_latents", swapped, "step 3: ftm swapper, idd = latents[1:2] (source), "
        "att = latents[0:1] (target) (torch)")
    put("generated", img, f"step 4: generator(struct[0:1], swapped_latents), (1,3,{G},{G}); "
        f"uses the first {gen.cfg.n_latent} of the 18 latents (torch)")
    put("generated_denorm", den, "step 5a: min-max over the whole image to [0,255], no clamp, "
        "as HWC float32 (torch)")
    put("target_resized", tgt_r, f"step 5b: target resized to {G}x{G} (half-pixel bilinear, "
        "float32 HWC, not rounded)")
    put("mask_m0", m0, f"step 5c: (labels in {{1,2,3,4,5,6,10,12,13}}) + (label == 11) as 0/1, "
        f"each resized to {G}x{G} (half-pixel bilinear) and added; float32")
    put("mask", mask, "step 5d: SoftErosion(kernel 17, threshold 0.9, iterations 7) of mask_m0; "
        "float32")
    put("blended", out, "step 5e: generated_denorm*mask + target_resized*(1-mask), float32 HWC "
        "(torch)")
    put("blended_u8", pp.to_u8(out), "step 6: blended rounded to nearest and clipped to "
        "[0,255], uint8 HWC RGB")
    for k, v, desc in (("latents", o["latents"], "encoder latents"), ("struct", o["struct"], "struct"),
                       ("swapped_latents", o_sw, "swapped latents"), ("generated", o_img,
                                                                       "generator image"),
                       ("generated_denorm", o_den, "denormalised image"), ("blended", o_out,
                                                                           "blended image")):
        put(k, v, f"{desc}, every step run by ONNX Runtime on its own previous outputs", sub="ort/")
    # a stand-alone check of the mask at a size where the >= threshold branch covers more pixels
    m0_128 = pp.face_map(labels, 128)
    put("mask_m0_128", m0_128, "extra: mask_m0 at 128x128 (not used by the chain)")
    put("mask_128", pp.soft_erosion(m0_128), "extra: SoftErosion of mask_m0_128 "
        "(not used by the chain)")

    diffs = {"latents": float(np.abs(lat - o["latents"]).max()),
             "struct": float(np.abs(struct - o["struct"]).max()),
             "swapped_latents": float(np.abs(swapped - o_sw).max()),
             "generated": float(np.abs(img - o_img).max()),
             "generated_denorm": float(np.abs(den - o_den).max()),
             "blended": float(np.abs(out - o_out).max())}
    return {
        "description": (
            "Tiny end-to-end swap with the fixture models encoder, swapper-ftm and generator "
            f"(generator at {G} px instead of 1024, so blending happens at {G}x{G}). "
            "Steps: (1) preprocess target and source to [-1,1] and batch [target, source]; "
            "(2) encoder; (3) ftm swapper with idd = source latents, att = target latents; "
            "(4) generator on the target's struct and the swapped latents; (5) released "
            "post-processing: min-max denormalise to [0,255] per image without clamp, face "
            "mask from the target labels resized to the generator size, soft erosion, blend "
            "with the target resized to the generator size; (6) round to uint8. The files "
            "without a prefix are the PyTorch reference; chain/ort/ holds the same steps run "
            "by ONNX Runtime."),
        "models": {"encoder": model_rel["encoder"], "swapper": model_rel["swapper"],
                   "generator": model_rel["generator"]},
        "image_size": 256, "generator_size": G, "generator_latents_used": gen.cfg.n_latent,
        "swap_indice": SWAP_INDICE, "n_latents": N_LATENTS, "latent_dim": int(lat.shape[2]),
        "source": "examples/samples/synthetic_face.png",
        "target": "examples/samples/astronaut_face.png",
        "target_labels": "examples/samples/astronaut_face_labels.png",
        "face_label_ids": list(pp.FACE_IDS), "mouth_label_id": pp.MOUTH_ID,
        "soft_erosion": {"kernel_size": 17, "threshold": 0.9, "iterations": 7},
        "resize": "half-pixel bilinear, no antialias: src = (dst+0.5)*in/out-0.5 clamped to "
                  "[0,in-1] (OpenCV INTER_LINEAR on float data)",
        "files": files,
        "max_abs_diff_torch_vs_ort": diffs,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-o", "--output", default=str(HERE.parents[1] / "fixtures"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    root = Path(a.output)
    root.mkdir(parents=True, exist_ok=True)
    # fixtures/ is shared with other generators (e.g. ops-*): remove only the
    # folders this script writes.
    for name in OWNED_DIRS:
        if (root / name).is_dir():
            shutil.rmtree(root / name)

    enc = build_encoder(tiny=True, seed=SEED)
    swappers = {k: build_swapper(k, tiny=True, seed=SEED) for k in ("ftm", "injection", "lcr")}
    gen = build_generator(GEN_SIZE, tiny=True, seed=SEED)

    enc_in = example_inputs("encoder", enc, SEED, batch=2)
    sw_in = example_inputs("swapper", swappers["ftm"], SEED)
    gen_in = example_inputs("generator", gen, SEED)

    jobs = [  # name, model, kind, variant, inputs, opset, dynamo, dynamic batch, golden inputs
        ("encoder", enc, "encoder", None, enc_in, 17, False, True,
         {"image": torch.from_numpy(chain_encoder_input())}),
        ("encoder-dynamo", enc, "encoder", None, enc_in, 18, True, True,
         {"image": smooth_images(1, 256, seed=SEED + 12)}),
        ("swapper-ftm", swappers["ftm"], "swapper", "ftm", sw_in, 17, False, False, None),
        ("swapper-injection", swappers["injection"], "swapper", "injection", sw_in, 17, False, False,
         None),
        ("swapper-lcr", swappers["lcr"], "swapper", "lcr", sw_in, 17, False, False, None),
        ("swapper-injection-dynamo", swappers["injection"], "swapper", "injection", sw_in, 18, True,
         False, None),
        ("generator", gen, "generator", None, gen_in, 17, False, False, None),
        ("generator-dynamo", gen, "generator", None, gen_in, 18, True, False, None),
        ("generator-opset13", gen, "generator", None, gen_in, 13, False, False, None),
    ]
    assert {j[0] for j in jobs} | {"chain"} == set(OWNED_DIRS)
    entries = []
    for name, model, kind, variant, inputs, opset, dynamo, dyn, golden in jobs:
        d = root / name
        entry, _, _ = export_and_check(
            model, kind, variant, inputs, d / "model.onnx", d, root, name, opset=opset,
            dynamo=dynamo, dynamic_batch=dyn, threads=1, timings=False, golden_inputs=golden,
            extra={"config": config_dict(model.cfg), "seed": SEED, "tiny": True})
        print(f"{name:26s} {entry['exporter']:11s} opset {entry['opset']:2d} "
              f"{entry['file_bytes'] / 1e3:8.1f} kB  max|torch-ort| {entry['max_abs_diff']:.3g} "
              f"(rel {entry['max_rel_diff']:.3g})", flush=True)
        entries.append(entry)

    chain = make_chain(root, enc, swappers["ftm"], gen,
                       {"encoder": "encoder/model.onnx", "swapper": "swapper-ftm/model.onnx",
                        "generator": "generator/model.onnx"})
    manifest = {
        "description": "Tiny MegaFS test models exported from PyTorch with golden data. Paths "
                       "are relative to this file. Regenerate with examples/export/make_fixtures.sh.",
        "tiny_config": {
            "latent_dim": TINY_LATENT, "n_latents": N_LATENTS, "swap_indice": SWAP_INDICE,
            "encoder_base_width": TINY_BASE_WIDTH, "encoder_image_size": 256,
            "struct_shape": [TINY_LATENT, 4, 4], "generator_size": GEN_SIZE,
            "generator_channels": {str(k): v for k, v in gen.cfg.channels.items() if k <= GEN_SIZE},
            "generator_latents_used": gen.cfg.n_latent,
            "ftm_hidden": swappers["ftm"].cfg.hidden,
        },
        "seed": SEED,
        "versions": _versions(),
        "models": entries,
        "chain": chain,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = (root / "manifest.json").stat().st_size + sum(
        f.stat().st_size for n in OWNED_DIRS for f in (root / n).rglob("*") if f.is_file())
    print(f"chain max|torch-ort|: {json.dumps(chain['max_abs_diff_torch_vs_ort'])}")
    print(f"fixtures total: {total / 1e6:.2f} MB in {root}")


if __name__ == "__main__":
    main()
