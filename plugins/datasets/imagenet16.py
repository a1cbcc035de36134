"""ImageNet16-120: NAS-Bench-201's downsampled ImageNet (16x16), restricted to labels 1..120.

Files (the "Downsampled ImageNet 16x16" pickles of Chrabaszcz et al., 2017, as NAS-Bench-201 uses
them), looked up in ``--data-dir``/``ImageNet16`` first (NAS-Bench-201's folder name), then in
``--data-dir`` itself::

    train_data_batch_1 .. train_data_batch_10   dict: data (N x 768 uint8, channel-major), labels
    val_data                                     same keys; serves as the test split

Why this format and this subset: NAS-Bench-201's tabular accuracies for "ImageNet16-120" were
measured on exactly these files, keeping the images whose 1-based label is in 1..120 and training
on label - 1; reading the same files the same way keeps our trained results comparable with the
table. ``--imagenet16-classes K`` keeps labels 1..K instead (default 120; K <= 1000).

The pickles carry no class names, so a class is named by its original 1-based label ("1".."K").
There is no official download link (the files are distributed by hand), so ``--download`` only
says where to get them.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from harness_plugins.datasets._pickles import load_pickle
from harness_plugins.datasets._select import (
    check_labels,
    first_per_class,
    flat_rows_to_images,
    labels_array,
)

from harness import hookimpl
from harness.components import (
    DatasetRequest,
    DatasetSpec,
    ImageData,
    ImageDataset,
    Options,
)
from harness.errors import DataError, UsageError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ImageNet16", "find_folder", "harness_addoption", "harness_datasets"]

FOLDER = "ImageNet16"
TRAIN_FILES = tuple(f"train_data_batch_{i}" for i in range(1, 11))
TEST_FILE = "val_data"
IMAGE_SIZE = 16
ALL_CLASSES = 1000
DEFAULT_CLASSES = 120


class ImageNet16(ImageDataset):
    def __init__(self, num_classes: int = DEFAULT_CLASSES) -> None:
        if not 1 <= num_classes <= ALL_CLASSES:
            raise UsageError(f"--imagenet16-classes must be in 1..{ALL_CLASSES}, got {num_classes}")
        self.num_classes = num_classes

    def load(self, request: DatasetRequest) -> ImageData:
        import numpy as np
        import torch

        root = find_folder(Path(request.data_dir))
        fix = (f"put the Downsampled ImageNet 16x16 pickles (train_data_batch_1..10, val_data) in "
               f"{Path(request.data_dir) / FOLDER}")
        if request.download and not (root / TEST_FILE).is_file():
            raise DataError(f"ImageNet16 cannot be downloaded automatically (no public direct link); {fix}")
        if not root.is_dir():
            raise DataError(f"missing dataset folder {root}; {fix}")
        class_names = [str(label) for label in range(1, self.num_classes + 1)]

        parts = [self._read(root / name, fix) for name in TRAIN_FILES]
        train_images = np.concatenate([images for images, _ in parts])
        train_labels = np.concatenate([labels for _, labels in parts])
        check_labels(train_labels, self.num_classes, root, fix, class_names=class_names)
        if request.max_per_class is not None:
            keep = first_per_class(train_labels, request.max_per_class)
            train_images, train_labels = train_images[keep], train_labels[keep]
        test_images, test_labels = self._read(root / TEST_FILE, fix)
        return ImageData(
            train_images=torch.from_numpy(train_images),
            train_labels=torch.from_numpy(train_labels),
            test_images=torch.from_numpy(test_images),
            test_labels=torch.from_numpy(test_labels),
            class_names=class_names,
        )

    def _read(self, path: Path, fix: str) -> tuple[np.ndarray, np.ndarray]:
        """One batch file, reduced (right away, to bound memory: the full set is 1 GB) to labels
        1..K, relabelled 0..K-1."""
        entry = load_pickle(path, fix, ("data", "labels"))
        images = flat_rows_to_images(entry["data"], IMAGE_SIZE, path, fix)
        labels = labels_array(entry["labels"], len(images), "labels", path, fix)
        bad = (labels < 1) | (labels > ALL_CLASSES)
        if bad.any():  # labels are 1-based: a 0 or a label above 1000 means a wrong or corrupt file
            raise DataError(f"label {int(labels[bad][0])} out of range 1..{ALL_CLASSES} in {path}; {fix}")
        kept = labels <= self.num_classes
        return images[kept], labels[kept] - 1


def find_folder(data_dir: Path) -> Path:
    """``data_dir/ImageNet16`` if it exists, else ``data_dir`` itself if it holds the files."""
    nested = data_dir / FOLDER
    if nested.is_dir() or not (data_dir / TEST_FILE).exists():
        return nested
    return data_dir


def _factory(options: Options) -> ImageNet16:
    return ImageNet16(num_classes=int(options.get("imagenet16_classes", DEFAULT_CLASSES)))


@hookimpl
def harness_datasets() -> list[DatasetSpec]:
    return [DatasetSpec(name="imagenet16-120", factory=_factory,
                        description="NAS-Bench-201's ImageNet16-120: downsampled ImageNet 16x16, labels 1..120")]


@hookimpl
def harness_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dataset imagenet16-120")
    group.add_argument("--imagenet16-classes", type=int, default=DEFAULT_CLASSES, metavar="K",
                       help="keep the images with 1-based label 1..K (default: %(default)s, as NAS-Bench-201)")
