#!/usr/bin/python3
"""Writes the two non-image data sets of tests/bench/pruning_nonimage.sh as .npz files.

Run with Debian's python3 and python3-numpy: `/usr/bin/python3 make_nonimage_datasets.py <dir>`.
  signals.npz   3-channel signals of length 128, 6 classes: class k is a tone of 3(k + 1) cycles
                per window and its second harmonic, with a random phase and amplitude per channel
                and sample, under Gaussian noise (sigma 2.5, about 5 times the tone's power).
  features.npz  20-dimensional feature vectors, 6 classes: each class is a mixture of three
                Gaussian clusters whose centres overlap those of other classes, so that a linear
                model is not enough.
16,000 training samples (the toolkit takes 5,000 of them for validation) and 2,000 test samples
each, float32; the seed is fixed.
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


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, make in (("signals", signals), ("features", features)):
        x_train, y_train = make(16000)
        x_test, y_test = make(2000)
        np.savez(os.path.join(out, name + ".npz"), x_train=x_train, y_train=y_train,
                 x_test=x_test, y_test=y_test,
                 class_names=np.array(["class%d" % k for k in range(CLASSES)]))
        print(name, x_train.shape, x_test.shape)


if __name__ == "__main__":
    main()
