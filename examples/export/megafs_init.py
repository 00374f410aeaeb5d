"""Seeded random weights for the MegaFS networks whose activations stay in a
sane range (used when no released checkpoint is given, and for the fixtures).

* Encoder: convolution weights random, every BatchNorm gets a random affine
  (gamma in [0.5,1.5], beta ~ N(0,0.2); the last BN of each residual branch
  gamma in [0.2,0.5]; the last BN of each styleMapping gamma in [0.3,0.6])
  and *calibrated, non-trivial running statistics*: one
  train-mode pass with momentum 1 over a batch of smooth random images sets
  running_mean / running_var to that batch's statistics. The latents' tanh is
  then not saturated and ``struct`` is roughly unit scale.
* Swapper: default Linear init (nonzero biases); ftm ``weight`` ~ N(0,1);
  injection BatchNorm1d gets random running statistics.
* Generator: rosinality init (randn conv / modulation weights, modulation bias
  1) plus nonzero noise strengths, activation biases and ToRGB biases; the
  ToRGB weights and biases are then rescaled together so that the image has
  unit standard deviation over 4 probe inputs (the image is linear in them).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from megafs_models import Encoder, Swapper, Generator, ToRGB, Bottleneck, StyleMapping, N_LATENTS


def smooth_images(n, size=256, seed=0):
    """Smooth random 'images' in [-1,1]: low-frequency colour blobs + mild noise."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 6, 6, generator=g) * 2 - 1
    img = torch.nn.functional.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)
    mid = torch.rand(n, 3, 24, 24, generator=g) * 2 - 1
    img = img + 0.3 * torch.nn.functional.interpolate(mid, size=(size, size), mode="bilinear",
                                                      align_corners=False)
    img = img + 0.05 * torch.randn(n, 3, size, size, generator=g)
    return img.clamp(-1, 1)


def random_latents(n, dim, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.tanh(torch.randn(n, N_LATENTS, dim, generator=g))


@torch.no_grad()
def init_encoder(enc: Encoder, seed=0, calib_batch=8):
    g = torch.Generator().manual_seed(seed)
    for m in enc.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
    for m in enc.modules():
        if isinstance(m, Bottleneck):
            m.bn3.weight.copy_(torch.rand(m.bn3.weight.shape, generator=g) * 0.3 + 0.2)
        elif isinstance(m, StyleMapping):
            # last BN before LeakyReLU -> tanh: keep tanh away from saturation
            last_bn = m.convs[-2]
            last_bn.weight.copy_(torch.rand(last_bn.weight.shape, generator=g) * 0.3 + 0.3)
            last_bn.bias.copy_(torch.randn(last_bn.bias.shape, generator=g) * 0.1)
    # calibrate running statistics on a batch of smooth random images
    bns = [m for m in enc.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = 1.0
    enc.train()
    enc(smooth_images(calib_batch, enc.cfg.image_size, seed=seed + 1000))
    enc.eval()
    for m in bns:
        m.momentum = 0.1
        m.num_batches_tracked.fill_(1000 + int(torch.randint(0, 1000, (1,), generator=g)))
        # keep the variance away from zero (1x1 stages see few samples)
        m.running_var.clamp_(min=1e-3)
    return enc


@torch.no_grad()
def init_swapper(sw: Swapper, seed=0):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    for m in sw.modules():
        if isinstance(m, nn.Linear):
            m.reset_parameters()
        elif isinstance(m, nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 0.3 + 0.2)
            m.num_batches_tracked.fill_(1234)
    if sw.kind == "ftm":
        sw.weight.copy_(torch.randn(sw.weight.shape, generator=g))
    sw.eval()
    return sw


@torch.no_grad()
def init_generator(gen: Generator, seed=0):
    g = torch.Generator().manual_seed(seed)
    for name, p in gen.named_parameters():
        if name.endswith("modulation.bias"):
            p.fill_(1.0)
        elif name.endswith("noise.weight"):
            p.copy_(torch.randn(p.shape, generator=g) * 0.1 + 0.1)
        elif name.endswith("activate.bias") or (name.endswith(".bias") and p.ndim == 4):
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        else:   # conv weights, modulation weights
            p.copy_(torch.randn(p.shape, generator=g))
    for name, b in gen.noises.named_buffers():
        b.copy_(torch.randn(b.shape, generator=g))
    gen.eval()
    # rescale ToRGB so the image has unit std over a batch of probe inputs
    c4 = gen.cfg.channels[4]
    struct = torch.randn(4, c4, 4, 4, generator=g)
    lat = torch.tanh(torch.randn(4, N_LATENTS, gen.cfg.style_dim, generator=g))
    std = float(gen(struct, lat).std())
    for m in gen.modules():
        if isinstance(m, ToRGB):
            m.conv.weight.mul_(1.0 / std)
            m.bias.mul_(1.0 / std)
    return gen


# --------------------------------------------------------------------------- #
# Numeric sanity statistics (used by export.py --check and the tests)
# --------------------------------------------------------------------------- #

def _saturation_hooks(model):
    stats = {"sigmoid": [], "tanh": []}

    def hook(kind):
        def f(_m, _i, out):
            stats[kind].append(out.detach().flatten())
        return f
    hs = []
    for m in model.modules():
        if isinstance(m, nn.Sigmoid):
            hs.append(m.register_forward_hook(hook("sigmoid")))
        elif isinstance(m, nn.Tanh):
            hs.append(m.register_forward_hook(hook("tanh")))
    return stats, hs


@torch.no_grad()
def encoder_stats(enc, image):
    lat, struct = enc(image)
    return {"latents_absmax": float(lat.abs().max()),
            "latents_std": float(lat.std()),
            "latents_saturated_frac": float((lat.abs() > 0.99).float().mean()),
            "struct_std": float(struct.std()),
            "struct_absmax": float(struct.abs().max())}


@torch.no_grad()
def swapper_stats(sw, idd, att):
    stats, hs = _saturation_hooks(sw)
    out = sw(idd, att)
    for h in hs:
        h.remove()
    r = {"out_absmax": float(out.abs().max()), "out_std": float(out.std())}
    if stats["sigmoid"]:
        s = torch.cat(stats["sigmoid"])
        r["sigmoid_saturated_frac"] = float(((s < 0.01) | (s > 0.99)).float().mean())
        r["sigmoid_min"], r["sigmoid_max"] = float(s.min()), float(s.max())
    if stats["tanh"]:
        t = torch.cat(stats["tanh"])
        r["tanh_saturated_frac"] = float((t.abs() > 0.99).float().mean())
    return r


@torch.no_grad()
def generator_stats(gen, struct, latents):
    img = gen(struct, latents)
    return {"image_std": float(img.std()), "image_mean": float(img.mean()),
            "image_absmax": float(img.abs().max())}
