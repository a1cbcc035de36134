"""scikit-learn's real 8x8 handwritten digits (1,797 images, 10 classes), embedded in the package.

Why it is the default dataset: it ships with scikit-learn, so ``harness bench`` runs anywhere
with no download. Pixel values 0..16 are scaled to 0..255 ``uint8``. There is no official test
split: a fixed, stratified 20 % of the images (seed 0, independent of any cell seed) is the test
split, so every run and every cell uses the same one.
"""
from __future__ import annotations

from harness import hookimpl
from harness.components import (
    DatasetRequest,
    DatasetSpec,
    ImageData,
    ImageDataset,
    Options,
)

TEST_FRACTION = 0.2
TEST_SPLIT_SEED = 0


class Digits(ImageDataset):
    def load(self, request: DatasetRequest) -> ImageData:
        import numpy as np
        import torch
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        bunch = load_digits()
        images = np.clip(bunch.images * 16.0, 0, 255).astype(np.uint8)[:, None, :, :]
        labels = bunch.target.astype(np.int64)
        train_idx, test_idx = train_test_split(
            np.arange(len(labels)), test_size=TEST_FRACTION, random_state=TEST_SPLIT_SEED, stratify=labels
        )
        if request.max_per_class is not None:
            keep = [i for c in range(10) for i in train_idx[labels[train_idx] == c][: request.max_per_class]]
            train_idx = np.sort(np.asarray(keep))
        return ImageData(
            train_images=torch.from_numpy(images[train_idx]),
            train_labels=torch.from_numpy(labels[train_idx]),
            test_images=torch.from_numpy(images[test_idx]),
            test_labels=torch.from_numpy(labels[test_idx]),
            class_names=[str(c) for c in bunch.target_names],
            augment=False,  # crops and flips change a digit's identity (6 vs 9); 8x8 leaves no room
        )


def _factory(options: Options) -> Digits:
    return Digits()


@hookimpl
def harness_datasets() -> list[DatasetSpec]:
    return [DatasetSpec(name="digits", description="scikit-learn 8x8 digits (embedded, 10 classes)", factory=_factory)]
