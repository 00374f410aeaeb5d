#!/usr/bin/env python3
"""Make the demo inputs in examples/samples/ (deterministic):

* astronaut_face.png        -- 256x256 RGB crop of scikit-image's `astronaut`
                               (Eileen Collins, NASA, public domain): the target.
* astronaut_face_labels.png -- 256x256 uint8 face-parsing labels for it, in
                               CelebAMask-HQ numbering, drawn here from ellipses
                               fitted by eye (not a parser's output).
* synthetic_face.png        -- 256x256 RGB frontal face drawn here procedurally
                               from ellipses and gradients (no photograph): the
                               source.
* synthetic_face_labels.png -- its labels, from the same geometry.

  python make_samples.py [-o examples/samples] [--preview /tmp/preview.png]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SIZE = 256
SS = 4  # supersampling for the drawn face

# CelebAMask-HQ label numbering
BACKGROUND, SKIN, L_BROW, R_BROW, L_EYE, R_EYE, EYE_G, L_EAR, R_EAR, EAR_R, NOSE, MOUTH, \
    U_LIP, L_LIP, NECK, NECK_L, CLOTH, HAIR, HAT = range(19)


def ellipse(h, w, cy, cx, ry, rx, angle=0.0, scale=1.0):
    """Boolean mask of an ellipse; geometry given in 256-px units, grid of h x w."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    y = (y + 0.5) / scale - 0.5
    x = (x + 0.5) / scale - 0.5
    c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
    dy, dx = y - cy, x - cx
    u = dx * c + dy * s
    v = -dx * s + dy * c
    return (u / rx) ** 2 + (v / ry) ** 2 <= 1.0


def paint(labels, shapes, scale=1.0):
    h, w = labels.shape
    for lab, (cy, cx, ry, rx, ang) in shapes:
        labels[ellipse(h, w, cy, cx, ry, rx, ang, scale)] = lab
    return labels


# ---- the astronaut: crop and hand-fitted label ellipses ------------------- #
ASTRO_CROP = (8, 232, 110, 334)   # rows y0:y1, cols x0:x1 of the 512x512 image (224 px)


def _a(cy, cx, ry, rx, ang=0.0):
    """ellipse given in 224-px crop coordinates -> 256-px coordinates"""
    k = SIZE / 224.0
    return (cy * k, cx * k, ry * k, rx * k, ang)


ASTRO_SHAPES = [
    (CLOTH, _a(215, 112, 55, 130)),
    (NECK, _a(166, 113, 18, 24)),
    (HAIR, _a(70, 112, 66, 80)),
    (SKIN, _a(108, 112, 57, 47)),
    (L_EAR, _a(110, 62, 13, 6)),
    (R_EAR, _a(110, 164, 13, 6)),
    (HAIR, _a(52, 114, 22, 50, -4)),       # fringe over the forehead
    (L_BROW, _a(82, 89, 3.5, 12, 8)),
    (R_BROW, _a(81, 136, 3.5, 12, -8)),
    (L_EYE, _a(94, 91, 4, 9)),
    (R_EYE, _a(94, 136, 4, 9)),
    (NOSE, _a(113, 113, 13, 9)),
    (U_LIP, _a(131, 113, 5, 21)),
    (L_LIP, _a(139, 113, 5, 18)),
    (MOUTH, _a(135, 113, 3, 17)),
]


def astronaut_face():
    from skimage import data
    from skimage.transform import resize
    y0, y1, x0, x1 = ASTRO_CROP
    crop = data.astronaut()[y0:y1, x0:x1]
    img = resize(crop, (SIZE, SIZE), order=1, anti_aliasing=False, preserve_range=True)
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    labels = paint(np.zeros((SIZE, SIZE), np.uint8), ASTRO_SHAPES)
    return img, labels


# ---- the synthetic face ---------------------------------------------------- #
SYN_SHAPES = [
    (CLOTH, (262, 128, 60, 150, 0)),
    (NECK, (200, 128, 40, 30, 0)),
    (HAIR, (102, 128, 92, 84, 0)),
    (L_EAR, (128, 72, 16, 9, 0)),
    (R_EAR, (128, 184, 16, 9, 0)),
    (SKIN, (130, 128, 66, 54, 0)),
    (HAIR, (64, 128, 24, 60, 0)),
    (L_BROW, (100, 103, 4, 14, 6)),
    (R_BROW, (100, 153, 4, 14, -6)),
    (L_EYE, (114, 104, 5, 11, 0)),
    (R_EYE, (114, 152, 5, 11, 0)),
    (NOSE, (138, 128, 15, 9, 0)),
    (U_LIP, (162, 128, 4.5, 18, 0)),
    (L_LIP, (170, 128, 5.5, 16, 0)),
    (MOUTH, (166, 128, 2, 15, 0)),
]

COLOURS = {
    CLOTH: (46, 84, 140), NECK: (205, 150, 120), HAIR: (70, 42, 26), L_EAR: (214, 160, 128),
    R_EAR: (214, 160, 128), SKIN: (226, 178, 146), L_BROW: (60, 38, 24), R_BROW: (60, 38, 24),
    L_EYE: (240, 240, 236), R_EYE: (240, 240, 236), NOSE: (216, 162, 130), U_LIP: (176, 82, 86),
    L_LIP: (190, 96, 98), MOUTH: (90, 30, 36),
}


def synthetic_face(seed=7):
    h = w = SIZE * SS
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64) / SS
    img = np.zeros((h, w, 3))
    # background: soft vertical gradient
    t = (y / SIZE)[..., None]
    img[:] = (1 - t) * np.array([200, 210, 222]) + t * np.array([150, 160, 178])
    lab = np.zeros((h, w), np.uint8)
    for lbl, (cy, cx, ry, rx, ang) in SYN_SHAPES:
        m = ellipse(h, w, cy, cx, ry, rx, ang, SS)
        lab[m] = lbl
        img[m] = COLOURS[lbl]
    # shading on skin-like regions: darker towards the ellipse border
    skin = np.isin(lab, [SKIN, NOSE, L_EAR, R_EAR, NECK])
    r = np.sqrt(((y - 130) / 70) ** 2 + ((x - 128) / 58) ** 2)
    img[skin] *= (1.05 - 0.25 * np.clip(r[skin], 0, 1.2) ** 2)[:, None]
    # nose shadow and tip highlight
    nose_sh = ellipse(h, w, 146, 128, 4, 10, 0, SS)
    img[nose_sh] *= 0.82
    # irises and pupils, eye highlights
    for cx in (104, 152):
        img[ellipse(h, w, 114, cx, 5, 5, 0, SS)] = (84, 110, 70)
        img[ellipse(h, w, 114, cx, 2.4, 2.4, 0, SS)] = (18, 14, 12)
        img[ellipse(h, w, 112.5, cx + 1.5, 1.0, 1.0, 0, SS)] = (250, 250, 250)
    # hair strands: darker streaks
    hair = lab == HAIR
    streak = 0.85 + 0.15 * np.sin(x * 0.9 + 3 * np.sin(y * 0.05))
    img[hair] *= streak[hair][:, None]
    # downsample (area average), mild noise
    img = img.reshape(SIZE, SS, SIZE, SS, 3).mean(axis=(1, 3))
    img += rng.normal(0, 2.0, img.shape)
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    labels = paint(np.zeros((SIZE, SIZE), np.uint8), SYN_SHAPES)
    return img, labels


def label_preview(img, labels):
    rng = np.random.default_rng(0)
    pal = rng.integers(0, 255, (19, 3))
    pal[0] = 0
    over = (0.55 * img + 0.45 * pal[labels]).astype(np.uint8)
    return np.concatenate([img, over], axis=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", "--output", default=str(Path(__file__).resolve().parents[1] / "samples"))
    ap.add_argument("--preview", default=None, help="write a label overlay preview PNG here")
    a = ap.parse_args()
    from PIL import Image
    out = Path(a.output)
    out.mkdir(parents=True, exist_ok=True)
    ai, al = astronaut_face()
    si, sl = synthetic_face()
    Image.fromarray(ai).save(out / "astronaut_face.png", optimize=True)
    Image.fromarray(al).save(out / "astronaut_face_labels.png", optimize=True)
    Image.fromarray(si).save(out / "synthetic_face.png", optimize=True)
    Image.fromarray(sl).save(out / "synthetic_face_labels.png", optimize=True)
    if a.preview:
        Image.fromarray(np.concatenate([label_preview(ai, al), label_preview(si, sl)], axis=0)).save(a.preview)
    for f in sorted(out.iterdir()):
        print(f"{f}  {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
