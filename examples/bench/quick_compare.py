#!/usr/bin/env python3
"""Side-by-side latency, peak RSS and agreement of megafs and ONNX Runtime on any one ONNX model.

Each engine runs in its own fresh process with 2 threads, on the same seeded inputs; engines
alternate process by process. Prints a Markdown table (median of the per-process medians).
Uses the benchmark's process runner and engine children (bench.py, engines.py); the full
benchmark on the MegaFS networks is `examples/bench/run.sh`.

  python examples/bench/quick_compare.py MODEL.onnx MODEL.mfs [--batch 2] [--repeat 5] [--processes 2]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

# Inputs are made in a child: peak RSS survives exec, so this process must stay small.
PREP_CHILD = r'''
import sys, numpy as np, onnx
m = onnx.load(sys.argv[1], load_external_data=False)
inits = {i.name for i in m.graph.initializer}
rng = np.random.default_rng(0)
for vi in m.graph.input:
    if vi.name in inits: continue
    dims = [d.dim_value if d.dim_value > 0 else int(sys.argv[3]) for d in vi.type.tensor_type.shape.dim]
    np.save(f"{sys.argv[2]}/{vi.name}.npy", (rng.standard_normal(dims) * 0.5).astype(np.float32))
'''


class _Art:  # what bench.run_once needs of its artifacts object
    def __init__(self, megafs):
        self.megafs = megafs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("onnx")
    ap.add_argument("mfs")
    ap.add_argument("--batch", type=int, default=1, help="value of dynamic input dimensions")
    ap.add_argument("--repeat", type=int, default=5, help="runs per process after the first")
    ap.add_argument("--processes", type=int, default=2, help="fresh processes per engine")
    ap.add_argument("--megafs", default=".build/release/megafs")
    a = ap.parse_args()
    import numpy as np
    tmp = Path(tempfile.mkdtemp(prefix="megafs-quick-"))
    (tmp / "in").mkdir()
    subprocess.run([sys.executable, "-c", PREP_CHILD, a.onnx, str(tmp / "in"), str(a.batch)], check=True,
                   env=bench.child_env())
    art = _Art(os.path.abspath(a.megafs))
    engines = {"ours-fp32": [[Path(a.mfs)]], "ort-all": [[Path(a.onnx)]], "ort-extended": [[Path(a.onnx)]]}
    runs = {e: [] for e in engines}
    for p in range(a.processes):
        for e, files in engines.items():
            r = bench.run_once(art, "model", e, files, tmp / "in", a.repeat, tmp / f"out-{e}" if p == 0 else None)
            if "error" in r:
                sys.exit(f"{e} failed: {r['error']}")
            runs[e].append(r)
    print(f"model {a.onnx} batch {a.batch}, {a.processes} processes x {a.repeat} runs, {bench.THREADS} threads")
    print("| engine | load ms | first run ms | median ms | peak RSS MB |")
    print("|---|---|---|---|---|")
    med = {}
    for e, rs in runs.items():
        med[e] = statistics.median(r["latency_ms"]["median"] for r in rs)
        print(f"| {bench.LABEL[e]} | {statistics.median(r['load_ms'] for r in rs):.0f} | "
              f"{statistics.median(r['first_run_ms'] for r in rs):.0f} | {med[e]:.1f} | {max(r['peak_rss_mb'] for r in rs):.0f} |")
    print(f"megafs / best ORT median latency: {med['ours-fp32'] / min(med['ort-all'], med['ort-extended']):.2f}")
    agree = []
    for f in sorted((tmp / "out-ort-extended").glob("*.npy")):
        mine = tmp / "out-ours-fp32" / f.name
        if mine.exists():
            o, x = np.load(f), np.load(mine)
            rng_ = float(o.max() - o.min()) or 1.0
            d = float(np.abs(x - o).max())
            agree.append(f"{f.stem}: max abs {d:.3g} ({d / rng_:.2g} of range)")
    print("agreement with ORT: " + "; ".join(agree))


if __name__ == "__main__":
    main()
