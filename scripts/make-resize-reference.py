#!/usr/bin/python3
"""Reference resizes for test/unit/resize-reference.test.ts, made by the libraries models are trained with.

Writes test/fixtures/resize/: source.png (a 240x180 RGB test picture: gradients, rings, hard-edged
shapes, fine noise) and, for each reference, <library>-<method>[-grey]-<W>x<H>.png. The test runs
the daemon's own resize (src/inference/preprocess.ts) on source.png and compares. Committed
(small PNGs), so CI needs neither OpenCV nor PIL; run again after changing the picture:

    apt-get install -y python3-opencv python3-numpy python3-pil
    /usr/bin/python3 scripts/make-resize-reference.py
"""
import os

import cv2
import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'resize')
W, H = 240, 180


def picture() -> np.ndarray:
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    r = 127 + 100 * np.sin(np.hypot(x - 150, y - 70) / 5.0)  # rings: fine detail that aliases
    g = 255 * x / W  # a gradient
    b = 60 + 120 * (((x // 16) + (y // 16)) % 2)  # a checkerboard: hard edges
    img = np.stack([r, g, b], axis=-1)
    img[30:90, 20:80] = [250, 40, 20]  # a hard-edged block
    rng = np.random.default_rng(7)
    img += rng.normal(0, 6, img.shape)  # sensor noise
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def save(name: str, arr: np.ndarray) -> None:
    Image.fromarray(arr).save(os.path.join(OUT, name + '.png'), optimize=True)


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    src = picture()
    save('source', src)
    grey = cv2.cvtColor(src, cv2.COLOR_RGB2GRAY)
    # Downscales by 3.75 and 1.6 (not whole numbers), and an upscale by 4/3.
    for w, h in [(64, 48), (150, 112), (320, 240)]:
        if w < W:  # the upscale only in grey for area (a colour one is 130 kB of noise)
            save(f'opencv-area-{w}x{h}', cv2.resize(src, (w, h), interpolation=cv2.INTER_AREA))
        save(f'opencv-linear-{w}x{h}', cv2.resize(src, (w, h), interpolation=cv2.INTER_LINEAR))
        save(f'opencv-area-grey-{w}x{h}', cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA))
        if w > W:
            continue
        pil = Image.fromarray(src)
        save(f'pil-bilinear-{w}x{h}', np.asarray(pil.resize((w, h), Image.BILINEAR)))
        save(f'pil-bicubic-{w}x{h}', np.asarray(pil.resize((w, h), Image.BICUBIC)))
        save(f'pil-nearest-{w}x{h}', np.asarray(pil.resize((w, h), Image.NEAREST)))


if __name__ == '__main__':
    main()
