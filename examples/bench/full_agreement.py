#!/usr/bin/env python3
"""Agreement of megafs with ONNX Runtime (and PyTorch) on the full-size exports.

For every model of both exporters (folders written by examples/export/export_full.sh, converted
with `megafs convert`), runs `megafs run` on
  - the export's stored inputs (real images through the encoder; the batch they were made with,
    and batch 1 for the encoder), compared with ONNX Runtime run here and with the stored
    PyTorch output where the batch matches;
  - seeded random inputs (standard normal x 0.5, as quick_compare.py uses), compared with ORT.
Reports max abs error as a fraction of the reference output's range and cosine similarity,
against the runtime issue's bound (1e-4 of range, cosine >= 0.99999).

  python examples/bench/full_agreement.py [--full /work/full] [--megafs .build/release/megafs]
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

MODELS = ["encoder", "swapper-ftm", "swapper-injection", "swapper-lcr", "generator"]
MFS_DIRS = {"torchscript": "models", "dynamo": "models-dynamo"}
BOUND_OF_RANGE, BOUND_COSINE = 1e-4, 0.99999


def ort_run(onnx_path, feeds, level):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.graph_optimization_level = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                                   "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                                   "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC}[level]
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


def ours_run(megafs, mfs, feeds, work):
    work.mkdir(parents=True, exist_ok=True)
    args = [megafs, "run", str(mfs), "--output-dir", str(work / "out"), "--threads", "2"]
    for name, value in feeds.items():
        p = work / f"in-{name}.npy"
        np.save(p, value)
        args += ["--input", f"{name}={p}"]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return {p.stem: np.load(p) for p in (work / "out").glob("*.npy")}


def compare(candidate, reference):
    a, b = candidate.astype(np.float64).ravel(), reference.astype(np.float64).ravel()
    span = float(b.max() - b.min()) or 1.0
    cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) if np.any(a) and np.any(b) else 1.0
    return float(np.abs(a - b).max()) / span, cos


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", default="/work/full")
    ap.add_argument("--megafs", default=".build/release/megafs")
    ap.add_argument("--models", nargs="*", default=MODELS)
    ap.add_argument("--exporters", nargs="*", default=list(MFS_DIRS))
    ap.add_argument("--ort-level", choices=["all", "extended", "basic"], default="all",
                    help="ONNX Runtime graph optimisation level (default: all, ORT's own default)")
    a = ap.parse_args()
    root = Path(a.full)
    rows, worst = [], 0.0
    failures = 0
    with tempfile.TemporaryDirectory(prefix="megafs-agree-") as tmp:
        for exporter in a.exporters:
            mfs_dir = MFS_DIRS[exporter]
            for model in a.models:
                onnx_path, mfs = root / exporter / f"{model}.onnx", root / mfs_dir / f"{model}.mfs"
                inputs_dir = root / exporter / model / "inputs"
                if not (onnx_path.exists() and mfs.exists() and inputs_dir.exists()):
                    print(f"skip {exporter}/{model}: missing files", file=sys.stderr)
                    continue
                stored = {p.stem: np.load(p) for p in inputs_dir.glob("*.npy")}
                cases = [("stored inputs", stored)]
                if model == "encoder":
                    cases.append(("stored inputs, batch 1", {k: v[:1] for k, v in stored.items()}))
                rng = np.random.default_rng(0)
                cases.append(("seeded random", {k: (rng.standard_normal(v.shape) * 0.5).astype(v.dtype)
                                                for k, v in stored.items()}))
                for label, feeds in cases:
                    work = Path(tmp) / f"{exporter}-{model}"
                    ours = ours_run(a.megafs, mfs, feeds, work)
                    ref = ort_run(onnx_path, feeds, a.ort_level)
                    torch_dir = root / exporter / model / "torch"
                    for name, r in ref.items():
                        of_range, cos = compare(ours[name], r)
                        ok = of_range <= BOUND_OF_RANGE and cos >= BOUND_COSINE
                        failures += 0 if ok else 1
                        worst = max(worst, of_range)
                        vs_torch = "-"
                        tp = torch_dir / f"{name}.npy"
                        if label == "stored inputs" and tp.exists():
                            t_range, t_cos = compare(ours[name], np.load(tp))
                            o_range, _ = compare(r, np.load(tp))
                            vs_torch = f"{t_range:.2e} (ORT {o_range:.2e})"
                        b = next(iter(feeds.values())).shape[0]
                        rows.append(f"| {exporter} | {model} | {label} (batch {b}) | {name} | {of_range:.2e} | "
                                    f"{cos:.8f} | {vs_torch} | {'ok' if ok else 'OVER'} |")
                        print(rows[-1], flush=True)
    print("\n| exporter | model | inputs | output | max abs vs ORT / range | cosine vs ORT | "
          "max abs vs PyTorch / range | bound |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nworst: {worst:.2e} of range; {failures} output(s) over the bound")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
