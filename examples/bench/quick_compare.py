#!/usr/bin/env python3
"""Side-by-side latency, peak RSS and agreement of megafs and ONNX Runtime on one ONNX model.

Each engine runs in its own fresh process with 2 threads, on the same seeded inputs; engines
alternate run by run. Prints a Markdown table (median of the per-process medians).

  python examples/bench/quick_compare.py MODEL.onnx MODEL.mfs [--batch 2] [--repeat 5] [--processes 2]

The full benchmark (issue 8) will extend this; this script is what the runtime's numbers in the
closing notes come from.
"""
import argparse, json, os, subprocess, sys, tempfile, statistics, time

ORT_CHILD = r'''
import sys, json, time, resource, numpy as np, onnxruntime as ort
model, level, inputs_dir, names, repeat, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(","), int(sys.argv[5]), sys.argv[6]
so = ort.SessionOptions(); so.intra_op_num_threads = 2; so.inter_op_num_threads = 1
so.graph_optimization_level = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL, "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED}[level]
t0 = time.perf_counter(); s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"]); load = (time.perf_counter() - t0) * 1e3
feeds = {n: np.load(f"{inputs_dir}/{n}.npy") for n in names}
t0 = time.perf_counter(); res = s.run(None, feeds); first = (time.perf_counter() - t0) * 1e3
lat = []
for _ in range(repeat):
    t0 = time.perf_counter(); s.run(None, feeds); lat.append((time.perf_counter() - t0) * 1e3)
for o, v in zip(s.get_outputs(), res): np.save(f"{out}/{o.name}.npy", v)
lat.sort()
print(json.dumps({"load_ms": load, "first_run_ms": first, "latency_ms": {"min": lat[0], "median": lat[len(lat)//2], "max": lat[-1]},
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''

PREP_CHILD = r'''
import sys, numpy as np, onnx
m = onnx.load(sys.argv[1], load_external_data=False)
inits = {i.name for i in m.graph.initializer}
rng = np.random.default_rng(0)
for vi in m.graph.input:
    if vi.name in inits: continue
    dims = [d.dim_value if d.dim_value > 0 else int(sys.argv[3]) for d in vi.type.tensor_type.shape.dim]
    np.save(f"{sys.argv[2]}/{vi.name}.npy", (rng.standard_normal(dims) * 0.5).astype(np.float32))
    print(vi.name)
'''

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("onnx"); ap.add_argument("mfs")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--megafs", default=".build/release/megafs")
    a = ap.parse_args()
    import numpy as np
    tmp = tempfile.mkdtemp(prefix="megafs-bench-")
    # Inputs are made in a child: peak RSS survives exec, so this process must stay small.
    names = subprocess.run([sys.executable, "-c", PREP_CHILD, a.onnx, tmp, str(a.batch)],
                           capture_output=True, text=True, check=True).stdout.split()
    runs = {"megafs": [], "ort-all": [], "ort-extended": []}
    for p in range(a.processes):
        for engine in runs:
            out = f"{tmp}/out-{engine}"; os.makedirs(out, exist_ok=True)
            if engine == "megafs":
                cmd = [a.megafs, "run", a.mfs, "--threads", "2", "--repeat", str(a.repeat), "--json", "--output-dir", out]
                for n in names: cmd += ["--input", f"{n}={tmp}/{n}.npy"]
            else:
                cmd = [sys.executable, "-c", ORT_CHILD, a.onnx, engine.split("-")[1], tmp, ",".join(names), str(a.repeat), out]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{engine} failed: {r.stderr.strip()[-500:]}", file=sys.stderr); sys.exit(1)
            runs[engine].append(json.loads(r.stdout.strip().splitlines()[-1] if engine != "megafs" else r.stdout[r.stdout.index("{"):]))
    # agreement with ORT (extended) outputs
    agree = []
    for f in sorted(os.listdir(f"{tmp}/out-ort-extended")):
        o = np.load(f"{tmp}/out-ort-extended/{f}")
        mine = f"{tmp}/out-megafs/{f}"
        if os.path.exists(mine):
            x = np.load(mine); rng_ = float(o.max() - o.min()) or 1.0
            agree.append(f"{f[:-4]}: max abs {float(np.abs(x - o).max()):.3g} ({float(np.abs(x - o).max()) / rng_:.2g} of range)")
    print(f"model {a.onnx} batch {a.batch}, {a.processes} processes x {a.repeat} runs, 2 threads")
    print("| engine | load ms | first run ms | median ms | peak RSS MB |")
    print("|---|---|---|---|---|")
    for engine, rs in runs.items():
        med = statistics.median(r["latency_ms"]["median"] for r in rs)
        print(f"| {engine} | {statistics.median(r['load_ms'] for r in rs):.0f} | {statistics.median(r['first_run_ms'] for r in rs):.0f} | {med:.1f} | {max(r['peak_rss_mb'] for r in rs):.0f} |")
    best = min(statistics.median(r["latency_ms"]["median"] for r in runs[e]) for e in ("ort-all", "ort-extended"))
    print(f"megafs / best ORT median latency: {statistics.median(r['latency_ms']['median'] for r in runs['megafs']) / best:.2f}")
    print("agreement with ORT: " + "; ".join(agree))

if __name__ == "__main__":
    main()
