#!/usr/bin/python3
"""Writes the generated data sets of tests/bench/pruning_nonimage.sh as .npz files.

Run with Debian's python3 and python3-numpy: `/usr/bin/python3 make_nonimage_datasets.py <dir>`.
  signals.npz   3-channel signals of length 128, 6 classes: class k is a tone of 3(k + 1) cycles
                per window and its second harmonic, with a random phase and amplitude per channel
                and sample, under Gaussian noise (sigma 2.5, about 5 times the tone's power).
  features.npz  20-dimensional feature vectors, 6 classes: each class is a mixture of three
                Gaussian clusters whose centres overlap those of other classes, so that a linear
                model is not enough.
  images8.npz   grey 8x8 images stored as uint8 [N, 1, 8, 8], 6 classes: a
                horizontal bar, a vertical bar, a diagonal, an anti-diagonal, a square outline
                or a cross, shifted by up to one pixel, at a random brightness, under noise.
  images32.npz  colour 32x32 images stored as uint8 [N, 3, 32, 32], 6 classes: the same patterns
                drawn 3 pixels per cell, shifted by up to 4 pixels, each in a random colour on the
                opposite colour, under noise.
16,000 training samples (the toolkit takes 5,000 of them for validation) and 2,000 test samples
each, float32 unless said otherwise; the seeds are fixed (the images have a generator of their
own, so adding them left the other two data sets unchanged).
"""
import os
import sys

import numpy as np

rng = np.random.default_rng(1919)
CLASSES = 6


def signals(n):
    y = rng.integers(0, CLASSES, n)
    t = np.arange(128, dtype=np.float64) / 128.0
    x = np.empty((n, 3, 128), dtype=np.float64)
    for c in range(3):
        phase = rng.uniform(0, 2 * np.pi, (n, 1))
        amp = rng.uniform(0.6, 1.4, (n, 1))
        f1 = (3 * (y + 1))[:, None]
        f2 = 2 * f1
        x[:, c, :] = amp * np.sin(2 * np.pi * f1 * t + phase) + \
            0.5 * amp * np.sin(2 * np.pi * f2 * t + 2 * phase + c)
    x += rng.normal(0, 2.5, x.shape)
    return x.astype(np.float32), y.astype(np.int64)


CENTRES = rng.normal(0, 1.0, (CLASSES, 3, 20))


def features(n):
    y = rng.integers(0, CLASSES, n)
    which = rng.integers(0, 3, n)
    x = CENTRES[y, which] + rng.normal(0, 0.75, (n, 20))
    return x.astype(np.float32), y.astype(np.int64)


IMAGE_RNG = np.random.default_rng(2024)


def pattern(k):
    p = np.zeros((10, 10))
    if k == 0:
        p[4:6, 1:9] = 1
    elif k == 1:
        p[1:9, 4:6] = 1
    elif k == 2:
        np.fill_diagonal(p[1:9, 1:9], 1)
    elif k == 3:
        np.fill_diagonal(np.fliplr(p[1:9, 1:9]), 1)
    elif k == 4:
        p[2, 2:8] = p[7, 2:8] = p[2:8, 2] = p[2:8, 7] = 1
    else:
        p[4:6, 2:8] = p[2:8, 4:6] = 1
    return p


PATTERNS = [pattern(k) for k in range(CLASSES)]


def images8(n):
    y = IMAGE_RNG.integers(0, CLASSES, n)
    x = np.empty((n, 8, 8))
    for i in range(n):
        dy, dx = IMAGE_RNG.integers(0, 3, 2)
        x[i] = PATTERNS[y[i]][dy:dy + 8, dx:dx + 8] * IMAGE_RNG.uniform(50, 150)
    x += IMAGE_RNG.normal(60, 80, x.shape)
    return np.clip(x, 0, 255).astype(np.uint8)[:, None], y.astype(np.int64)


COLOUR_RNG = np.random.default_rng(2025)


def images32(n):
    y = COLOUR_RNG.integers(0, CLASSES, n)
    x = np.empty((n, 3, 32, 32))
    for i in range(n):
        big = np.kron(PATTERNS[y[i]], np.ones((3, 3)))  # 30x30
        canvas = np.zeros((40, 40))
        dy, dx = COLOUR_RNG.integers(0, 9, 2)
        canvas[dy + 1:dy + 31, dx + 1:dx + 31] = big
        shape = canvas[4:36, 4:36]
        fg = COLOUR_RNG.uniform(0, 255, 3)
        bg = 255 - fg  # a colour of its own, never the shape's
        x[i] = shape[None] * fg[:, None, None] + (1 - shape[None]) * bg[:, None, None]
    x += COLOUR_RNG.normal(0, 60, x.shape)
    return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.int64)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, make in (("signals", signals), ("features", features), ("images8", images8),
                       ("images32", images32)):
        x_train, y_train = make(16000)
        x_test, y_test = make(2000)
        np.savez(os.path.join(out, name + ".npz"), x_train=x_train, y_train=y_train,
                 x_test=x_test, y_test=y_test,
                 class_names=np.array(["class%d" % k for k in range(CLASSES)]))
        print(name, x_train.shape, x_test.shape)


if __name__ == "__main__":
    main()
