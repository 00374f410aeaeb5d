#!/usr/bin/env python3
"""Artifacts of the benchmark, each made in its own process by bench.py (so that the parent stays
small: peak RSS survives exec). Subcommands:

  torch-state KIND SIZE OUT.pt [GOLDEN_DIR]   seeded PyTorch weights equal to the exporter's
                                             (checked against GOLDEN_DIR/torch/*.npy if present)
  inputs CASE OUTDIR [BATCH|SIZE]             seeded inputs (.npy) of a benchmark case
  ort-int8 IN.onnx OUT.onnx                   onnxruntime.quantization.quantize_dynamic (u8/u8)
  ov-int8 IN.onnx OUT.xml                     NNCF compress_weights (int8 weights), OpenVINO IR
  conv-model CIN COUT H W STRIDE OUT.onnx     one 3x3 Conv (pad 1) with seeded weights
  gemm M K N REPEAT                           numpy (OpenBLAS) sgemm timing, JSON on stdout
"""
import json
import os
import sys
import time
from pathlib import Path

EXPORT_DIR = Path(__file__).resolve().parent.parent / "export"
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def torch_state(kind, size, out, golden=None):
    import numpy as np
    import torch
    sys.path.insert(0, str(EXPORT_DIR))
    from export import build_encoder, build_swapper, build_generator
    t0 = time.time()
    if kind == "encoder":
        m = build_encoder(seed=0)
    elif kind == "swapper":
        m = build_swapper("ftm", seed=0)
    else:
        m = build_generator(size=int(size), seed=0)
    torch.save(m.state_dict(), out + ".tmp")
    os.replace(out + ".tmp", out)
    report = {"seconds": time.time() - t0}
    if golden and os.path.isdir(os.path.join(golden, "inputs")):
        order = {"encoder": ["image"], "swapper": ["idd", "att"], "generator": ["struct", "latents"]}[kind]
        xs = [torch.from_numpy(np.load(os.path.join(golden, "inputs", f"{n}.npy"))) for n in order]
        with torch.inference_mode():
            r = m(*xs)
        r = r if isinstance(r, tuple) else (r,)
        outs = sorted(os.listdir(os.path.join(golden, "torch")))
        names = {"encoder": ["latents", "struct"], "swapper": ["swapped_latents"], "generator": ["image"]}[kind]
        diffs = {}
        for n, t in zip(names, r):
            if f"{n}.npy" in outs:
                g = np.load(os.path.join(golden, "torch", f"{n}.npy"))
                diffs[n] = float(np.abs(t.numpy() - g).max())
        report["max_abs_vs_export_golden"] = diffs
    print(json.dumps(report))


def inputs(case, outdir, arg=None):
    import numpy as np
    sys.path.insert(0, str(EXPORT_DIR))
    import torch
    from megafs_init import smooth_images, random_latents
    os.makedirs(outdir, exist_ok=True)
    save = lambda n, t: np.save(os.path.join(outdir, f"{n}.npy"),
                                np.ascontiguousarray(np.asarray(t, dtype=np.float32)))
    if case == "encoder":                       # as the exporter's example inputs
        save("image", smooth_images(int(arg), 256, seed=11).numpy())
    elif case == "swapper":
        save("idd", random_latents(1, 512, seed=21).numpy())
        save("att", random_latents(1, 512, seed=22).numpy())
    elif case == "generator":
        g = torch.Generator().manual_seed(31)
        save("struct", torch.randn(1, 512, 4, 4, generator=g).numpy())
        save("latents", random_latents(1, 512, seed=32).numpy())
    elif case == "chain":                       # the bundled sample faces, pre-processed
        import megafs_pipeline as pp
        from PIL import Image
        src = np.array(Image.open(SAMPLES / "synthetic_face.png").convert("RGB"))
        tgt = np.array(Image.open(SAMPLES / "astronaut_face.png").convert("RGB"))
        save("image", np.stack([pp.preprocess(tgt), pp.preprocess(src)]))
    else:
        raise SystemExit(f"unknown case {case}")


def ort_int8(src, dst):
    from onnxruntime.quantization import quantize_dynamic, QuantType
    t0 = time.time()
    quantize_dynamic(src, dst + ".tmp.onnx", weight_type=QuantType.QUInt8)
    os.replace(dst + ".tmp.onnx", dst)
    print(json.dumps({"seconds": time.time() - t0}))


def ov_int8(src, dst):
    import openvino as ov
    import nncf
    t0 = time.time()
    m = ov.Core().read_model(src)
    m = nncf.compress_weights(m)               # default: int8 asymmetric, per output channel
    tmp = dst[:-4] + ".tmp.xml"
    ov.save_model(m, tmp, compress_to_fp16=False)
    os.replace(tmp[:-4] + ".bin", dst[:-4] + ".bin")
    os.replace(tmp, dst)
    print(json.dumps({"seconds": time.time() - t0}))


def conv_model(cin, cout, h, w, stride, out):
    import numpy as np
    import onnx
    from onnx import helper, TensorProto, numpy_helper
    cin, cout, h, w, stride = map(int, (cin, cout, h, w, stride))
    rng = np.random.default_rng(0)
    wt = (rng.standard_normal((cout, cin, 3, 3)) / np.sqrt(cin * 9)).astype(np.float32)
    b = (rng.standard_normal(cout) * 0.1).astype(np.float32)
    oh, ow = (h + 2 - 3) // stride + 1, (w + 2 - 3) // stride + 1
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                          strides=[stride, stride])],
        "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, h, w])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, oh, ow])],
        [numpy_helper.from_array(wt, "w"), numpy_helper.from_array(b, "b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)  # ORT 1.31 reads IR <= 13
    onnx.save(m, out)
    np.save(out[:-5] + ".x.npy", rng.standard_normal((1, cin, h, w)).astype(np.float32))


def gemm(m, k, n, repeat):
    import numpy as np
    m, k, n, repeat = map(int, (m, k, n, repeat))
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    c = np.empty((m, n), np.float32)
    np.matmul(a, b, out=c)
    ts = []
    for _ in range(int(repeat)):
        t0 = time.perf_counter()
        np.matmul(a, b, out=c)
        ts.append(time.perf_counter() - t0)
    ts.sort()
    print(json.dumps({"median_s": ts[len(ts) // 2], "min_s": ts[0], "gflop": 2 * m * k * n / 1e9}))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"torch-state": torch_state, "inputs": inputs, "ort-int8": ort_int8, "ov-int8": ov_int8,
     "conv-model": conv_model, "gemm": gemm}[cmd](*args)
