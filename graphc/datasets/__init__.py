"""Small datasets shipped with graphc so that `graphc demo` and the examples need no download.

`load_digits()`: the 1797 8x8 handwritten digits of the UCI "Optical Recognition of Handwritten
Digits" data set (E. Alpaydin, C. Kaynak; CC BY 4.0), exactly as scikit-learn bundles them
(sklearn.datasets.load_digits; the test suite checks that the two are identical). Pixel values
are 0..16. Stored with np.savez_compressed and read with allow_pickle=False.
"""
from __future__ import annotations

from importlib import resources

import numpy as np


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images of shape (1797, 8, 8) as float32 in [0, 16], labels of shape (1797,) as int32)."""
    with resources.files(__package__).joinpath("digits.npz").open("rb") as f:
        with np.load(f, allow_pickle=False) as data:
            return data["images"].astype(np.float32), data["labels"].astype(np.int32)


def train_test_split(images: np.ndarray, labels: np.ndarray, test_fraction: float = 0.25,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A seeded random split: (train images, train labels, test images, test labels)."""
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(round(len(labels) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return images[train], labels[train], images[test], labels[test]
