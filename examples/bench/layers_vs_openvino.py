#!/usr/bin/env python3
"""Per-layer times of megafs against OpenVINO on one model, to see where the gap is.

Runs OpenVINO (f32 precision hint, 2 threads, PERF_COUNT) on the ONNX model and keeps the
fastest of several inferences, runs `megafs run MODEL.mfs --profile --profile-nodes 0` a few
times and keeps each node's fastest time, then joins the two by node name (ONNX node names
survive both) and sums them by layer group. Convolutions only (elementwise work is fused on
both sides).

    examples/bench/layers_vs_openvino.py --onnx encoder.onnx --mfs encoder.mfs \\
        --input image=enc-b2/image.npy [--megafs .build/release/megafs] [--runs 3]
"""
import argparse
import collections
import re
import subprocess
import sys

import numpy as np


def openvino_layers(onnx_path, feeds, runs):
    import openvino as ov
    core = ov.Core()
    model = core.read_model(onnx_path)
    model.reshape({name: list(value.shape) for name, value in feeds.items()})
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 2,
                                                 "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY", "PERF_COUNT": True})
    request = compiled.create_infer_request()
    best = None
    for _ in range(runs + 1):
        request.infer(feeds)
        info = request.get_profiling_info()
        total = sum(p.real_time.total_seconds() for p in info)
        if best is None or total < best[0]:
            best = (total, info)
    layers = {}
    for p in best[1]:
        if p.node_type == "Convolution":
            layers[p.node_name.replace("/WithoutBiases", "")] = p.real_time.total_seconds() * 1e3
    return best[0] * 1e3, layers


def megafs_layers(megafs, mfs_path, inputs, runs):
    layers, latencies = {}, []
    for _ in range(runs):
        cmd = [megafs, "run", mfs_path, "--repeat", "3", "--profile", "--profile-nodes", "0", "--output-dir", "/tmp/layers-vs-ov"]
        for spec in inputs:
            cmd += ["--input", spec]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        m = re.search(r"latency over \d+ runs: min ([\d.]+) ms", out)
        if m:
            latencies.append(float(m.group(1)))
        for line in out.splitlines():
            m = re.match(r"\s+([\d.]+) ms\s+\S+ \[(.*?)\] (\S+)", line)
            if m:
                t, kernel, name = float(m.group(1)), m.group(2), m.group(3)
                if name not in layers or layers[name][0] > t:
                    layers[name] = (t, kernel)
    return min(latencies) if latencies else None, layers


def group(name):
    parts = name.split("/")
    if len(parts) > 3 and parts[1].startswith("mapping"):
        return parts[1].split(".")[0] + "." + parts[3]  # mapping3.convs.0
    if "backbone" in name and len(parts) > 4:
        return "backbone." + parts[3].split(".")[0]
    if len(parts) > 2 and parts[1] == "fpn":
        return parts[2]
    return parts[1] if len(parts) > 1 else name


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--mfs", required=True)
    ap.add_argument("--input", action="append", required=True, help="NAME=path.npy (repeatable)")
    ap.add_argument("--megafs", default=".build/release/megafs")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    feeds = {}
    for spec in a.input:
        name, _, path = spec.partition("=")
        feeds[name] = np.load(path)
    ov_total, ov = openvino_layers(a.onnx, feeds, a.runs)
    ours_min, ours = megafs_layers(a.megafs, a.mfs, a.input, a.runs)
    groups = collections.defaultdict(lambda: [0, 0.0, 0.0, set()])
    for name, (t, kernel) in ours.items():
        if name in ov:
            g = groups[group(name)]
            g[0] += 1
            g[1] += t
            g[2] += ov[name]
            g[3].add(kernel)
    print(f"OpenVINO: {ov_total:.1f} ms in its layers (fastest of {a.runs + 1}); megafs: latency min "
          f"{ours_min if ours_min is not None else float('nan'):.1f} ms")
    print(f"{'group':24} {'convs':>5} {'megafs ms':>10} {'OpenVINO ms':>12} {'difference':>11}  megafs kernels")
    total = [0.0, 0.0]
    for name, (n, t, o, kernels) in sorted(groups.items(), key=lambda kv: -(kv[1][1] - kv[1][2])):
        print(f"{name:24} {n:5d} {t:10.2f} {o:12.2f} {t - o:+11.2f}  {', '.join(sorted(kernels))}")
        total[0] += t
        total[1] += o
    print(f"{'all matched convs':24} {'':5} {total[0]:10.2f} {total[1]:12.2f} {total[0] - total[1]:+11.2f}")
    unmatched = [n for n in ours if n not in ov and ours[n][1].startswith("conv")]
    if unmatched:
        print(f"{len(unmatched)} megafs conv nodes had no OpenVINO counterpart", file=sys.stderr)


if __name__ == "__main__":
    main()
