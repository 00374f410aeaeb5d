#!/usr/bin/env python3
"""Child process of the benchmark: load one model (or the three of the swap chain) in one engine,
run it, report timings as one JSON line on stdout and save the outputs as .npy.

  python engines.py SPEC_JSON

SPEC: {"engine": "ort-all" | "ort-extended" | "ort-int8" | "ov-fp32" | "ov-int8" | "torch",
       "models": [path, ...] (one model, or encoder / swapper / generator for the chain),
       "kinds": ["encoder" | "swapper" | "generator", ...], "configs": [{...}, ...] (torch only),
       "inputs": {name: path.npy}, "runs": N, "out": DIR or null}

Only this process's own work is timed: imports, then load (read + optimise / compile), then the
first run (the warm-up), then N runs. Inputs are read from .npy files made by the parent, so every
engine sees the same bytes. Threads: 2 (the parent also sets OMP/MKL/OpenBLAS variables).
The parent reads the process's peak RSS from wait4(), so it is measured the same way for every
engine, ours included.
"""
import json
import os
import sys
import time

THREADS = int(os.environ.get("BENCH_THREADS", "2"))


def _ms(t0):
    return (time.perf_counter() - t0) * 1e3


# --------------------------------------------------------------------------- #
# Engines: load(model paths, kinds, configs, input shapes) -> list of callables
# Each callable takes a dict name -> ndarray and returns a dict name -> ndarray.
# --------------------------------------------------------------------------- #

def load_ort(spec, level):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = THREADS
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                                   "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED}[level]
    fns = []
    for path in spec["models"]:
        s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        names = [o.name for o in s.get_outputs()]
        fns.append(lambda feeds, s=s, names=names: dict(zip(names, s.run(names, feeds))))
    return fns


def load_ov(spec, shapes):
    import openvino as ov
    core = ov.Core()
    fns = []
    for path, shp in zip(spec["models"], shapes):
        m = core.read_model(path)
        # static shapes (the encoder's batch axis is dynamic in the ONNX file)
        m.reshape({inp.get_any_name(): shp[inp.get_any_name()] for inp in m.inputs})
        c = core.compile_model(m, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                          "INFERENCE_NUM_THREADS": THREADS,
                                          "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"})
        req = c.create_infer_request()
        outs = [(o, o.get_any_name()) for o in c.outputs]

        def run(feeds, req=req, outs=outs):
            r = req.infer(feeds)
            return {n: r[o].copy() for o, n in outs}
        fns.append(run)
    return fns


def load_torch(spec):
    import torch
    torch.set_num_threads(THREADS)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    sys.path.insert(0, spec["export_dir"])
    from megafs_models import (Encoder, Swapper, Generator, EncoderConfig, SwapperConfig,
                               GeneratorConfig)
    fns = []
    for path, kind, cfg in zip(spec["models"], spec["kinds"], spec["configs"]):
        if kind == "encoder":
            m, outs = Encoder(EncoderConfig(**cfg)), ["latents", "struct"]
        elif kind == "swapper":
            m, outs = Swapper(SwapperConfig(**cfg)), ["swapped_latents"]
        else:
            m, outs = Generator(GeneratorConfig(**cfg)), ["image"]
        m.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        m.eval()
        order = {"encoder": ["image"], "swapper": ["idd", "att"], "generator": ["struct", "latents"]}[kind]

        def run(feeds, m=m, outs=outs, order=order):
            with torch.inference_mode():
                r = m(*[torch.from_numpy(feeds[n]) for n in order])
            r = r if isinstance(r, tuple) else (r,)
            return {n: t.numpy() for n, t in zip(outs, r)}
        fns.append(run)
    return fns


def chain(fns, feeds):
    """encoder on [target, source] -> swapper(idd=source, att=target) -> generator(target struct)."""
    enc, sw, gen = fns
    e = enc({"image": feeds["image"]})
    lat, st = e["latents"], e["struct"]
    s = sw({"idd": lat[1:2].copy(), "att": lat[0:1].copy()})["swapped_latents"]
    return gen({"struct": st[0:1].copy(), "latents": s})


def main():
    spec = json.loads(sys.argv[1])
    engine = spec["engine"]
    t0 = time.perf_counter()
    import numpy as np
    feeds = {n: np.load(p) for n, p in spec["inputs"].items()}
    is_chain = len(spec["models"]) == 3
    if is_chain:
        b = feeds["image"].shape[0]
        shapes = [{"image": list(feeds["image"].shape)},
                  {"idd": [1, 18, spec["latent_dim"]], "att": [1, 18, spec["latent_dim"]]},
                  {"struct": [1, spec["latent_dim"], 4, 4], "latents": [1, 18, spec["latent_dim"]]}]
        assert b == 2
    else:
        shapes = [{n: list(v.shape) for n, v in feeds.items()}]
    # import the engine's package (counted separately from load)
    if engine.startswith("ort"):
        import onnxruntime  # noqa: F401
    elif engine.startswith("ov"):
        import openvino  # noqa: F401
    elif engine == "torch":
        import torch  # noqa: F401
    import_ms = _ms(t0)

    t0 = time.perf_counter()
    if engine in ("ort-all", "ort-int8"):
        fns = load_ort(spec, "all")
    elif engine == "ort-extended":
        fns = load_ort(spec, "extended")
    elif engine in ("ov-fp32", "ov-int8"):
        fns = load_ov(spec, shapes)
    elif engine == "torch":
        fns = load_torch(spec)
    else:
        raise SystemExit(f"unknown engine {engine}")
    load_ms = _ms(t0)

    run = (lambda f: chain(fns, f)) if is_chain else fns[0]
    t0 = time.perf_counter()
    res = run(feeds)
    first = _ms(t0)
    first_output_epoch = time.time()
    lat = []
    for _ in range(spec["runs"]):
        t0 = time.perf_counter()
        run(feeds)
        lat.append(_ms(t0))
    if spec.get("out"):
        os.makedirs(spec["out"], exist_ok=True)
        for n, v in res.items():
            np.save(os.path.join(spec["out"], f"{n}.npy"), np.asarray(v, dtype=np.float32))
    lat.sort()
    print(json.dumps({"import_ms": import_ms, "load_ms": load_ms, "first_run_ms": first,
                      "latency_ms": {"min": lat[0], "median": lat[len(lat) // 2], "max": lat[-1]},
                      "runs": lat, "first_output_epoch": first_output_epoch}))


if __name__ == "__main__":
    main()
