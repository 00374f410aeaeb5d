#!/usr/bin/env python3
"""Export the MegaFS networks (encoder, swapper, generator) to ONNX, with
golden data (seeded inputs, PyTorch outputs, ONNX Runtime outputs) beside them.

Examples:
  python export.py --encoder --swapper ftm --generator -o out/            # random weights
  python export.py --encoder --swapper ftm --checkpoint ftm_final.pth \\
                   --generator --generator-checkpoint stylegan2-ffhq-config-f.pth -o out/
  python export.py --tiny --encoder --generator --size 32 -o out/tiny
  python export.py --dynamo --generator -o out/dynamo

Output layout in DIR:
  encoder.onnx, swapper-<type>.onnx, generator.onnx  (the models)
  <stem>/inputs/<input>.npy, <stem>/torch/<output>.npy, <stem>/ort/<output>.npy
  manifest.json   (same schema as fixtures/manifest.json, plus timings)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from megafs_models import (Encoder, Swapper, Generator, EncoderConfig, SwapperConfig,  # noqa: E402
                           GeneratorConfig, tiny_encoder_config, tiny_swapper_config,
                           tiny_generator_config, load_generator_state, load_checkpoint,
                           config_dict, N_LATENTS)
from megafs_init import (init_encoder, init_swapper, init_generator, smooth_images,  # noqa: E402
                         random_latents, encoder_stats, swapper_stats, generator_stats)

SWAPPER_KINDS = ("ftm", "injection", "lcr")
# ONNX protobuf limit is 2 GiB; stay well below it before switching to external data.
EXTERNAL_DATA_THRESHOLD = 1_800_000_000


# --------------------------------------------------------------------------- #
# Building models and their example inputs
# --------------------------------------------------------------------------- #

def build_encoder(tiny=False, checkpoint=None, seed=0):
    cfg = tiny_encoder_config() if tiny else EncoderConfig()
    enc = Encoder(cfg)
    if checkpoint:
        enc.load_state_dict(load_checkpoint(checkpoint)["e"], strict=True)
        enc.eval()
    else:
        init_encoder(enc, seed=seed, calib_batch=8 if tiny else 4)
    return enc.eval()


def build_swapper(kind, tiny=False, checkpoint=None, seed=0):
    cfg = tiny_swapper_config(kind) if tiny else SwapperConfig(kind=kind)
    sw = Swapper(cfg)
    if checkpoint:
        sw.load_state_dict(load_checkpoint(checkpoint)["s"], strict=True)
    else:
        init_swapper(sw, seed=seed)
    return sw.eval()


def build_generator(size=None, tiny=False, checkpoint=None, seed=0):
    if tiny:
        cfg = tiny_generator_config(size or 64)
    else:
        cfg = GeneratorConfig(size=size or 1024)
    gen = Generator(cfg)
    if checkpoint:
        ck = load_checkpoint(checkpoint)
        load_generator_state(gen, ck["g_ema"] if "g_ema" in ck else ck)
    else:
        init_generator(gen, seed=seed)
    return gen.eval()


def example_inputs(kind, model, seed, batch=2):
    """Seeded example inputs: dict name -> tensor (ordered like forward args)."""
    if kind == "encoder":
        return {"image": smooth_images(batch, model.cfg.image_size, seed=seed + 11)}
    if kind == "swapper":
        d = model.cfg.latent_dim
        return {"idd": random_latents(1, d, seed=seed + 21),
                "att": random_latents(1, d, seed=seed + 22)}
    if kind == "generator":
        g = torch.Generator().manual_seed(seed + 31)
        c4 = model.cfg.channels[4]
        return {"struct": torch.randn(1, c4, 4, 4, generator=g),
                "latents": random_latents(1, model.cfg.style_dim, seed=seed + 32)}
    raise ValueError(kind)


OUTPUT_NAMES = {"encoder": ["latents", "struct"], "swapper": ["swapped_latents"],
                "generator": ["image"]}


def model_stats(kind, model, inputs):
    args = list(inputs.values())
    if kind == "encoder":
        return encoder_stats(model, *args)
    if kind == "swapper":
        return swapper_stats(model, *args)
    return generator_stats(model, *args)


# --------------------------------------------------------------------------- #
# Export
# --------------------------------------------------------------------------- #

def param_bytes(model):
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def _strip_ir_metadata(model):
    """Drop the dynamo exporter's per-node metadata (stack traces with absolute
    source paths, FX node text): it doubles small files and makes them depend on
    where the source tree lives."""
    import onnx_ir as ir
    for node in ir.traversal.RecursiveGraphIterator(model.graph):
        node.metadata_props.clear()
        for v in node.outputs:
            v.metadata_props.clear()
    for v in list(model.graph.inputs) + list(model.graph.outputs) + list(model.graph.initializers.values()):
        v.metadata_props.clear()


def export_onnx(model, inputs, output_names, path, opset=17, dynamo=False, dynamic_batch=False,
                external_data="auto", strip_metadata=True):
    """Export `model` to `path`. Returns the list of files written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    input_names = list(inputs)
    args = tuple(inputs.values())
    big = param_bytes(model) > EXTERNAL_DATA_THRESHOLD
    use_ext = external_data == "always" or (external_data == "auto" and big)
    data_path = Path(str(path) + ".data")
    if data_path.exists():
        data_path.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            dyn = None
            if dynamic_batch:
                batch = torch.export.Dim("batch", min=1, max=1024)
                dyn = {input_names[0]: {0: batch}}
            prog = torch.onnx.export(model, args, dynamo=True, input_names=input_names,
                                     output_names=output_names, opset_version=opset,
                                     dynamic_shapes=dyn, optimize=True, verbose=False)
            if strip_metadata:
                _strip_ir_metadata(prog.model)
            prog.save(str(path), external_data=use_ext)
        else:
            dyn_axes = None
            if dynamic_batch:
                dyn_axes = {n: {0: "batch"} for n in input_names + output_names}
            torch.onnx.export(model, args, str(path), dynamo=False, input_names=input_names,
                              output_names=output_names, opset_version=opset,
                              dynamic_axes=dyn_axes, do_constant_folding=True)
            if use_ext:
                import onnx
                m = onnx.load(str(path))
                onnx.save_model(m, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                                location=data_path.name, size_threshold=1024)
    files = [path] + ([data_path] if data_path.exists() else [])
    return files


def run_ort(path, inputs, threads=None):
    import onnxruntime as ort
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    feeds = {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in inputs.items()}
    names = [o.name for o in sess.get_outputs()]
    outs = sess.run(None, feeds)
    return dict(zip(names, outs))


def save_npy(path, arr):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.ascontiguousarray(arr)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    np.save(path, arr, allow_pickle=False)


def export_and_check(model, kind, variant, inputs, model_path, data_dir, rel_root, name,
                     opset=17, dynamo=False, dynamic_batch=False, external_data="auto",
                     threads=None, extra=None, timings=True, golden_inputs=None):
    """Export one model (traced with `inputs`), run PyTorch and ONNX Runtime on
    `golden_inputs` (default: `inputs`), write golden data, return a manifest
    entry (paths relative to rel_root)."""
    model_path, data_dir, rel_root = Path(model_path), Path(data_dir), Path(rel_root)
    rel = lambda p: Path(p).resolve().relative_to(rel_root.resolve()).as_posix()  # noqa: E731
    out_names = OUTPUT_NAMES[kind]
    t0 = time.time()
    files = export_onnx(model, inputs, out_names, model_path, opset=opset, dynamo=dynamo,
                        dynamic_batch=dynamic_batch, external_data=external_data)
    t_export = time.time() - t0
    if golden_inputs is not None:
        inputs = golden_inputs
    t0 = time.time()
    with torch.no_grad():
        tout = model(*inputs.values())
    if not isinstance(tout, tuple):
        tout = (tout,)
    tout = dict(zip(out_names, [t.numpy() for t in tout]))
    t_torch = time.time() - t0
    t0 = time.time()
    oout = run_ort(model_path, inputs, threads=threads)
    t_ort = time.time() - t0
    if set(oout) != set(out_names):
        raise RuntimeError(f"{model_path}: ONNX outputs {sorted(oout)} != expected {out_names}")
    import onnx
    proto = onnx.load(str(model_path), load_external_data=False)
    actual_opset = next(i.version for i in proto.opset_import if i.domain in ("", "ai.onnx"))
    del proto
    entry = {"name": name, "kind": kind, "variant": variant,
             "exporter": "dynamo" if dynamo else "torchscript", "opset": actual_opset,
             "model": rel(model_path), "inputs": [], "outputs": []}
    if len(files) > 1:
        entry["external_data"] = rel(files[1])
    if dynamic_batch:
        entry["dynamic_axes"] = {n: {"0": "batch"} for n in list(inputs) + out_names}
    for n, t in inputs.items():
        f = data_dir / "inputs" / f"{n}.npy"
        save_npy(f, t.numpy())
        entry["inputs"].append({"name": n, "file": rel(f), "shape": list(t.shape), "dtype": "float32"})
    worst = 0.0
    worst_rel = 0.0
    for n in out_names:
        ft = data_dir / "torch" / f"{n}.npy"
        fo = data_dir / "ort" / f"{n}.npy"
        save_npy(ft, tout[n])
        save_npy(fo, oout[n])
        d = float(np.abs(tout[n].astype(np.float64) - oout[n]).max())
        rng = float(tout[n].max() - tout[n].min())
        worst = max(worst, d)
        worst_rel = max(worst_rel, d / rng if rng > 0 else d)
        entry["outputs"].append({"name": n, "torch": rel(ft), "ort": rel(fo),
                                 "shape": list(tout[n].shape), "dtype": "float32",
                                 "max_abs_diff": d, "range": rng})
    if actual_opset != opset:
        entry["opset_requested"] = opset
    entry["max_abs_diff"] = worst
    entry["max_rel_diff"] = worst_rel
    entry["file_bytes"] = sum(f.stat().st_size for f in files)
    entry["parameters"] = int(sum(p.numel() for p in model.parameters()))
    if extra:
        entry.update(extra)
    if timings:
        entry["seconds"] = {"export": round(t_export, 2), "torch": round(t_torch, 2),
                            "ort": round(t_ort, 2)}
    return entry, tout, oout


def update_manifest(path, entries, extra=None):
    path = Path(path)
    man = {"models": []}
    if path.exists():
        man = json.loads(path.read_text())
    by = {m["name"]: m for m in man.get("models", [])}
    for e in entries:
        by[e["name"]] = e
    man["models"] = list(by.values())
    if extra:
        man.update(extra)
    path.write_text(json.dumps(man, indent=1) + "\n")


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder", action="store_true", help="export the HieRFE encoder")
    ap.add_argument("--swapper", action="append", choices=SWAPPER_KINDS, default=[],
                    help="export a swapper variant (repeatable)")
    ap.add_argument("--generator", action="store_true", help="export the StyleGAN2 generator")
    ap.add_argument("--checkpoint", help="{ftm,injection,lcr}_final.pth (dict with 'e' and 's')")
    ap.add_argument("--generator-checkpoint", help="stylegan2-ffhq-config-f.pth (dict with 'g_ema')")
    ap.add_argument("--size", type=int, default=None,
                    help="generator resolution (default 1024, 64 with --tiny)")
    ap.add_argument("--opset", type=int, default=None,
                    help="ONNX opset (default 17; 18 with --dynamo, its lowest native opset)")
    ap.add_argument("--dynamo", action="store_true", help="use the torch.export-based exporter")
    ap.add_argument("--tiny", action="store_true", help="narrow test-size networks")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=2, help="encoder golden batch (dynamic axis)")
    ap.add_argument("--external-data", choices=["auto", "always", "never"], default="auto",
                    help="store weights in <model>.onnx.data (auto: only above 1.8 GB)")
    ap.add_argument("--threads", type=int, default=None, help="torch / ORT threads")
    ap.add_argument("--no-check", action="store_true", help="skip the activation sanity check")
    ap.add_argument("--state-dict", action="store_true",
                    help="also save each model's PyTorch weights as OUTPUT/<model>.pt (for benchmarks)")
    ap.add_argument("-o", "--output", default="out", help="output directory")
    a = ap.parse_args(argv)
    if not (a.encoder or a.swapper or a.generator):
        ap.error("nothing to export: give --encoder, --swapper and/or --generator")
    if a.opset is None:
        a.opset = 18 if a.dynamo else 17
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    out = Path(a.output)
    out.mkdir(parents=True, exist_ok=True)

    jobs = []
    if a.encoder:
        jobs.append(("encoder", None, "encoder"))
    for k in a.swapper:
        jobs.append(("swapper", k, f"swapper-{k}"))
    if a.generator:
        jobs.append(("generator", None, "generator"))

    entries = []
    for kind, variant, stem in jobs:
        t0 = time.time()
        if kind == "encoder":
            model = build_encoder(a.tiny, a.checkpoint, a.seed)
            cfg = model.cfg
        elif kind == "swapper":
            ck = a.checkpoint if variant != "lcr" else None
            if a.checkpoint and variant != "lcr":
                print(f"note: loading swapper weights '{variant}' from {a.checkpoint}; make sure "
                      f"it is {variant}_final.pth", file=sys.stderr)
            model = build_swapper(variant, a.tiny, ck, a.seed)
            cfg = model.cfg
        else:
            model = build_generator(a.size, a.tiny, a.generator_checkpoint, a.seed)
            cfg = model.cfg
        t_build = time.time() - t0
        inputs = example_inputs(kind, model, a.seed, batch=a.batch)
        stats = None
        if not a.no_check and not (a.checkpoint or a.generator_checkpoint):
            stats = model_stats(kind, model, inputs)
        print(f"[{stem}] built in {t_build:.1f}s, {sum(p.numel() for p in model.parameters()):,} "
              f"parameters; exporting ({'dynamo' if a.dynamo else 'torchscript'}, opset {a.opset})",
              flush=True)
        entry, _, _ = export_and_check(
            model, kind, variant, inputs, out / f"{stem}.onnx", out / stem, out, stem,
            opset=a.opset, dynamo=a.dynamo, dynamic_batch=(kind == "encoder"),
            external_data=a.external_data, threads=a.threads,
            extra={"config": config_dict(cfg), "seed": a.seed, "tiny": a.tiny,
                   "checkpoint": os.path.basename(a.generator_checkpoint if kind == "generator"
                                                  else a.checkpoint) if (
                       a.generator_checkpoint if kind == "generator" else a.checkpoint) else None,
                   **({"activation_stats": stats} if stats else {})})
        entry["seconds"]["build"] = round(t_build, 2)
        print(f"[{stem}] {entry['file_bytes'] / 1e6:.1f} MB, export {entry['seconds']['export']}s, "
              f"torch {entry['seconds']['torch']}s, ort {entry['seconds']['ort']}s, "
              f"max |torch-ort| {entry['max_abs_diff']:.3g} (rel {entry['max_rel_diff']:.3g})",
              flush=True)
        if stats:
            print(f"[{stem}] activation stats: {json.dumps(stats)}", flush=True)
        if a.state_dict:
            # The weights that produced the golden outputs above; written atomically.
            tmp = out / f"{stem}.pt.tmp"
            torch.save(model.state_dict(), tmp)
            os.replace(tmp, out / f"{stem}.pt")
        entries.append(entry)
        update_manifest(out / "manifest.json", [entry])
        del model
    return entries


if __name__ == "__main__":
    main()
