"""Any image-classification tree in torchvision's ImageFolder layout, with a class subset and a
target resolution.

Layout: ``--imagefolder-root`` (default ``imagefolder``; relative paths are taken inside
``--data-dir``) holds::

    train/<class>/**/*.{jpg,jpeg,png,bmp,webp,ppm,tif,tiff}
    test/<class>/...     the test split; if there is no test/, val/ is used instead

Why: it is the common denominator of image datasets (ImageNet, its subsets, most Kaggle sets), so
this one plugin covers every dataset without a dedicated reader.

- Classes: the folder names under ``train/``, sorted; labels are their indices, as with
  torchvision's ``ImageFolder``. ``--imagefolder-classes N`` keeps the first N of them;
  ``--imagefolder-classes FILE`` keeps the classes listed in FILE (one name a line, ``#`` starts a
  comment; the labels still follow sorted order). Every kept class needs at least one training
  image; test folders of classes not kept are ignored.
- Resolution: ``--imagefolder-resolution R`` (default 32): shorter side resized to R, then a
  centred R x R crop (torchvision's ``Resize(R)`` + ``CenterCrop(R)``), so no image is distorted.
- Files are decoded once and cached in ``<root>/.harness-cache/`` (see
  :mod:`harness_plugins.datasets._images`). There is nothing to download.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from harness_plugins.datasets._images import list_images, load_images
from harness_plugins.datasets._select import first_per_class

from harness import hookimpl
from harness.components import (
    DatasetRequest,
    DatasetSpec,
    ImageData,
    ImageDataset,
    Options,
)
from harness.errors import DataError, UsageError

__all__ = ["ImageFolder", "harness_addoption", "harness_datasets"]

log = logging.getLogger(__name__)

DEFAULT_ROOT = "imagefolder"
DEFAULT_CLASSES = ""  # all
DEFAULT_RESOLUTION = 32
TEST_SPLITS = ("test", "val")  # the first that exists is the test split


class ImageFolder(ImageDataset):
    def __init__(self, root: str = DEFAULT_ROOT, classes: str = DEFAULT_CLASSES,
                 resolution: int = DEFAULT_RESOLUTION) -> None:
        if resolution < 1:
            raise UsageError(f"--imagefolder-resolution must be a positive number of pixels, got {resolution}")
        self.root = root
        self.classes = classes.strip()
        self.resolution = resolution

    def load(self, request: DatasetRequest) -> ImageData:
        import numpy as np
        import torch

        root = Path(request.data_dir) / self.root  # an absolute root replaces data_dir
        fix = "give --imagefolder-root a folder with train/<class>/ and test/<class>/ (or val/<class>/)"
        if not root.is_dir():
            raise DataError(f"missing dataset folder {root}; {fix}")
        train = root / "train"
        if not train.is_dir():
            raise DataError(f"missing dataset folder {train}; {fix}")
        test = next((root / s for s in TEST_SPLITS if (root / s).is_dir()), None)
        if test is None:
            raise DataError(f"missing test split: neither {root / 'test'} nor {root / 'val'} exists; {fix}")

        class_names = self._select_classes(sorted(p.name for p in train.iterdir() if p.is_dir()), train)
        train_files, train_labels = _split_files(train, class_names, require_all=True, fix=fix)
        keep = first_per_class(np.asarray(train_labels, dtype=np.int64), request.max_per_class)
        train_images, train_labels_arr = load_images(
            [train_files[i] for i in keep], [train_labels[i] for i in keep],
            resolution=self.resolution, base=root, name=f"train-{self.resolution}px")
        test_files, test_labels = _split_files(test, class_names, require_all=False, fix=fix)
        if not test_files:
            raise DataError(f"no test image of the selected classes in {test}; {fix}")
        test_images, test_labels_arr = load_images(
            test_files, test_labels, resolution=self.resolution, base=root, name=f"{test.name}-{self.resolution}px")
        return ImageData(
            train_images=torch.from_numpy(train_images),
            train_labels=torch.from_numpy(train_labels_arr),
            test_images=torch.from_numpy(test_images),
            test_labels=torch.from_numpy(test_labels_arr),
            class_names=class_names,
        )

    def _select_classes(self, available: list[str], train: Path) -> list[str]:
        if not available:
            raise DataError(f"no class folders in {train}; put one folder of images per class there")
        if not self.classes:
            return available
        if self.classes.isdigit():
            count = int(self.classes)
            if not 1 <= count <= len(available):
                raise DataError(f"--imagefolder-classes {count}: {train} has {len(available)} classes; "
                                f"choose 1..{len(available)}")
            return available[:count]
        listing = Path(self.classes)
        if not listing.is_file():
            raise DataError(f"missing class list {listing} (--imagefolder-classes is neither a count nor a file)")
        wanted = [line.split("#", 1)[0].strip() for line in listing.read_text(encoding="utf-8").splitlines()]
        wanted = [w for w in wanted if w]
        if not wanted:
            raise DataError(f"empty class list {listing}; list one class folder name a line")
        unknown = sorted(set(wanted) - set(available))
        if unknown:
            raise DataError(f"class {unknown[0]!r} listed in {listing} has no folder in {train}; "
                            f"fix the list or add the folder")
        return sorted(set(wanted))


def _split_files(split: Path, class_names: list[str], *, require_all: bool,
                 fix: str) -> tuple[list[Path], list[int]]:
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(class_names):
        folder = split / name
        found = list_images(folder) if folder.is_dir() else []
        if not found:
            if require_all:
                raise DataError(f"class {name!r} has no image in {folder}; add images or leave the class out "
                                f"with --imagefolder-classes")
            log.warning("class %r has no test image in %s", name, folder)
        files += found
        labels += [label] * len(found)
    return files, labels


def _factory(options: Options) -> ImageFolder:
    return ImageFolder(root=str(options.get("imagefolder_root", DEFAULT_ROOT)),
                       classes=str(options.get("imagefolder_classes", DEFAULT_CLASSES)),
                       resolution=int(options.get("imagefolder_resolution", DEFAULT_RESOLUTION)))


@hookimpl
def harness_datasets() -> list[DatasetSpec]:
    return [DatasetSpec(name="imagefolder", factory=_factory,
                        description="any ImageFolder tree (train/ + test/ or val/), class subset, resized")]


@hookimpl
def harness_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dataset imagefolder")
    group.add_argument("--imagefolder-root", default=DEFAULT_ROOT, metavar="PATH",
                       help="folder holding train/ and test/ (or val/); relative to --data-dir "
                            "(default: %(default)s)")
    group.add_argument("--imagefolder-classes", default=DEFAULT_CLASSES, metavar="N|FILE",
                       help="keep the first N classes (sorted by name), or those listed in FILE "
                            "(default: all)")
    group.add_argument("--imagefolder-resolution", type=int, default=DEFAULT_RESOLUTION, metavar="R",
                       help="resize the shorter side to R and centre-crop R x R (default: %(default)s)")
