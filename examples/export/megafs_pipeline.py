"""Pre- and post-processing of the MegaFS swap (architecture notes, sections 0
and 5), in numpy / plain torch, as the reference for the fixtures' chain and
for run_swap.py.

Conventions: images are RGB, HWC, uint8 on input. Resizing is half-pixel-centre
bilinear without antialiasing (what OpenCV's default INTER_LINEAR computes for
float images, and torch's interpolate(mode="bilinear", align_corners=False)):
src = (dst + 0.5) * in/out - 0.5, clamped to [0, in-1], computed in float64.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

FACE_IDS = (1, 2, 3, 4, 5, 6, 10, 12, 13)   # skin, brows, eyes, eye_g, nose, lips
MOUTH_ID = 11


def resize_bilinear(a, out_h, out_w):
    """Half-pixel bilinear resize of a (H,W) or (H,W,C) array; float64 result."""
    a = np.asarray(a, dtype=np.float64)
    h, w = a.shape[:2]
    if (h, w) == (out_h, out_w):
        return a.copy()

    def axis(n_in, n_out):
        s = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        s = np.clip(s, 0, n_in - 1)
        i0 = np.floor(s).astype(np.int64)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, s - i0

    y0, y1, fy = axis(h, out_h)
    x0, x1, fx = axis(w, out_w)
    if a.ndim == 3:
        fy = fy[:, None, None]
        fx = fx[None, :, None]
    else:
        fy = fy[:, None]
        fx = fx[None, :]
    top = a[y0][:, x0] * (1 - fx) + a[y0][:, x1] * fx
    bot = a[y1][:, x0] * (1 - fx) + a[y1][:, x1] * fx
    return top * (1 - fy) + bot * fy


def preprocess(img_u8, size=256):
    """uint8 HWC RGB -> float32 (3,size,size) in [-1,1]: resize, /255, (x-0.5)/0.5."""
    x = resize_bilinear(img_u8, size, size) / 255.0
    x = (x - 0.5) / 0.5
    return np.ascontiguousarray(x.transpose(2, 0, 1)).astype(np.float32)


def denorm(img):
    """Released post-processing: min-max normalise one generated image (C,H,W)
    or (1,C,H,W) to [0,255] over all its values, no clamp; returns float32 HWC."""
    x = np.asarray(img, dtype=np.float32)
    if x.ndim == 4:
        x = x[0]
    lo, hi = x.min(), x.max()
    y = (x - lo) / (hi - lo) * np.float32(255.0)
    return np.ascontiguousarray(y.transpose(1, 2, 0)).astype(np.float32)


def face_map(labels, size):
    """m0: (face + mouth) as 0/1 from CelebAMask-HQ labels, resized (bilinear)
    to size x size. float32."""
    lab = np.asarray(labels)
    face = np.isin(lab, FACE_IDS).astype(np.float64)
    mouth = (lab == MOUTH_ID).astype(np.float64)
    # the released code resizes the two 0/255 maps, then adds them (/255):
    # linear, so the same as resizing their sum
    m0 = resize_bilinear(face, size, size) + resize_bilinear(mouth, size, size)
    return m0.astype(np.float32)


def soft_erosion_kernel(kernel_size=17):
    r = kernel_size // 2
    yy, xx = np.meshgrid(np.arange(kernel_size, dtype=np.float32),
                         np.arange(kernel_size, dtype=np.float32), indexing="ij")
    dist = np.sqrt((xx - r) ** 2 + (yy - r) ** 2)
    k = dist.max() - dist
    return (k / k.sum()).astype(np.float32)


def soft_erosion(m0, kernel_size=17, threshold=0.9, iterations=7):
    """SoftErosion of the released code (float32, zero padding):
    repeat iterations-1 times m = min(m, conv(m, K)); m = conv(m, K);
    m >= threshold -> 1, elsewhere m / max(m below threshold)."""
    k = torch.from_numpy(soft_erosion_kernel(kernel_size))[None, None]
    x = torch.from_numpy(np.asarray(m0, dtype=np.float32))[None, None]
    pad = kernel_size // 2
    for _ in range(iterations - 1):
        x = torch.minimum(x, F.conv2d(x, k, padding=pad))
    x = F.conv2d(x, k, padding=pad)
    mask = x >= threshold
    x = x.clone()
    x[mask] = 1.0
    if (~mask).any():
        x[~mask] = x[~mask] / x[~mask].max()
    return x[0, 0].numpy().astype(np.float32)


def blend(swapped_hwc, target_hwc, mask):
    m = np.asarray(mask, dtype=np.float32)[..., None]
    return (np.asarray(swapped_hwc, np.float32) * m
            + np.asarray(target_hwc, np.float32) * (np.float32(1) - m)).astype(np.float32)


def to_u8(img):
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
