"""Checks of the PyTorch definitions, the ONNX exports and the committed
fixtures. Opt-in (not run by CI):

  /work/venv/bin/python -m pytest examples/export/tests -q
  MEGAFS_FULL=1 /work/venv/bin/python -m pytest examples/export/tests -q -k full   # full size, slow

The expected key layout below is written down from the architecture notes
(shared/megafs-architecture.md), independently of the model code.
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import megafs_models as mm
import megafs_init as mi
import megafs_pipeline as pp
from export import (build_encoder, build_swapper, build_generator, example_inputs,
                    export_and_check)

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "fixtures"
FULL = os.environ.get("MEGAFS_FULL") == "1"
REL_TOL = 1e-4

torch.set_num_threads(min(2, os.cpu_count() or 1))


def meta_state_dict(model_cls, *args):
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in model_cls(*args).state_dict().items()}


# --------------------------------------------------------------------------- #
# Key layout (released checkpoints)
# --------------------------------------------------------------------------- #

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def expected_encoder_keys(base=64, d=512):
    """From the page: torchvision ResNet-50 [3,4,6,3] + layer5 (2 blocks, planes
    512, stride 2) under fpn.backbone; FPN output1..4 (conv with bias + BN);
    mapping1 4x styleMapping(8), mapping2 6x (16), mapping3 8x (32)."""
    keys = {}
    keys["fpn.backbone.conv1.weight"] = (base, 3, 7, 7)
    for b in BN:
        keys[f"fpn.backbone.bn1.{b}"] = () if b == "num_batches_tracked" else (base,)
    inplanes = base
    for li, (planes, blocks) in enumerate([(base, 3), (2 * base, 4), (4 * base, 6), (8 * base, 3),
                                           (8 * base, 2)], start=1):
        for bi in range(blocks):
            p = f"fpn.backbone.layer{li}.{bi}"
            keys[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1)
            keys[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            keys[f"{p}.conv3.weight"] = (4 * planes, planes, 1, 1)
            for j, c in ((1, planes), (2, planes), (3, 4 * planes)):
                for b in BN:
                    keys[f"{p}.bn{j}.{b}"] = () if b == "num_batches_tracked" else (c,)
            if bi == 0:
                keys[f"{p}.downsample.0.weight"] = (4 * planes, inplanes, 1, 1)
                for b in BN:
                    keys[f"{p}.downsample.1.{b}"] = () if b == "num_batches_tracked" else (4 * planes,)
            inplanes = 4 * planes
    for k, cin in ((1, 8 * base), (2, 16 * base), (3, 32 * base), (4, 32 * base)):
        keys[f"fpn.output{k}.0.weight"] = (d, cin, 3, 3)
        keys[f"fpn.output{k}.0.bias"] = (d,)
        for b in BN:
            keys[f"fpn.output{k}.1.{b}"] = () if b == "num_batches_tracked" else (d,)
    for m, count, reps in ((1, 4, 3), (2, 6, 4), (3, 8, 5)):
        for i in range(count):
            for r in range(reps):
                p = f"mapping{m}.{i}.convs"
                keys[f"{p}.{3 * r}.weight"] = (d, d, 3, 3)
                keys[f"{p}.{3 * r}.bias"] = (d,)
                for b in BN:
                    keys[f"{p}.{3 * r + 1}.{b}"] = () if b == "num_batches_tracked" else (d,)
    return keys


def expected_ftm_keys(d=512, hidden=256):
    keys = {"weight": (1, 14, d)}
    for i in range(14):
        for part in ("idd_selectors", "idd_shifters", "att_selectors", "att_shifters"):
            for k in range(3):
                p = f"blocks.{i}.{part}.{k}"
                keys[f"{p}.0.weight"] = (hidden, 2 * d)
                keys[f"{p}.0.bias"] = (hidden,)
                keys[f"{p}.2.weight"] = (d, hidden)
                keys[f"{p}.2.bias"] = (d,)
    return keys


def expected_injection_keys(d=512):
    # NOTE: the name of the BatchNorm1d ("norm") is not given by the notes.
    keys = {}
    for i in range(14):
        for path in (1, 2):
            p = f"blocks.{i}.att_path{path}"
            for b in ("running_mean", "running_var", "num_batches_tracked"):
                keys[f"{p}.0.norm.{b}"] = () if b == "num_batches_tracked" else (d,)
            for lin in ("idd_linears.0", "idd_selectors", "idd_shifters"):
                keys[f"{p}.0.{lin}.weight"] = (d, d)
                keys[f"{p}.0.{lin}.bias"] = (d,)
            keys[f"{p}.2.weight"] = (d, d)
            keys[f"{p}.2.bias"] = (d,)
    return keys


def expected_generator_keys(size=1024, d=512):
    ch = {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32}
    keys = {}

    def styled(p, cin, cout, up):
        keys[f"{p}.conv.weight"] = (1, cout, cin, 3, 3)
        keys[f"{p}.conv.modulation.weight"] = (cin, d)
        keys[f"{p}.conv.modulation.bias"] = (cin,)
        keys[f"{p}.noise.weight"] = (1,)
        keys[f"{p}.activate.bias"] = (cout,)
        if up:
            keys[f"{p}.conv.blur.kernel"] = (4, 4)

    def torgb(p, cin, up):
        keys[f"{p}.conv.weight"] = (1, 3, cin, 1, 1)
        keys[f"{p}.conv.modulation.weight"] = (cin, d)
        keys[f"{p}.conv.modulation.bias"] = (cin,)
        keys[f"{p}.bias"] = (1, 3, 1, 1)
        if up:
            keys[f"{p}.upsample.kernel"] = (4, 4)

    styled("conv1", 512, 512, False)
    torgb("to_rgb1", 512, False)
    log = int(np.log2(size))
    cin = 512
    for j, r in enumerate(range(3, log + 1)):
        c = ch[2 ** r]
        styled(f"convs.{2 * j}", cin, c, True)
        styled(f"convs.{2 * j + 1}", c, c, False)
        torgb(f"to_rgbs.{j}", c, True)
        cin = c
    for i in range((log - 2) * 2 + 1):
        r = (i + 5) // 2
        keys[f"noises.noise_{i}"] = (1, 1, 2 ** r, 2 ** r)
    return keys


def test_encoder_keys_match_released_layout():
    got = meta_state_dict(mm.Encoder)
    exp = expected_encoder_keys()
    assert set(got) == set(exp)
    assert got == exp
    per_prefix = Counter(k.split(".")[0] if not k.startswith("fpn.") else ".".join(k.split(".")[:2])
                         for k in got)
    assert per_prefix == {"fpn.backbone": 360, "fpn.output1": 7, "fpn.output2": 7, "fpn.output3": 7,
                          "fpn.output4": 7, "mapping1": 84, "mapping2": 168, "mapping3": 280}
    # a few exact ones
    assert got["fpn.backbone.layer5.0.downsample.0.weight"] == (2048, 2048, 1, 1)
    assert got["fpn.backbone.layer5.1.conv2.weight"] == (512, 512, 3, 3)
    assert got["fpn.output4.0.weight"] == (512, 2048, 3, 3)
    assert got["mapping1.3.convs.6.weight"] == (512, 512, 3, 3)
    assert got["mapping3.7.convs.13.running_var"] == (512,)
    assert "mapping1.3.convs.9.weight" not in got and "mapping3.7.convs.15.weight" not in got
    n_params = sum(int(np.prod(s)) for k, s in got.items()
                   if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert 235e6 < n_params < 245e6        # "about 240 million"
    n_map = sum(1 for k in got if re.match(r"mapping\d\.\d+\.convs\.\d+\.weight$", k)
                and len(got[k]) == 4)
    assert n_map == 76


def test_swapper_keys_match_released_layout():
    ftm = meta_state_dict(mm.Swapper, mm.SwapperConfig(kind="ftm"))
    assert ftm == expected_ftm_keys()
    assert len(ftm) == 673
    n = sum(int(np.prod(s)) for s in ftm.values())
    assert 65e6 < n < 67e6                   # "about 66 million"
    inj = meta_state_dict(mm.Swapper, mm.SwapperConfig(kind="injection"))
    assert inj == expected_injection_keys()
    assert meta_state_dict(mm.Swapper, mm.SwapperConfig(kind="lcr")) == {}


def test_generator_keys_match_released_layout():
    got = meta_state_dict(mm.Generator)
    exp = expected_generator_keys()
    assert got == exp
    assert len(got) == 154
    assert got["noises.noise_15"] == got["noises.noise_16"] == (1, 1, 1024, 1024)
    assert got["convs.14.conv.weight"] == (1, 32, 64, 3, 3)
    n = sum(int(np.prod(s)) for k, s in got.items() if not k.startswith("noises.")
            and not k.endswith("kernel"))
    assert 25e6 < n < 32e6                   # "about 30 million"
    noise = sum(int(np.prod(s)) for k, s in got.items() if k.startswith("noises."))
    assert noise == 2796176                  # "about 2.8 million values"


@pytest.mark.parametrize("kind", ["ftm", "injection"])
def test_tiny_keys_have_same_structure(kind):
    full = meta_state_dict(mm.Swapper, mm.SwapperConfig(kind=kind))
    tiny = meta_state_dict(mm.Swapper, mm.tiny_swapper_config(kind))
    assert set(full) == set(tiny)
    assert set(meta_state_dict(mm.Encoder)) == set(meta_state_dict(mm.Encoder, mm.tiny_encoder_config()))
    g64 = set(meta_state_dict(mm.Generator, mm.tiny_generator_config(64)))
    assert g64 == set(expected_generator_keys(64))


# --------------------------------------------------------------------------- #
# Checkpoint round trip
# --------------------------------------------------------------------------- #

def test_state_dict_round_trip(tmp_path):
    enc = build_encoder(tiny=True, seed=3)
    sw = build_swapper("ftm", tiny=True, seed=3)
    ck = tmp_path / "ftm_final.pth"
    torch.save({"e": enc.state_dict(), "s": sw.state_dict()}, ck)
    enc2 = build_encoder(tiny=True, checkpoint=str(ck))
    sw2 = build_swapper("ftm", tiny=True, checkpoint=str(ck))
    x = example_inputs("encoder", enc, 1)["image"]
    with torch.no_grad():
        for a, b in zip(enc(x), enc2(x)):
            assert torch.equal(a, b)
        i = example_inputs("swapper", sw, 1)
        assert torch.equal(sw(**i), sw2(**i))
    for k, v in enc.state_dict().items():
        assert torch.equal(v, enc2.state_dict()[k])

    gen = build_generator(64, tiny=True, seed=3)
    sd = dict(gen.state_dict())
    # what a rosinality g_ema also holds: the mapping MLP and the constant input
    for i in range(1, 9):
        sd[f"style.{i}.weight"] = torch.randn(mm.TINY_LATENT, mm.TINY_LATENT)
        sd[f"style.{i}.bias"] = torch.zeros(mm.TINY_LATENT)
    sd["input.input"] = torch.randn(1, mm.TINY_LATENT, 4, 4)
    gck = tmp_path / "stylegan2.pth"
    torch.save({"g_ema": sd, "latent_avg": torch.zeros(mm.TINY_LATENT)}, gck)
    gen2 = build_generator(64, tiny=True, checkpoint=str(gck))
    i = example_inputs("generator", gen, 1)
    with torch.no_grad():
        assert torch.equal(gen(**i), gen2(**i))
    del sd["convs.0.noise.weight"]
    with pytest.raises(KeyError):
        mm.load_generator_state(mm.Generator(mm.tiny_generator_config(64)), sd)


# --------------------------------------------------------------------------- #
# Math details
# --------------------------------------------------------------------------- #

def upfirdn_reference(x, k, up, pad):
    """numpy: zero insertion, pad, true convolution (one channel plane)."""
    h, w = x.shape
    z = np.zeros((h * up, w * up))
    z[::up, ::up] = x
    z = np.pad(z, ((pad[0], pad[1]), (pad[0], pad[1])))
    kf = k[::-1, ::-1]
    kh, kw = k.shape
    oh, ow = z.shape[0] - kh + 1, z.shape[1] - kw + 1
    out = np.zeros((oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[i, j] = (z[i:i + kh, j:j + kw] * kf).sum()
    return out


def test_upfirdn2d_matches_reference():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2, 5, 6, generator=g)
    k = torch.rand(4, 4, generator=g)       # asymmetric: checks the flip
    for up, pad in ((1, (1, 1)), (2, (2, 1)), (1, (2, 1))):
        got = mm.upfirdn2d(x, k, up=up, pad=pad).numpy()
        for c in range(2):
            ref = upfirdn_reference(x[0, c].double().numpy(), k.double().numpy(), up, pad)
            np.testing.assert_allclose(got[0, c], ref, atol=1e-5)
    up = mm.Upsample((1, 3, 3, 1))
    assert up.pad == (2, 1)
    assert mm.upfirdn2d(x, up.kernel, up=2, pad=up.pad).shape == (1, 2, 10, 12)
    assert float(up.kernel.sum()) == pytest.approx(4.0)


def test_grouped_modulated_conv_equals_plain_batch1():
    gen = build_generator(64, tiny=True, seed=5)
    g = torch.Generator().manual_seed(1)
    struct = torch.randn(3, 16, 4, 4, generator=g)
    lat = torch.tanh(torch.randn(3, 18, 16, generator=g))
    with torch.no_grad():
        batched = gen(struct, lat)
        single = torch.cat([gen(struct[i:i + 1], lat[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-4)


def test_ftm_quirk_identity_activation():
    sw = build_swapper("ftm", tiny=True, seed=0)
    acts = [m for m in sw.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert len(acts) == 14 and all(m.negative_slope == 1.0 for m in acts)
    x = torch.randn(10)
    assert torch.equal(acts[0](x), x)


def test_lcr_replaces_high_latents():
    sw = build_swapper("lcr", tiny=True)
    idd, att = torch.randn(1, 18, 16), torch.randn(1, 18, 16)
    out = sw(idd, att)
    assert torch.equal(out[:, :4], att[:, :4]) and torch.equal(out[:, 4:], idd[:, 4:])


def test_activations_in_sane_range():
    enc = build_encoder(tiny=True, seed=0)
    s = mi.encoder_stats(enc, mi.smooth_images(4, seed=99))
    assert s["latents_saturated_frac"] < 0.02 and 0.1 < s["latents_std"] < 0.7
    assert 0.3 < s["struct_std"] < 3
    bn = [m for m in enc.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(float(m.running_var.std()) > 0 and float(m.running_mean.abs().max()) > 0 for m in bn)
    for kind in ("ftm", "injection"):
        sw = build_swapper(kind, tiny=True, seed=0)
        i = example_inputs("swapper", sw, 7)
        s = mi.swapper_stats(sw, i["idd"], i["att"])
        assert s["out_absmax"] < 10
        if kind == "ftm":
            assert s["sigmoid_saturated_frac"] < 0.01 and s["tanh_saturated_frac"] < 0.01
    gen = build_generator(64, tiny=True, seed=0)
    assert all(float(m.weight.detach()) != 0 for m in gen.modules() if isinstance(m, mm.NoiseInjection))
    assert all(float(m.bias.detach().abs().min()) > 0 for m in gen.modules() if isinstance(m, mm.FusedLeakyReLU))
    i = example_inputs("generator", gen, 7)
    s = mi.generator_stats(gen, i["struct"], i["latents"])
    assert 0.3 < s["image_std"] < 3 and s["image_absmax"] < 10


# --------------------------------------------------------------------------- #
# ONNX exports reproduce PyTorch
# --------------------------------------------------------------------------- #

TINY_CASES = [
    ("encoder", None, False, 17), ("encoder", None, True, 18),
    ("swapper", "ftm", False, 17), ("swapper", "injection", False, 17),
    ("swapper", "lcr", False, 17), ("swapper", "ftm", True, 18),
    ("swapper", "injection", True, 18), ("swapper", "lcr", True, 18),
    ("generator", None, False, 17), ("generator", None, True, 18),
    ("generator", None, False, 13),
]


def _build(kind, variant, tiny=True, size=None):
    if kind == "encoder":
        return build_encoder(tiny=tiny, seed=0)
    if kind == "swapper":
        return build_swapper(variant, tiny=tiny, seed=0)
    return build_generator(size, tiny=tiny, seed=0)


@pytest.mark.parametrize("kind,variant,dynamo,opset", TINY_CASES,
                         ids=[f"{k}-{v or ''}-{'dynamo' if d else 'ts'}-{o}" for k, v, d, o in TINY_CASES])
def test_tiny_export_matches_torch(tmp_path, kind, variant, dynamo, opset):
    model = _build(kind, variant)
    inputs = example_inputs(kind, model, 0, batch=2)
    golden = {"image": mi.smooth_images(3, seed=77)} if kind == "encoder" else None
    entry, tout, oout = export_and_check(
        model, kind, variant, inputs, tmp_path / "m.onnx", tmp_path / "d", tmp_path, "m",
        opset=opset, dynamo=dynamo, dynamic_batch=(kind == "encoder"), golden_inputs=golden)
    for o in entry["outputs"]:
        rng = max(o["range"], 1e-6)
        assert o["max_abs_diff"] <= REL_TOL * rng, o
    if kind == "encoder":
        assert entry["outputs"][0]["shape"] == [3, 18, 16]      # dynamic batch works
    m = onnx.load(str(tmp_path / "m.onnx"))
    ops = Counter(n.op_type for n in m.graph.node)
    names = ([i.name for i in m.graph.input], [o.name for o in m.graph.output])
    if kind == "encoder":
        assert names == (["image"], ["latents", "struct"])
        assert "BatchNormalization" not in ops               # folded
        modes = [a.s.decode() for n in m.graph.node if n.op_type == "Resize" for a in n.attribute
                 if a.name == "coordinate_transformation_mode"]
        assert modes == ["align_corners", "align_corners"]
    elif kind == "swapper":
        assert names == (["idd", "att"], ["swapped_latents"])
        if variant == "ftm":
            alphas = [a.f for n in m.graph.node if n.op_type == "LeakyRelu" for a in n.attribute]
            assert len(alphas) == 84 and set(alphas) == {1.0}
    else:
        assert names == (["struct", "latents"], ["image"])
        assert ops["ConvTranspose"] == 4 and ops["Conv"] == 18


@pytest.mark.parametrize("dynamo", [False, True], ids=["ts", "dynamo"])
def test_external_data_export(tmp_path, dynamo):
    gen = build_generator(32, tiny=True, seed=0)
    inputs = example_inputs("generator", gen, 0)
    entry, _, _ = export_and_check(gen, "generator", None, inputs, tmp_path / "g.onnx",
                                   tmp_path / "g", tmp_path, "g", opset=18 if dynamo else 17,
                                   dynamo=dynamo, external_data="always")
    assert entry["external_data"] == "g.onnx.data" and (tmp_path / "g.onnx.data").stat().st_size > 0
    assert entry["outputs"][0]["shape"] == [1, 3, 32, 32]
    assert entry["max_abs_diff"] <= REL_TOL * entry["outputs"][0]["range"]


# --------------------------------------------------------------------------- #
# Committed fixtures
# --------------------------------------------------------------------------- #

REQUIRED = {"encoder", "encoder-dynamo", "swapper-ftm", "swapper-injection", "swapper-lcr",
            "generator", "generator-dynamo", "generator-opset13"}


def _manifest():
    return json.loads((FIXTURES / "manifest.json").read_text())


def test_fixture_manifest_and_files():
    man = _manifest()
    names = {m["name"] for m in man["models"]}
    assert REQUIRED <= names
    total = 0
    for m in man["models"]:
        assert (FIXTURES / m["model"]).is_file()
        for i in m["inputs"]:
            a = np.load(FIXTURES / i["file"])
            assert a.dtype == np.float32 and list(a.shape) == i["shape"] and a.flags.c_contiguous
        for o in m["outputs"]:
            t, r = np.load(FIXTURES / o["torch"]), np.load(FIXTURES / o["ort"])
            assert t.dtype == r.dtype == np.float32 and list(t.shape) == o["shape"]
            d = float(np.abs(t - r).max())
            assert d == pytest.approx(o["max_abs_diff"], abs=1e-12)
            assert d <= REL_TOL * max(float(t.max() - t.min()), 1e-6)
    enc = next(m for m in man["models"] if m["name"] == "encoder")
    assert enc["inputs"][0]["shape"] == [2, 3, 256, 256] and enc["exporter"] == "torchscript"
    assert next(m for m in man["models"] if m["name"] == "generator-dynamo")["exporter"] == "dynamo"
    for f in FIXTURES.rglob("*"):
        if f.is_file() and not f.relative_to(FIXTURES).parts[0].startswith("ops-"):
            total += f.stat().st_size
    assert total < 20e6


def test_fixture_models_run_in_ort():
    from export import run_ort
    for m in _manifest()["models"]:
        feeds = {i["name"]: np.load(FIXTURES / i["file"]) for i in m["inputs"]}
        out = run_ort(FIXTURES / m["model"], feeds, threads=1)
        for o in m["outputs"]:
            np.testing.assert_allclose(out[o["name"]], np.load(FIXTURES / o["ort"]),
                                       atol=REL_TOL * max(o["range"], 1e-6))


def test_chain_post_processing_is_consistent():
    ch = _manifest()["chain"]
    f = {k: np.load(FIXTURES / v["file"]) for k, v in ch["files"].items()}
    G = ch["generator_size"]
    np.testing.assert_array_equal(f["encoder_input"][0], pp.preprocess(f["target_image"]))
    np.testing.assert_array_equal(f["mask_m0"], pp.face_map(f["target_labels"], G))
    np.testing.assert_array_equal(f["mask"], pp.soft_erosion(f["mask_m0"]))
    den = f["generated_denorm"]
    assert den.shape == (G, G, 3) and den.min() == 0 and den.max() == pytest.approx(255, abs=1e-3)
    np.testing.assert_allclose(f["blended"], pp.blend(den, f["target_resized"], f["mask"]), atol=1e-4)
    assert 0 <= f["mask"].min() and f["mask"].max() == 1.0
    assert f["blended_u8"].dtype == np.uint8
    for k, d in ch["max_abs_diff_torch_vs_ort"].items():
        assert d < (0.01 if k in ("generated_denorm", "blended") else 1e-3), (k, d)


def test_soft_erosion_kernel():
    k = pp.soft_erosion_kernel(17)
    assert k.shape == (17, 17) and k.sum() == pytest.approx(1.0, abs=1e-6)
    assert k[8, 8] == k.max() and k[0, 0] == 0.0


# --------------------------------------------------------------------------- #
# Full size (MEGAFS_FULL=1)
# --------------------------------------------------------------------------- #

full = pytest.mark.skipif(not FULL, reason="set MEGAFS_FULL=1 for full-size exports")


@full
@pytest.mark.parametrize("kind,variant", [("generator", None), ("swapper", "ftm"),
                                          ("swapper", "injection"), ("encoder", None)])
def test_full_export_matches_torch(tmp_path, kind, variant):
    model = _build(kind, variant, tiny=False, size=1024)
    inputs = example_inputs(kind, model, 0, batch=2)
    entry, _, _ = export_and_check(model, kind, variant, inputs, tmp_path / "m.onnx",
                                   tmp_path / "d", tmp_path, "m", opset=17,
                                   dynamic_batch=(kind == "encoder"))
    # The full encoder's latents come out of 5 stacked 4608-long stride-2 convs
    # per styleMapping; ORT differs by ~1.5e-4 (1.3e-4 of the range) there with
    # random weights (the notes report 1.9e-4 with the released weights).
    tol = 5e-4 if kind == "encoder" else REL_TOL
    for o in entry["outputs"]:
        assert o["max_abs_diff"] <= tol * max(o["range"], 1e-6), o
