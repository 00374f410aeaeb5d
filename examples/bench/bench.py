#!/usr/bin/env python3
"""megafs side by side with ONNX Runtime, OpenVINO and PyTorch on the full-size MegaFS networks.

  examples/bench/run.sh [options]          (builds megafs, then runs this in the exporter's venv)
  python examples/bench/bench.py --megafs .build-bench/release/megafs [options]

What it does (issue 8):
  1. artifacts, made only when missing (all under --cache, outside the repository):
     ONNX exports (examples/export/export_full.sh, TorchScript exporter, random seeded weights),
     generators at 256/512 px for the scaling table (export.py --size), megafs models
     (`megafs convert`, and `--quantize int8` when the binary has it), ONNX Runtime int8
     (quantize_dynamic, u8 weights and activations), OpenVINO int8 weights (NNCF
     compress_weights, saved as IR), PyTorch state dicts (the exporter's seeded weights, checked
     against the export's golden outputs), seeded inputs;
  2. every engine in its own fresh process, 2 threads (engine setting plus OMP/MKL/OpenBLAS
     variables), engines interleaved process by process, the order rotated each round; per
     process: load, a first run (the warm-up), then --runs runs (median / min / max);
     peak RSS of each process from wait4();
  3. drift of every engine's outputs against PyTorch's (max abs, cosine, PSNR for images);
  4. kernel figures (one-conv models at the generator's 3x3 and the encoder's mapping-conv shapes:
     ours vs ONNX Runtime vs numpy's OpenBLAS sgemm of the same GEMM size, against the machine's
     peak from /proc/cpuinfo), a STREAM-like triad, and scaling (generator 256/512/1024 px,
     encoder batch 1/2/4, ours vs ONNX Runtime);
  5. writes OUT/results.md (tables, with ours / best peer ratios), OUT/results.json and
     OUT/results.png, and prints the tables.

Engines: ours-fp32, ours-int8, ours-int8dyn (int8 models, --int8-activations), ort-all, ort-extended, ort-int8, ov-fp32, ov-int8, torch.
Models (cases): enc-b1, enc-b2, ftm, gen-1024, chain (encoder on [target, source] -> ftm ->
generator 1024). See examples/bench/README.md for exactly what each figure measures.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
EXPORT = ROOT / "examples" / "export"
SAMPLES = ROOT / "examples" / "samples"
PY = sys.executable
THREADS = 2

ALL_ENGINES = ["ours-fp32", "ours-int8", "ours-int8dyn", "ort-all", "ort-extended", "ort-int8", "ov-fp32", "ov-int8", "torch"]
MAIN_CASES = ["enc-b1", "enc-b2", "ftm", "gen-1024", "chain"]
SCALING_CASES = ["gen-256", "gen-512", "gen-1024", "enc-b1", "enc-b2", "enc-b4"]
SCALING_ENGINES = ["ours-fp32", "ort-all", "ort-extended"]
FP32_PEERS = ["ort-all", "ort-extended", "ov-fp32", "torch"]
INT8_PEERS = ["ort-int8", "ov-int8"]
# ours-int8dyn: the int8 models with int8 activations (dynamic, per call; VNNI where the CPU has it)
OURS_FLAGS = {"ours-int8dyn": ["--int8-activations"]}
LABEL = {"ours-fp32": "megafs fp32", "ours-int8": "megafs int8", "ours-int8dyn": "megafs int8 dynamic (VNNI)", "ort-all": "ORT fp32 ALL",
         "ort-extended": "ORT fp32 EXTENDED", "ort-int8": "ORT int8 (quantize_dynamic)",
         "ov-fp32": "OpenVINO fp32 (f32 hint)", "ov-int8": "OpenVINO int8 weights (NNCF)",
         "torch": "PyTorch eager"}
CASE_LABEL = {"enc-b1": "encoder, batch 1", "enc-b2": "encoder, batch 2", "enc-b4": "encoder, batch 4",
              "ftm": "ftm swapper", "gen-256": "generator 256", "gen-512": "generator 512",
              "gen-1024": "generator 1024", "chain": "whole swap chain"}
# 3x3 convs: (cin, cout, h, w, stride, what)
KERNEL_SHAPES = [(512, 512, 32, 32, 1, "generator 32 px"), (512, 512, 64, 64, 1, "generator 64 px"),
                 (256, 256, 128, 128, 1, "generator 128 px"), (128, 128, 256, 256, 1, "generator 256 px"),
                 (64, 64, 512, 512, 1, "generator 512 px"), (32, 32, 1024, 1024, 1, "generator 1024 px"),
                 (512, 512, 32, 32, 2, "encoder mapping 32->16"), (512, 512, 16, 16, 2, "encoder mapping 16->8"),
                 (512, 512, 8, 8, 2, "encoder mapping 8->4"), (512, 512, 4, 4, 2, "encoder mapping 4->2")]
QUICK_KERNEL_SHAPES = [KERNEL_SHAPES[1], KERNEL_SHAPES[5], KERNEL_SHAPES[7]]


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def child_env():
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "BENCH_THREADS"):
        env[k] = str(THREADS)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def spawn(cmd, timeout=1800, cwd=None):
    """Run cmd in a fresh process; return (rc, stdout, stderr, peak RSS MB from wait4, wall s,
    spawn epoch). stdout/stderr go through files so that wait4 can reap the child itself."""
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        t0 = time.time()
        p = subprocess.Popen(cmd, stdout=fo, stderr=fe, env=child_env(), cwd=cwd)
        deadline = t0 + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.time() > deadline:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.005)
        wall = time.time() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0), fe.seek(0)
        return (p.returncode, fo.read().decode(errors="replace"), fe.read().decode(errors="replace"),
                ru.ru_maxrss / 1024, wall, t0)


def last_json(text):
    """The JSON object at the end of a child's stdout (megafs prints it pretty-printed)."""
    i = text.find("{")
    if i < 0:
        raise ValueError(f"no JSON in output: {text[-300:]!r}")
    return json.loads(text[i:])


def file_mb(*paths):
    return sum(os.path.getsize(p) for p in paths if p and os.path.exists(p)) / 1e6


# --------------------------------------------------------------------------- #
# Artifacts
# --------------------------------------------------------------------------- #

class Artifacts:
    def __init__(self, cache: Path, megafs: str, reconvert=False):
        self.cache = cache
        self.megafs = megafs
        self.ts = cache / "torchscript"
        self.models = cache / "models"
        self.b = cache / "bench"
        self.reconvert = reconvert
        self.notes = {}
        self.prep_seconds = {}
        for d in (self.models, self.b / "models-int8", self.b / "ort-int8", self.b / "ov-int8", self.b / "torch",
                  self.b / "inputs", self.b / "kernels"):
            d.mkdir(parents=True, exist_ok=True)
        self._has_int8 = None

    @property
    def has_int8(self):
        if self._has_int8 is None:
            help_text = subprocess.run([self.megafs, "convert", "--help"], capture_output=True, text=True).stdout
            self._has_int8 = "--quantize" in help_text
        return self._has_int8

    # model stems: encoder, swapper-ftm, generator (1024), generator-256, generator-512
    def onnx(self, stem):
        if stem.startswith("generator-"):
            return self.b / f"gen{stem.split('-')[1]}" / "generator.onnx"
        return self.ts / f"{stem}.onnx"

    def golden(self, stem):
        return self.onnx(stem).parent / ("generator" if stem.startswith("generator") else stem)

    def mfs(self, stem):
        return self.models / f"{stem}.mfs" if not stem.startswith("generator-") else self.b / f"gen{stem.split('-')[1]}" / "generator.mfs"

    def mfs_int8(self, stem):
        return self.b / "models-int8" / f"{stem}.mfs"

    def ort_int8(self, stem):
        return self.b / "ort-int8" / f"{stem}.onnx"

    def ov_int8(self, stem):
        return self.b / "ov-int8" / f"{stem}.xml"

    def torch_pt(self, stem):
        return self.b / "torch" / f"{stem}.pt"

    def _timed(self, what, cmd, timeout=3600):
        log(f"making {what}")
        rc, out, err, rss, wall, _ = spawn(cmd, timeout=timeout)
        self.prep_seconds[what] = round(wall, 1)
        if rc != 0:
            log(f"  FAILED ({rc}): {err.strip()[-800:]}")
            self.notes[what] = f"failed: {err.strip().splitlines()[-1] if err.strip() else rc}"
            return None
        log(f"  done in {wall:.0f} s")
        return out

    def ensure_onnx(self, stem):
        p = self.onnx(stem)
        if p.exists():
            return p
        if stem.startswith("generator-"):
            size = stem.split("-")[1]
            self._timed(f"export {stem}", [PY, str(EXPORT / "export.py"), "--generator", "--size", size,
                                           "--threads", str(THREADS), "--state-dict", "-o", str(p.parent)])
        else:
            what = {"encoder": "encoder", "swapper-ftm": "ftm", "generator": "generator"}[stem]
            env_cmd = ["env", "EXPORTERS=torchscript", f"MODELS={what}", f"PYTHON={PY}", "EXPORT_ARGS=--state-dict",
                       "bash", str(EXPORT / "export_full.sh"), str(self.cache)]
            self._timed(f"export {stem}", env_cmd)
        return p if p.exists() else None

    def ensure_mfs(self, stem):
        p = self.mfs(stem)
        src = self.ensure_onnx(stem)
        if src is None:
            return None
        # converted again whenever the binary is newer than the file (its passes may have changed)
        if p.exists() and not self.reconvert and p.stat().st_mtime >= max(src.stat().st_mtime, os.path.getmtime(self.megafs)):
            return p
        self._timed(f"convert {stem}", [self.megafs, "convert", str(src), "-o", str(p), "--threads", str(THREADS), "-q"])
        return p if p.exists() else None

    def ensure_mfs_int8(self, stem):
        if not self.has_int8:
            return None
        p = self.mfs_int8(stem)
        src = self.ensure_onnx(stem)
        if src is None:
            return None
        # int8 is new: re-quantize whenever the binary is newer than the file
        if p.exists() and not self.reconvert and p.stat().st_mtime >= max(src.stat().st_mtime, os.path.getmtime(self.megafs)):
            return p
        self._timed(f"convert --quantize int8 {stem}", [self.megafs, "convert", str(src), "--quantize", "int8", "-o", str(p),
                                                       "--threads", str(THREADS), "-q"])
        return p if p.exists() else None

    def ensure_mfs_mapped(self, stem, int8):
        """The model converted with --uncompressed (the runtime maps it instead of decoding it)."""
        p = self.b / "models-uncompressed" / ("int8" if int8 else "fp32") / f"{stem}.mfs"
        src = self.ensure_onnx(stem)
        if src is None:
            return None
        if p.exists() and not self.reconvert and p.stat().st_mtime >= max(src.stat().st_mtime, os.path.getmtime(self.megafs)):
            return p
        p.parent.mkdir(parents=True, exist_ok=True)
        self._timed(f"convert --uncompressed{' --quantize int8' if int8 else ''} {stem}",
                    [self.megafs, "convert", str(src), "--uncompressed", "-o", str(p), "--threads", str(THREADS), "-q"]
                    + (["--quantize", "int8"] if int8 else []))
        return p if p.exists() else None

    def ensure_ort_int8(self, stem):
        p, src = self.ort_int8(stem), self.ensure_onnx(stem)
        if src is None:
            return None
        if not p.exists():
            self._timed(f"ORT quantize_dynamic {stem}", [PY, str(HERE / "prepare.py"), "ort-int8", str(src), str(p)])
        return p if p.exists() else None

    def ensure_ov_int8(self, stem):
        p, src = self.ov_int8(stem), self.ensure_onnx(stem)
        if src is None:
            return None
        if not p.exists():
            self._timed(f"NNCF compress_weights {stem}", [PY, str(HERE / "prepare.py"), "ov-int8", str(src), str(p)])
        return p if p.exists() else None

    def ensure_torch(self, stem):
        p, src = self.torch_pt(stem), self.ensure_onnx(stem)
        if src is None:
            return None
        # The export's own state dict (export.py --state-dict): the weights of its golden outputs.
        exported = src.with_suffix(".pt")
        if exported.exists() and exported.stat().st_mtime >= src.stat().st_mtime:
            self.notes.setdefault(f"torch weights {stem}", "saved by the export that wrote the golden outputs")
            return exported
        if not p.exists() or p.stat().st_mtime < src.stat().st_mtime:
            kind = "encoder" if stem == "encoder" else "swapper" if stem.startswith("swapper") else "generator"
            size = stem.split("-")[1] if stem.startswith("generator-") else "1024"
            out = self._timed(f"PyTorch weights {stem}", [PY, str(HERE / "prepare.py"), "torch-state", kind, size, str(p),
                                                          str(self.golden(stem))])
            if out:
                self.notes[f"torch weights {stem}"] = json.loads(out.strip().splitlines()[-1])
        return p if p.exists() else None

    def ensure_inputs(self, case):
        d = self.b / "inputs" / case
        if d.exists() and any(d.iterdir()):
            return d
        if case.startswith("enc-b"):
            args = ["encoder", str(d), case[5:]]
        elif case == "ftm":
            args = ["swapper", str(d)]
        elif case.startswith("gen-"):
            args = ["generator", str(d)]
        else:
            args = ["chain", str(d)]
        self._timed(f"inputs {case}", [PY, str(HERE / "prepare.py"), "inputs"] + args)
        return d


def case_stems(case):
    if case.startswith("enc-"):
        return ["encoder"]
    if case == "ftm":
        return ["swapper-ftm"]
    if case.startswith("gen-"):
        return ["generator"] if case == "gen-1024" else [f"generator-{case[4:]}"]
    return ["encoder", "swapper-ftm", "generator"]


def torch_config(stem):
    if stem == "encoder":
        return {}
    if stem.startswith("swapper"):
        return {"kind": "ftm"}
    return {"size": int(stem.split("-")[1]) if "-" in stem else 1024}


def engine_files(art: Artifacts, engine, stem):
    """The model file(s) an engine loads for one stem (None when unavailable)."""
    if engine == "ours-fp32":
        p = art.ensure_mfs(stem)
        return [p] if p else None
    if engine in ("ours-int8", "ours-int8dyn"):
        p = art.ensure_mfs_int8(stem)
        return [p] if p else None
    if engine in ("ort-all", "ort-extended", "ov-fp32"):
        p = art.ensure_onnx(stem)
        return [p] if p else None
    if engine == "ort-int8":
        p = art.ensure_ort_int8(stem)
        return [p] if p else None
    if engine == "ov-int8":
        p = art.ensure_ov_int8(stem)
        return [p, p.with_suffix(".bin")] if p else None
    if engine == "torch":
        p = art.ensure_torch(stem)
        return [p] if p else None
    raise ValueError(engine)


# --------------------------------------------------------------------------- #
# One process of one engine on one case
# --------------------------------------------------------------------------- #

def run_once(art: Artifacts, case, engine, files, inputs_dir: Path, runs, out_dir: Path | None):
    names = sorted(p.stem for p in inputs_dir.glob("*.npy"))
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    if engine.startswith("ours") and case == "chain":
        return run_ours_chain(art, engine, files, runs, out_dir)
    if engine.startswith("ours"):
        cmd = [art.megafs, "run", str(files[0][0]), "--threads", str(THREADS), "--repeat", str(runs), "--json"]
        cmd += OURS_FLAGS.get(engine, [])
        if out_dir:
            cmd += ["--output-dir", str(out_dir)]
        for n in names:
            cmd += ["--input", f"{n}={inputs_dir / (n + '.npy')}"]
        rc, out, err, rss, wall, t0 = spawn(cmd)
        if rc != 0:
            return {"error": (err.strip() or out.strip())[-400:]}
        r = last_json(out)
        return {"load_ms": r["load_ms"], "first_run_ms": r["first_run_ms"], "latency_ms": r["latency_ms"],
                "peak_rss_mb": rss, "self_reported_peak_rss_mb": r.get("peak_rss_mb"), "wall_s": wall}
    stems = case_stems(case)
    spec = {"engine": engine, "models": [str(f[0]) for f in files], "kinds": [
        "encoder" if s == "encoder" else "swapper" if s.startswith("swapper") else "generator" for s in stems],
        "configs": [torch_config(s) for s in stems], "export_dir": str(EXPORT), "latent_dim": 512,
        "inputs": {n: str(inputs_dir / (n + ".npy")) for n in names}, "runs": runs,
        "out": str(out_dir) if out_dir else None}
    rc, out, err, rss, wall, t0 = spawn([PY, str(HERE / "engines.py"), json.dumps(spec)])
    if rc != 0:
        return {"error": (err.strip() or out.strip())[-400:]}
    r = last_json(out.strip().splitlines()[-1])
    r["peak_rss_mb"] = rss
    r["wall_s"] = wall
    r["start_to_first_output_ms"] = (r.pop("first_output_epoch") - t0) * 1e3
    r.pop("runs", None)
    return r


def run_ours_chain(art: Artifacts, engine, files, runs, out_dir):
    """Ours on the whole swap: `megafs swap --pairs` with 1 + runs identical rows (models loaded once;
    the first row is the first run), then one `megafs swap --json` process for the cold start
    (process start to output written) and the per-stage times."""
    mdir = files[0][0].parent
    tmp = Path(tempfile.mkdtemp(prefix="bench-swap-"))
    try:
        # a folder with the three models under their default names
        mdl = tmp / "models"
        mdl.mkdir()
        for f, name in zip(files, ("encoder.mfs", "swapper-ftm.mfs", "generator.mfs")):
            os.symlink(f[0], mdl / name)
        src, tgt, lab = SAMPLES / "synthetic_face.png", SAMPLES / "astronaut_face.png", SAMPLES / "astronaut_face_labels.png"
        (tmp / "pairs.csv").write_text("".join(f"{src},{tgt},{lab}\n" for _ in range(runs + 1)))
        rc, out, err, rss, wall, _ = spawn([art.megafs, "swap", "--pairs", str(tmp / "pairs.csv"), "--models", str(mdl),
                                            "-o", str(tmp / "pairs-out"), "--threads", str(THREADS), "--json", "-q"]
                                           + OURS_FLAGS.get(engine, []))
        if rc != 0:
            return {"error": (err.strip() or out.strip())[-400:]}
        s = last_json(out)
        ms = [r["milliseconds"] for r in s["rows"] if r.get("milliseconds") is not None]
        if len(ms) != runs + 1:
            return {"error": f"swap --pairs: {len(ms)} rows done of {runs + 1}: {s}"}
        lat = sorted(ms[1:])
        res = {"load_ms": s["seconds"] * 1e3 - sum(ms), "first_run_ms": ms[0],
               "latency_ms": {"min": lat[0], "median": lat[len(lat) // 2], "max": lat[-1]},
               "peak_rss_mb": rss, "wall_s": wall}
        def single_swap(models, image):
            return spawn([art.megafs, "swap", "--source", str(src), "--target", str(tgt), "--target-mask", str(lab),
                          "--models", str(models), "-o", str(tmp / image), "--threads", str(THREADS), "--json", "-q"]
                         + OURS_FLAGS.get(engine, []))
        rc, out, err, rss1, wall1, _ = single_swap(mdl, "one.png")
        if rc == 0:
            one = last_json(out)
            res["start_to_first_output_ms"] = wall1 * 1e3
            res["single_swap"] = {"load_ms": one["loadMilliseconds"], "stages_ms": {
                t["stage"]: t["milliseconds"] for t in one["stages"]}, "peak_rss_mb": rss1}
        # the same cold swap from the bundle converted with --uncompressed (mapped, not decoded)
        mapped = [art.ensure_mfs_mapped(f[0].stem, engine != "ours-fp32") for f in files]
        if all(mapped):
            mdl2 = tmp / "models-mapped"
            mdl2.mkdir()
            for f, name in zip(mapped, ("encoder.mfs", "swapper-ftm.mfs", "generator.mfs")):
                os.symlink(f, mdl2 / name)
            rc, out, err, rss2, wall2, _ = single_swap(mdl2, "two.png")
            if rc == 0:
                res["start_to_first_output_mapped_ms"] = wall2 * 1e3
                res["single_swap_mapped"] = {"load_ms": last_json(out)["loadMilliseconds"], "peak_rss_mb": rss2}
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ours_chain_outputs(art: Artifacts, engine, files, inputs_dir: Path, out_dir: Path):
    """The raw generator image of our chain for the drift figures: the three models through
    `megafs run` one after the other (swap itself writes only the blended 8-bit image)."""
    import numpy as np
    tmp = Path(tempfile.mkdtemp(prefix="bench-chain-"))
    try:
        def run(model, feeds, out):
            cmd = [art.megafs, "run", str(model), "--threads", str(THREADS), "--output-dir", str(out)] + OURS_FLAGS.get(engine, [])
            for n, p in feeds.items():
                cmd += ["--input", f"{n}={p}"]
            rc, o, e, *_ = spawn(cmd)
            if rc != 0:
                raise RuntimeError(e.strip()[-300:])
        run(files[0][0], {"image": inputs_dir / "image.npy"}, tmp / "e")
        lat, st = np.load(tmp / "e" / "latents.npy"), np.load(tmp / "e" / "struct.npy")
        np.save(tmp / "idd.npy", lat[1:2]), np.save(tmp / "att.npy", lat[0:1]), np.save(tmp / "struct.npy", st[0:1])
        run(files[1][0], {"idd": tmp / "idd.npy", "att": tmp / "att.npy"}, tmp / "s")
        run(files[2][0], {"struct": tmp / "struct.npy", "latents": tmp / "s" / "swapped_latents.npy"}, out_dir)
        return None
    except Exception as e:  # noqa: BLE001
        return str(e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- #
# Drift
# --------------------------------------------------------------------------- #

def drift(ref_dir: Path, dir_: Path, image_outputs=("image",)):
    import numpy as np
    if not ref_dir.exists() or not dir_.exists():
        return None
    res = {}
    a_all, b_all = [], []
    for f in sorted(ref_dir.glob("*.npy")):
        mine = dir_ / f.name
        if not mine.exists():
            continue
        a = np.load(f).astype(np.float64).ravel()
        b = np.load(mine).astype(np.float64).ravel()
        if a.shape != b.shape:
            res[f.stem] = {"error": f"shape {b.shape} vs {a.shape}"}
            continue
        d = {"max_abs": float(np.abs(a - b).max()), "range": float(a.max() - a.min())}
        d["max_abs_rel_range"] = d["max_abs"] / (d["range"] or 1.0)
        d["cosine"] = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) or 1.0))
        if f.stem in image_outputs:
            mse = float(((a - b) ** 2).mean())
            d["psnr_db"] = float(10 * np.log10(d["range"] ** 2 / mse)) if mse > 0 else float("inf")
        res[f.stem] = d
        a_all.append(a), b_all.append(b)
    if not a_all:
        return None
    a, b = np.concatenate(a_all), np.concatenate(b_all)
    res["_all"] = {"max_abs": max(v["max_abs"] for v in res.values() if "max_abs" in v),
                   "cosine": float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) or 1.0)),
                   "psnr_db": min((v["psnr_db"] for v in res.values() if "psnr_db" in v), default=None)}
    return res


# --------------------------------------------------------------------------- #
# Measuring cases
# --------------------------------------------------------------------------- #

def summarize(procs):
    ok = [p for p in procs if "error" not in p]
    if not ok:
        return {"error": procs[0]["error"] if procs else "not run", "processes": procs}
    med = lambda k: statistics.median(p[k] for p in ok)
    s = {"processes": len(ok), "load_ms": med("load_ms"), "first_run_ms": med("first_run_ms"),
         "median_ms": statistics.median(p["latency_ms"]["median"] for p in ok),
         "min_ms": min(p["latency_ms"]["min"] for p in ok), "max_ms": max(p["latency_ms"]["max"] for p in ok),
         "peak_rss_mb": max(p["peak_rss_mb"] for p in ok), "per_process": procs}
    if all("start_to_first_output_ms" in p for p in ok):
        s["start_to_first_output_ms"] = med("start_to_first_output_ms")
    if all("start_to_first_output_mapped_ms" in p for p in ok):
        s["start_to_first_output_mapped_ms"] = med("start_to_first_output_mapped_ms")
    if any("single_swap" in p for p in ok):
        s["single_swap"] = [p["single_swap"] for p in ok if "single_swap" in p][0]
    return s


def measure_cases(art: Artifacts, cases, engines, rounds, runs, outroot: Path, results, skipped, done=None):
    for case in cases:
        stems = case_stems(case)
        inputs_dir = art.ensure_inputs(case)
        avail = {}
        for e in engines:
            if e in ("ours-int8", "ours-int8dyn") and not art.has_int8:
                skipped.setdefault(case, {})[e] = "megafs convert has no --quantize yet"
                continue
            fs = [engine_files(art, e, s) for s in stems]
            if any(f is None for f in fs):
                skipped.setdefault(case, {})[e] = "model file could not be made (see artifacts notes)"
                continue
            avail[e] = fs
        procs = {e: [] for e in avail}
        log(f"{case}: {len(avail)} engines x {rounds} rounds x (1 + {runs} runs)")
        for r in range(rounds):
            order = list(avail)
            k = r % max(len(order), 1)
            order = order[k:] + order[:k]
            if r % 2:
                order.reverse()
            for e in order:
                out_dir = outroot / "outputs" / case / e if r == 0 else None
                if out_dir and e.startswith("ours") and case == "chain":
                    out_dir = None
                res = run_once(art, case, e, avail[e], inputs_dir, runs, out_dir)
                procs[e].append(res)
                if "error" in res:
                    log(f"  {case} {e} round {r + 1}: ERROR {res['error'][-200:]}")
                else:
                    log(f"  {case} {e} round {r + 1}: load {res['load_ms']:.0f} ms, first {res['first_run_ms']:.0f} ms, "
                        f"median {res['latency_ms']['median']:.1f} ms, peak RSS {res['peak_rss_mb']:.0f} MB")
        entry = results.setdefault(case, {})
        for e, fs in avail.items():
            s = summarize(procs[e])
            s["size_mb"] = file_mb(*[p for f in fs for p in f])
            s["files"] = [str(p) for f in fs for p in f]
            entry[e] = s
        # drift against PyTorch
        if case == "chain":
            for e in avail:
                if e.startswith("ours") and "error" not in entry[e]:
                    err = ours_chain_outputs(art, e, avail[e], inputs_dir, outroot / "outputs" / case / e)
                    if err:
                        entry[e]["drift_error"] = err
        ref = outroot / "outputs" / case / "torch"
        for e in avail:
            if e != "torch" and "error" not in entry[e]:
                d = drift(ref, outroot / "outputs" / case / e)
                if d:
                    entry[e]["drift"] = d
        if done:
            done()


# --------------------------------------------------------------------------- #
# Kernels, bandwidth, machine
# --------------------------------------------------------------------------- #

def machine_info():
    info = {"cores": os.cpu_count(), "python": platform.python_version()}
    try:
        txt = Path("/proc/cpuinfo").read_text()
        get = lambda k: next((l.split(":", 1)[1].strip() for l in txt.splitlines() if l.startswith(k)), "")
        flags = set(get("flags").split())
        info.update(model=get("model name"), mhz=float(get("cpu MHz") or 0), family=get("cpu family"),
                    model_id=get("model\t"), avx512=("avx512f" in flags), avx2=("avx2" in flags), fma=("fma" in flags),
                    vnni=bool(flags & {"avx512_vnni", "avx_vnni"}))
    except OSError:
        pass
    lanes = 16 if info.get("avx512") else 8 if info.get("avx2") else 4
    fma_units = 2
    info["peak_gflops"] = info.get("mhz", 0) / 1e3 * lanes * 2 * fma_units * (info["cores"] or 1)
    info["peak_assumption"] = (f"{info.get('mhz', 0):.0f} MHz (cpuinfo nominal, no turbo) x {lanes} fp32 lanes "
                               f"({'AVX-512' if info.get('avx512') else 'AVX2'}) x 2 flops per FMA x {fma_units} FMA units "
                               f"per core x {info['cores']} cores")
    try:
        la = os.getloadavg()
        info["loadavg"] = [round(x, 2) for x in la]
    except OSError:
        pass
    return info


TRIAD_C = r"""
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#define N (1L << 24)
static double *a, *b, *c; static int T;
static void *work(void *p) { long t = (long)p, lo = N * t / T, hi = N * (t + 1) / T;
  for (long i = lo; i < hi; i++) a[i] = b[i] + 3.0 * c[i]; return 0; }
static void *init(void *p) { long t = (long)p, lo = N * t / T, hi = N * (t + 1) / T;
  for (long i = lo; i < hi; i++) { a[i] = 0; b[i] = 1; c[i] = 2; } return 0; }
static void par(void *(*f)(void *)) { pthread_t th[64]; for (long t = 0; t < T; t++) pthread_create(&th[t], 0, f, (void *)t);
  for (int t = 0; t < T; t++) pthread_join(th[t], 0); }
int main(int argc, char **argv) { T = atoi(argv[1]); a = malloc(N * 8); b = malloc(N * 8); c = malloc(N * 8);
  par(init); double best = 1e9;
  for (int r = 0; r < 10; r++) { struct timespec s, e; clock_gettime(CLOCK_MONOTONIC, &s); par(work);
    clock_gettime(CLOCK_MONOTONIC, &e); double dt = (e.tv_sec - s.tv_sec) + (e.tv_nsec - s.tv_nsec) * 1e-9; if (dt < best) best = dt; }
  printf("{\"triad_gbs\": %.3f, \"bytes_per_pass\": %ld, \"best_s\": %.6f, \"check\": %.1f}\n", 3.0 * 8 * N / best / 1e9, 3 * 8 * N, best, a[N / 2]);
  return 0; }
"""


def triad(workdir: Path):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        return {"error": "no C compiler"}
    src, exe = workdir / "triad.c", workdir / "triad"
    src.write_text(TRIAD_C)
    r = subprocess.run([cc, "-O2", "-march=native", "-pthread", str(src), "-o", str(exe)], capture_output=True, text=True)
    if r.returncode != 0:
        return {"error": r.stderr[-300:]}
    rc, out, err, *_ = spawn([str(exe), str(THREADS)])
    return json.loads(out) if rc == 0 else {"error": err[-300:]}


def kernel_model(art: Artifacts, cin, cout, h, w, stride):
    """The one-conv ONNX model of a kernel shape and its input, made when missing."""
    stem = f"conv{cin}x{cout}_{h}x{w}_s{stride}"
    onnx_p = art.b / "kernels" / f"{stem}.onnx"
    if not onnx_p.exists():
        subprocess.run([PY, str(HERE / "prepare.py"), "conv-model", str(cin), str(cout), str(h), str(w), str(stride),
                        str(onnx_p)], check=True, env=child_env())
    return onnx_p, onnx_p.with_suffix(".mfs"), onnx_p.with_name(f"{stem}.x.npy")


def prepare_without_megafs(art: Artifacts, cases, engines, kernel_shapes):
    """Everything that does not need the megafs binary (exports, peers' models, PyTorch weights,
    inputs, one-conv models): run.sh makes these while megafs builds."""
    for case in cases:
        art.ensure_inputs(case)
        for stem in case_stems(case):
            if art.ensure_onnx(stem) is None:
                continue
            if "ort-int8" in engines:
                art.ensure_ort_int8(stem)
            if "ov-int8" in engines:
                art.ensure_ov_int8(stem)
            if "torch" in engines:
                art.ensure_torch(stem)
    for cin, cout, h, w, stride, _ in kernel_shapes:
        kernel_model(art, cin, cout, h, w, stride)


def kernels(art: Artifacts, shapes, runs, minfo):
    rows = []
    for cin, cout, h, w, stride, what in shapes:
        onnx_p, mfs_p, x_p = kernel_model(art, cin, cout, h, w, stride)
        if not mfs_p.exists() or art.reconvert or mfs_p.stat().st_mtime < onnx_p.stat().st_mtime:
            subprocess.run([art.megafs, "convert", str(onnx_p), "-o", str(mfs_p), "-q"], check=True)
        oh, ow = (h - 1) // stride + 1, (w - 1) // stride + 1
        gflop = 2 * cout * cin * 9 * oh * ow / 1e9
        mbytes = 4 * (cout * cin * 9 + cin * h * w + cout * oh * ow) / 1e6
        reps = max(runs, int(min(50, 1.0 / max(gflop / 50, 1e-4))))  # about 1 s of work at 50 GFLOP/s
        row = {"shape": f"{cin}->{cout}, {h}x{w}, 3x3/{stride}", "what": what, "gflop": gflop, "mbytes": mbytes,
               "gemm": [cout, cin * 9, oh * ow], "repeat": reps}
        rc, out, err, *_ = spawn([art.megafs, "run", str(mfs_p), "--input", f"x={x_p}", "--threads", str(THREADS),
                                  "--repeat", str(reps), "--json"])
        if rc == 0:
            row["ours_ms"] = last_json(out)["latency_ms"]["median"]
        else:
            row["ours_error"] = err.strip()[-200:]
        spec = {"engine": "ort-all", "models": [str(onnx_p)], "kinds": ["conv"], "configs": [{}], "latent_dim": 0,
                "inputs": {"x": str(x_p)}, "runs": reps, "out": None, "export_dir": str(EXPORT)}
        rc, out, err, *_ = spawn([PY, str(HERE / "engines.py"), json.dumps(spec)])
        if rc == 0:
            row["ort_ms"] = last_json(out.strip().splitlines()[-1])["latency_ms"]["median"]
        rc, out, err, *_ = spawn([PY, str(HERE / "prepare.py"), "gemm", str(cout), str(cin * 9), str(oh * ow), str(reps)])
        if rc == 0:
            row["openblas_ms"] = json.loads(out)["median_s"] * 1e3
        for k in ("ours", "ort", "openblas"):
            if f"{k}_ms" in row and row[f"{k}_ms"] > 0:
                row[f"{k}_gflops"] = gflop / (row[f"{k}_ms"] / 1e3)
        row["ours_pct_peak"] = 100 * row.get("ours_gflops", 0) / minfo["peak_gflops"] if minfo["peak_gflops"] else None
        row["ours_gbs"] = mbytes / 1e3 / (row["ours_ms"] / 1e3) if row.get("ours_ms") else None
        log(f"  kernel {row['shape']}: ours {row.get('ours_gflops', 0):.1f}, ORT {row.get('ort_gflops', 0):.1f}, "
            f"OpenBLAS GEMM {row.get('openblas_gflops', 0):.1f} GFLOP/s")
        rows.append(row)
    rc, out, err, *_ = spawn([PY, str(HERE / "prepare.py"), "gemm", "2048", "2048", "2048", "10"])
    square = json.loads(out) if rc == 0 else {"error": err[-200:]}
    if "median_s" in square:
        square["gflops"] = square["gflop"] / square["median_s"]
    return {"convs": rows, "openblas_square_2048": square}


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #

ENCODER_GMAC_PER_IMAGE = 17.8   # issue 9: 35.6 GMAC at batch 2


def generator_gmac(size, ch=None):
    """Multiply-adds of the generator's 3x3 convs (conv1, per level a stride-2 transposed conv counted
    over its input pixels and a 3x3 conv) and ToRGB 1x1 convs; 74 GMAC at 1024 px."""
    ch = ch or {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32}
    macs = ch[4] * ch[4] * 9 * 16 + ch[4] * 3 * 16
    r = 8
    while r <= size:
        i, o = ch[r // 2], ch[r]
        macs += i * o * 9 * (r // 2) ** 2 + o * o * 9 * r * r + o * 3 * r * r
        r *= 2
    return macs / 1e9


def fmt_ms(v):
    if v is None:
        return "-"
    return f"{v / 1e3:.2f} s" if v >= 1000 else f"{v:.0f} ms" if v >= 20 else f"{v:.1f} ms"


def best_of(entry, engines, key):
    vals = [(entry[e][key], e) for e in engines if e in entry and "error" not in entry[e] and entry[e].get(key) is not None]
    return min(vals) if vals else None


def ratio_cell(entry, ours, peers, key):
    if ours not in entry or "error" in entry[ours]:
        return "-"
    b = best_of(entry, peers, key)
    if not b or not b[0]:
        return "-"
    return f"{entry[ours][key] / b[0]:.2f} ({LABEL[b[1]].split(' (')[0]})"


def drift_cells(d):
    if not d:
        return "-", "-", "-"
    a = d["_all"]
    psnr = a.get("psnr_db")
    return (f"{a['max_abs']:.2g}", f"{a['cosine']:.6f}" if a["cosine"] < 0.9999995 else "1.000000",
            "-" if psnr is None else "inf" if psnr == float("inf") else f"{psnr:.1f}")


def render(report):
    res, L = report["results"], []
    m = report["machine"]
    L.append(f"Measured {report['date']} on {m.get('model', '?')} ({m['cores']} cores, "
             f"{'AVX-512' if m.get('avx512') else 'AVX2/FMA'}, {m.get('mhz', 0):.0f} MHz), {THREADS} threads per engine, "
             f"load average before/after {report['loadavg_before']} / {report['loadavg_after']}.")
    took = f"{report['wall_minutes']:.1f} min"
    if report.get("command_minutes"):
        took = (f"{report['command_minutes']:.1f} min in all: {report['before_measuring_minutes']:.1f} min until megafs was built "
                f"({report['build_minutes']:.1f} min) and the artifacts that do not need it were made beside it, "
                f"then {report['wall_minutes']:.1f} min converting and measuring")
    L.append(f"Command: `{report['command']}` ({report['rounds']} process(es) per engine and model, "
             f"each 1 warm-up run + {report['runs']} runs; {took}).")
    L.append("Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".")
    L.append("")
    L.append("| model | engine | load | first run | median (min-max) | peak RSS MB | size MB | max abs vs PyTorch | cosine | PSNR dB |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for case in report["main_cases"]:
        if case not in res:
            continue
        for e in ALL_ENGINES:
            if e not in res[case]:
                continue
            s = res[case][e]
            if "error" in s:
                L.append(f"| {CASE_LABEL[case]} | {LABEL[e]} | failed: {s['error'].splitlines()[-1][:120]} |||||||")
                continue
            mx, cos, psnr = drift_cells(s.get("drift")) if e != "torch" else ("(reference)", "", "")
            L.append(f"| {CASE_LABEL[case]} | {LABEL[e]} | {fmt_ms(s['load_ms'])} | {fmt_ms(s['first_run_ms'])} | "
                     f"{fmt_ms(s['median_ms'])} ({fmt_ms(s['min_ms'])}-{fmt_ms(s['max_ms'])}) | {s['peak_rss_mb']:.0f} | "
                     f"{s['size_mb']:.0f} | {mx} | {cos} | {psnr} |")
        for e, why in report["skipped"].get(case, {}).items():
            L.append(f"| {CASE_LABEL[case]} | {LABEL[e]} | skipped: {why} |||||||")
    L.append("")
    L.append("Ratios, ours / best peer (lower is better; the best peer named):")
    L.append("")
    L.append("| model | ratio | load | first run | median latency | peak RSS | size on disk |")
    L.append("|---|---|---|---|---|---|---|")
    for case in report["main_cases"]:
        if case not in res:
            continue
        ent = res[case]
        for ours, peers, name in (("ours-fp32", FP32_PEERS, "megafs fp32 / best fp32 peer"),
                                  ("ours-int8", FP32_PEERS, "megafs int8 / best fp32 peer"),
                                  ("ours-int8", INT8_PEERS, "megafs int8 / best int8 peer"),
                                  ("ours-int8dyn", FP32_PEERS, "megafs int8 dynamic / best fp32 peer")):
            if ours not in ent:
                continue
            L.append(f"| {CASE_LABEL[case]} | {name} | " + " | ".join(
                ratio_cell(ent, ours, peers, k) for k in ("load_ms", "first_run_ms", "median_ms", "peak_rss_mb", "size_mb")) + " |")
    if "chain" in res and "ours-fp32" in res["chain"] and "single_swap" in res["chain"]["ours-fp32"]:
        st = res["chain"]["ours-fp32"]["single_swap"]["stages_ms"]
        L.append("")
        L.append("Our chain is timed with `megafs swap --pairs` (models loaded once, one row per run), so its latency also "
                 "includes reading the two PNGs, pre-processing, the mask, the blend and writing a PNG; the peers' chain is "
                 "the three models only. Stages of one cold `megafs swap` (fp32): "
                 + ", ".join(f"{k} {v:.0f} ms" for k, v in st.items()) + ".")
    cs = [(e, res["chain"][e].get("start_to_first_output_ms")) for e in ALL_ENGINES if "chain" in res and e in res["chain"]]
    cs = [(e, v) for e, v in cs if v]
    if cs:
        L.append("Process start to first chain output: " + ", ".join(f"{LABEL[e]} {fmt_ms(v)}" for e, v in cs) + ".")
    cm = [(e, res["chain"][e].get("start_to_first_output_mapped_ms")) for e in ALL_ENGINES if "chain" in res and e in res["chain"]]
    cm = [(e, v) for e, v in cm if v]
    if cm:
        L.append("The same from bundles converted with `--uncompressed` (weights mapped from the file, not decoded): "
                 + ", ".join(f"{LABEL[e]} {fmt_ms(v)}" for e, v in cm) + ".")
    k = report.get("kernels")
    if k:
        L.append("")
        L.append(f"Kernels (one 3x3 Conv with bias, pad 1, batch 1, {THREADS} threads; median): machine peak "
                 f"{m['peak_gflops']:.0f} GFLOP/s assumed = {m['peak_assumption']}. OpenBLAS = numpy's bundled "
                 f"OpenBLAS running the conv's GEMM (M=Cout, K=9*Cin, N=output pixels) without the im2col; "
                 f"its 2048^3 sgemm: {k['openblas_square_2048'].get('gflops', 0):.0f} GFLOP/s.")
        bw = report.get("triad", {}).get("triad_gbs")
        if bw:
            L.append(f"Memory bandwidth (STREAM-like triad, {THREADS} threads, 3 x 128 MB): {bw:.1f} GB/s.")
        L.append("")
        L.append("| conv | where | GFLOP | megafs GFLOP/s | % of peak | ORT GFLOP/s | OpenBLAS GEMM GFLOP/s | megafs / OpenBLAS | megafs GB/s (weights + activations) |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for r in k["convs"]:
            g = lambda key: f"{r[key]:.1f}" if r.get(key) else "-"
            rat = f"{r['ours_gflops'] / r['openblas_gflops']:.2f}" if r.get("ours_gflops") and r.get("openblas_gflops") else "-"
            L.append(f"| {r['shape']} | {r['what']} | {r['gflop']:.2f} | {g('ours_gflops')} | "
                     f"{r['ours_pct_peak']:.0f}% | {g('ort_gflops')} | {g('openblas_gflops')} | {rat} | "
                     f"{(r.get('ours_gbs') or 0):.2f} |")
    sc = report.get("scaling")
    if sc:
        L.append("")
        L.append("Scaling (median latency / peak RSS MB; work = multiply-adds of the convolutions, counted from the "
                 "architecture: generator transposed convs by their input pixels, encoder 17.8 GMAC per image):")
        L.append("")
        L.append("| model | work | " + " | ".join(LABEL[e] for e in SCALING_ENGINES) + " |")
        L.append("|---|---|" + "---|" * len(SCALING_ENGINES))
        for case in SCALING_CASES:
            if case not in res:
                continue
            work = (f"{generator_gmac(int(case[4:])):.0f} GMAC" if case.startswith("gen-")
                    else f"{int(case[5:]) * ENCODER_GMAC_PER_IMAGE:.1f} GMAC")
            cells = []
            for e in SCALING_ENGINES:
                s = res[case].get(e)
                cells.append("-" if not s or "error" in s else f"{fmt_ms(s['median_ms'])} / {s['peak_rss_mb']:.0f}")
            L.append(f"| {CASE_LABEL[case]} | {work} | " + " | ".join(cells) + " |")
    if report["artifact_notes"]:
        L.append("")
        L.append("Artifact notes: " + "; ".join(f"{k}: {v}" for k, v in report["artifact_notes"].items()))
    return "\n".join(L) + "\n"


def chart(report, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib missing"
    res = report["results"]
    cases = [c for c in report["main_cases"] if c in res]
    engines = [e for e in ALL_ENGINES if any(e in res[c] and "error" not in res[c][e] for c in cases)]
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5))
    w = 0.8 / max(len(engines), 1)
    for ax, key, title in ((axes[0], "median_ms", "median latency, relative to the best fp32 peer"),
                           (axes[1], "peak_rss_mb", "peak RSS, relative to the best fp32 peer")):
        for i, e in enumerate(engines):
            xs, ys = [], []
            for j, c in enumerate(cases):
                b = best_of(res[c], FP32_PEERS, key)
                s = res[c].get(e)
                if b and s and "error" not in s:
                    xs.append(j + (i - len(engines) / 2 + 0.5) * w)
                    ys.append(s[key] / b[0])
            ax.bar(xs, ys, w, label=LABEL[e], color=plt.cm.tab10(i))
        ax.axhline(1.0, color="k", lw=0.8)
        if any(b.get_height() > 4 or 0 < b.get_height() < 0.25 for b in ax.patches):
            ax.set_yscale("log")
        ax.set_xticks(range(len(cases)), [CASE_LABEL[c] for c in cases], rotation=20)
        ax.set_title(title)
        ax.set_ylabel("ratio (lower is better)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"megafs vs peers, {report['machine'].get('model', '')}, {THREADS} threads, {report['date']}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None


def versions(megafs):
    v = {}
    code = ("import json, importlib.metadata as m\nr = {}\nfor p in ['onnxruntime', 'openvino', 'nncf', 'torch', 'numpy']:\n"
            "    try: r[p] = m.version(p)\n    except Exception: pass\nprint(json.dumps(r))")
    r = subprocess.run([PY, "-c", code], capture_output=True, text=True)
    try:
        v.update(json.loads(r.stdout))
    except ValueError:
        pass
    r = subprocess.run([megafs, "--version"], capture_output=True, text=True)
    v = {"megafs": r.stdout.strip() or "?", **v}
    g = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if g.returncode == 0:
        v["megafs"] += f" (tree at {g.stdout.strip()}" + (", with local changes)" if subprocess.run(
            ["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "Sources"]).returncode else ")")
    return v


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--megafs", default=str(ROOT / ".build-bench" / "release" / "megafs"), help="the megafs binary")
    ap.add_argument("--cache", default=os.environ.get("MEGAFS_BENCH_CACHE", "/work/full"),
                    help="exports, converted models and other artifacts; reused when present (default: %(default)s)")
    ap.add_argument("--out", default=str(ROOT / "out" / "bench"), help="results folder (default: %(default)s)")
    ap.add_argument("--models", default=None, help=f"comma-separated cases (default: {','.join(MAIN_CASES)})")
    ap.add_argument("--engines", default=None, help=f"comma-separated engines (default: all: {','.join(ALL_ENGINES)})")
    ap.add_argument("--runs", type=int, default=None, help="timed runs per process after the warm-up (default 5)")
    ap.add_argument("--rounds", type=int, default=None, help="fresh processes per engine and model (default 1)")
    ap.add_argument("--no-kernels", action="store_true", help="skip the kernel and bandwidth figures")
    ap.add_argument("--no-scaling", action="store_true", help="skip the scaling table")
    ap.add_argument("--reconvert", action="store_true", help="convert the .mfs models again even if present")
    ap.add_argument("--prepare-only", action="store_true",
                    help="only make the artifacts that do not need megafs (run.sh does this while megafs builds)")
    ap.add_argument("--render", metavar="RESULTS_JSON", help="only render results.md / results.png again from a results.json")
    ap.add_argument("--quick", action="store_true",
                    help="development: ftm and encoder batch 1 only, 1 process x 2 runs, 3 kernel shapes, no scaling")
    a = ap.parse_args(argv)
    if a.render:
        report = json.loads(Path(a.render).read_text())
        md = render(report)
        if not report.get("complete", True):
            md = "(partial: the run did not finish)\n\n" + md
        Path(a.render).with_name("results.md").write_text(md)
        chart(report, Path(a.render).with_name("results.png"))
        print(md)
        return
    t_start = time.time()
    cases = (a.models.split(",") if a.models else (["ftm", "enc-b1"] if a.quick else MAIN_CASES))
    engines = a.engines.split(",") if a.engines else ALL_ENGINES
    for c in cases:
        if c not in CASE_LABEL and c != "chain":
            ap.error(f"unknown model {c}; choose from {', '.join(CASE_LABEL)}")
    for e in engines:
        if e not in ALL_ENGINES:
            ap.error(f"unknown engine {e}; choose from {', '.join(ALL_ENGINES)}")
    runs = a.runs or (2 if a.quick else 5)
    rounds = a.rounds or 1
    scaling = not a.no_scaling and not a.quick
    kernel_shapes = [] if a.no_kernels else QUICK_KERNEL_SHAPES if a.quick else KERNEL_SHAPES
    if a.prepare_only:
        art = Artifacts(Path(a.cache), os.path.abspath(a.megafs), reconvert=a.reconvert)
        prepare_without_megafs(art, cases, engines, kernel_shapes)
        if scaling:
            prepare_without_megafs(art, [c for c in SCALING_CASES if c not in cases],
                                   [e for e in SCALING_ENGINES if e in engines], [])
        log(f"artifacts without megafs made in {(time.time() - t_start) / 60:.1f} min: "
            + ", ".join(f"{k} {v:.0f} s" for k, v in art.prep_seconds.items()))
        Path(a.out).mkdir(parents=True, exist_ok=True)
        (Path(a.out) / "prepare.json").write_text(json.dumps(
            {"seconds": art.prep_seconds, "notes": art.notes, "wall_minutes": (time.time() - t_start) / 60}, indent=1))
        return
    if not os.path.exists(a.megafs):
        ap.error(f"no megafs binary at {a.megafs} (build it: swift build -c release --scratch-path .build-bench)")
    outroot = Path(a.out)
    if (outroot / "outputs").exists():
        shutil.rmtree(outroot / "outputs")
    outroot.mkdir(parents=True, exist_ok=True)
    minfo = machine_info()
    art = Artifacts(Path(a.cache), os.path.abspath(a.megafs), reconvert=a.reconvert)
    # What run.sh made while megafs built (--prepare-only), and the build's own time.
    prepared = {}
    if (outroot / "prepare.json").exists():
        prepared = json.loads((outroot / "prepare.json").read_text())
        (outroot / "prepare.json").unlink()
        art.notes.update(prepared.get("notes", {}))
    build_seconds = float(os.environ.get("BENCH_BUILD_SECONDS", "0") or 0)
    overlapped_seconds = float(os.environ.get("BENCH_OVERLAP_SECONDS", "0") or 0)
    if not art.has_int8:
        log("megafs convert has no --quantize: the megafs int8 rows are skipped")
    results, skipped = {}, {}
    report = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "machine": minfo,
              "command": " ".join(["examples/bench/run.sh"] + (argv if argv is not None else sys.argv[1:])),
              "runs": runs, "rounds": rounds, "threads": THREADS, "main_cases": cases,
              "cases": cases + ([c for c in SCALING_CASES if c not in cases] if scaling else []),
              "versions": versions(a.megafs), "results": results, "skipped": skipped,
              "int8_available": art.has_int8, "loadavg_before": minfo.get("loadavg")}

    def write(final=False):
        try:
            report["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        except OSError:
            report["loadavg_after"] = None
        report["artifact_notes"] = art.notes
        report["artifact_seconds"] = {**prepared.get("seconds", {}), **art.prep_seconds}
        report["wall_minutes"] = (time.time() - t_start) / 60
        if overlapped_seconds:
            # run.sh: the build and the artifacts without megafs ran side by side before this.
            report["build_minutes"] = build_seconds / 60
            report["before_measuring_minutes"] = overlapped_seconds / 60
            report["command_minutes"] = report["wall_minutes"] + overlapped_seconds / 60
        report["complete"] = final
        md = render(report)
        if not final:
            md = "(partial: the run is still going)\n\n" + md
        (outroot / "results.md").write_text(md)
        (outroot / "results.json").write_text(json.dumps(report, indent=1, default=str))
        return md

    measure_cases(art, cases, engines, rounds, runs, outroot, results, skipped, done=write)
    if scaling:
        extra = [c for c in SCALING_CASES if c not in cases]
        sc_eng = [e for e in SCALING_ENGINES if e in engines]
        measure_cases(art, extra, sc_eng, rounds, runs, outroot, results, skipped, done=write)
        report["scaling"] = {c: {e: results[c][e].get("median_ms") for e in SCALING_ENGINES if e in results.get(c, {})}
                             for c in SCALING_CASES if c in results}
    if not a.no_kernels:
        log("kernels")
        report["kernels"] = kernels(art, kernel_shapes, 3, minfo)
        report["triad"] = triad(art.b / "kernels")
        if report["triad"].get("triad_gbs"):
            log(f"  triad {report['triad']['triad_gbs']:.1f} GB/s")
    md = write(final=True)
    err = chart(report, outroot / "results.png")
    print(md)
    log(f"wrote {outroot}/results.md, results.json" + (", results.png" if not err else f" (no chart: {err})")
        + f" in {report['wall_minutes']:.1f} min")

if __name__ == "__main__":
    main()
