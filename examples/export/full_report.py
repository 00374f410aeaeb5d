#!/usr/bin/env python3
"""Markdown tables for examples/export/README.md from the full-size export
folders written by export_full.sh (default /work/full/{torchscript,dynamo}):
file size, parameter count, operator histogram, timings, torch-vs-ORT diffs.

  python full_report.py [/work/full]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_report import report  # noqa: E402

ORDER = ["encoder", "swapper-ftm", "swapper-injection", "swapper-lcr", "generator"]
WHAT = {"encoder": "encoder", "swapper-ftm": "ftm", "swapper-injection": "injection",
        "swapper-lcr": "lcr", "generator": "generator"}


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/full")
    for exporter in ("torchscript", "dynamo"):
        d = root / exporter
        man = json.loads((d / "manifest.json").read_text()) if (d / "manifest.json").exists() else {"models": []}
        by = {m["name"]: m for m in man["models"]}
        print(f"\n#### {exporter}\n")
        print("| model | file | parameters (torch) | initializer elements | opset | export s | "
              "torch s | ORT s | process wall s / peak RSS | max abs torch-ORT (rel. to range) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        hists = []
        for name in ORDER:
            f = d / f"{name}.onnx"
            t = d / f"{WHAT[name]}.time"
            wall = "n/a"
            lines = t.read_text().strip().splitlines() if t.exists() else []
            if lines and lines[-1].startswith("wall"):
                parts = lines[-1].replace(",", "").split()     # wall X s peak RSS Y kB
                wall = f"{float(parts[1]):.0f} s / {int(parts[5]) / 1e6:.1f} GB"
            elif lines:
                wall = lines[-1]
            if name not in by or not f.exists():
                print(f"| {name} | **failed** (see below) | | | | | | | {wall} | |")
                continue
            m = by[name]
            r = report(str(f))
            s = m.get("seconds", {})
            print(f"| {name} | {r['bytes'] / 1e6:.1f} MB | {m['parameters']:,} | "
                  f"{r['initializer_elements']:,} | {m['opset']} | {s.get('export', '')} | "
                  f"{s.get('torch', '')} | {s.get('ort', '')} | {wall} | "
                  f"{m['max_abs_diff']:.3g} ({m['max_rel_diff']:.2g}) |")
            hists.append((name, r))
        print()
        for name, r in hists:
            ops = ", ".join(f"{k} {v}" for k, v in r["ops"].items())
            print(f"- `{name}` ({r['nodes']} nodes): {ops}")


if __name__ == "__main__":
    main()
