#!/usr/bin/env python3
"""Summarise ONNX files: size, opset, parameter count (initializer elements and
Constant-node tensor elements), operator histogram, inputs and outputs.

  python onnx_report.py model.onnx [...] [--json] [--markdown]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys

import onnx
from onnx import numpy_helper  # noqa: F401  (kept for users poking at the result)


def _numel(dims):
    n = 1
    for d in dims:
        n *= d
    return n


def _dims(vi):
    out = []
    for d in vi.type.tensor_type.shape.dim:
        out.append(d.dim_param if d.dim_param else d.dim_value)
    return out


def report(path):
    m = onnx.load(path, load_external_data=False)
    g = m.graph
    ops = collections.Counter()

    def walk(graph):
        for n in graph.node:
            ops[n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}"] += 1
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
                elif a.type == onnx.AttributeProto.GRAPHS:
                    for sg in a.graphs:
                        walk(sg)
    walk(g)
    init_elems = sum(_numel(t.dims) for t in g.initializer)
    const_elems = 0
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    const_elems += _numel(a.t.dims)
    size = os.path.getsize(path)
    data = path + ".data"
    ext = [t for t in g.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if ext:
        locs = {e.value for t in ext for e in t.external_data if e.key == "location"}
        for loc in locs:
            p = os.path.join(os.path.dirname(path), loc)
            if os.path.exists(p):
                size += os.path.getsize(p)
    elif os.path.exists(data):
        pass
    opset = {imp.domain or "ai.onnx": imp.version for imp in m.opset_import}
    return {
        "file": path,
        "bytes": size,
        "opset": opset,
        "initializers": len(g.initializer),
        "initializer_elements": init_elems,
        "constant_node_elements": const_elems,
        "nodes": sum(ops.values()),
        "ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "inputs": {i.name: _dims(i) for i in g.input},
        "outputs": {o.name: _dims(o) for o in g.output},
        "external_data": bool(ext),
        "producer": f"{m.producer_name} {m.producer_version}",
    }


def markdown(r):
    ops = ", ".join(f"{k} {v}" for k, v in r["ops"].items())
    return (f"| `{os.path.basename(r['file'])}` | {r['bytes'] / 1e6:.1f} MB | "
            f"{r['initializer_elements']:,} (+{r['constant_node_elements']:,} in Constant nodes) | "
            f"{r['opset'].get('ai.onnx')} | {r['nodes']} | {ops} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    rs = [report(f) for f in a.files]
    if a.json:
        json.dump(rs, sys.stdout, indent=1)
        print()
    elif a.markdown:
        print("| file | size | parameters (initializer elements) | opset | nodes | operators |")
        print("|---|---|---|---|---|---|")
        for r in rs:
            print(markdown(r))
    else:
        for r in rs:
            print(f"{r['file']}: {r['bytes'] / 1e6:.2f} MB, opset {r['opset']}, "
                  f"{r['initializer_elements']:,} initializer elements in {r['initializers']} tensors "
                  f"(+{r['constant_node_elements']:,} in Constant nodes), {r['nodes']} nodes")
            print(f"  inputs {r['inputs']} outputs {r['outputs']}")
            print("  ops: " + ", ".join(f"{k} {v}" for k, v in r["ops"].items()))


if __name__ == "__main__":
    main()
