"""CIFAR-100 (50,000 train / 10,000 test images, 32x32, 100 fine or 20 coarse classes), read from
the official "python version" pickles.

Layout, under ``--data-dir``::

    cifar-100-python/train   dict: data (N x 3072 uint8, channel-major), fine_labels, coarse_labels
    cifar-100-python/test    same keys
    cifar-100-python/meta    dict: fine_label_names, coarse_label_names

Why this format: it is the one the authors publish and torchvision downloads, so a folder made by
``torchvision.datasets.CIFAR100(download=True)`` (or by hand from the tarball) works unchanged. With
``--download`` and files missing, torchvision's own ``CIFAR100`` downloads, extracts and checks the
official md5s.

md5 verification (``--cifar100-verify-md5``), against the md5 table of torchvision's ``CIFAR100``:
``always`` checks every file before reading; ``never`` skips it; ``auto`` (default) checks the files
when they claim to be the official release (exactly 50,000 train and 10,000 test images), so a
bit-flipped download is caught while hand-made subsets, and the small files the tests generate,
still load. Files just downloaded are not hashed twice (torchvision did it).

Labels: ``--cifar100-labels fine`` (default, 100 classes) or ``coarse`` (the 20 superclasses).
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
from harness.config import execution_only
from harness.errors import DataError, UsageError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Cifar100", "FOLDER", "harness_addoption", "harness_datasets"]

FOLDER = "cifar-100-python"
OFFICIAL_COUNTS = {"train": 50_000, "test": 10_000}
#: label kind -> (label key in train/test, names key in meta, class count)
LABEL_KINDS = {
    "fine": ("fine_labels", "fine_label_names", 100),
    "coarse": ("coarse_labels", "coarse_label_names", 20),
}
VERIFY_MODES = ("auto", "always", "never")
DEFAULT_LABELS = "fine"
DEFAULT_VERIFY = "auto"


class Cifar100(ImageDataset):
    def __init__(self, labels: str = DEFAULT_LABELS, verify_md5: str = DEFAULT_VERIFY) -> None:
        if labels not in LABEL_KINDS:
            raise UsageError(f"--cifar100-labels must be one of {', '.join(LABEL_KINDS)}, got {labels!r}")
        if verify_md5 not in VERIFY_MODES:
            raise UsageError(f"--cifar100-verify-md5 must be one of {', '.join(VERIFY_MODES)}, got {verify_md5!r}")
        self.labels = labels
        self.verify_md5 = verify_md5

    def load(self, request: DatasetRequest) -> ImageData:
        import torch

        root = Path(request.data_dir) / FOLDER
        fix = (f"put the official {FOLDER} folder (from cifar-100-python.tar.gz) in "
               f"{request.data_dir}, or rerun with --download")
        downloaded = False
        if request.download and not all((root / name).is_file() for name in ("train", "test", "meta")):
            _download(Path(request.data_dir))
            downloaded = True
        if not root.is_dir():
            raise DataError(f"missing dataset folder {root}; {fix}")
        if self.verify_md5 == "always":
            _verify_md5(root)

        label_key, names_key, num_classes = LABEL_KINDS[self.labels]
        meta = load_pickle(root / "meta", fix, (names_key,))
        names = meta[names_key]
        if not isinstance(names, (list, tuple)) or len(names) != num_classes:
            found = f"{len(names)} names" if isinstance(names, (list, tuple)) else type(names).__name__
            raise DataError(f"corrupt {root / 'meta'}: {names_key!r} should list {num_classes} names, "
                            f"found {found}; {fix}")
        class_names = [str(n) for n in names]
        # every class must have training images; a test split may lack some (accuracy still counts)
        splits = {split: _read_split(root / split, label_key, num_classes, class_names, fix,
                                     require_all=split == "train")
                  for split in ("train", "test")}
        official = all(len(splits[s][1]) == n for s, n in OFFICIAL_COUNTS.items())
        if self.verify_md5 == "auto" and official and not downloaded:
            _verify_md5(root)

        train_images, train_labels = splits["train"]
        if request.max_per_class is not None:
            keep = first_per_class(train_labels, request.max_per_class)
            train_images, train_labels = train_images[keep], train_labels[keep]
        test_images, test_labels = splits["test"]
        return ImageData(
            train_images=torch.from_numpy(train_images),
            train_labels=torch.from_numpy(train_labels),
            test_images=torch.from_numpy(test_images),
            test_labels=torch.from_numpy(test_labels),
            class_names=class_names,
        )


def _read_split(path: Path, label_key: str, num_classes: int, class_names: list[str],
                fix: str, *, require_all: bool) -> tuple[np.ndarray, np.ndarray]:
    entry = load_pickle(path, fix, ("data", label_key))
    images = flat_rows_to_images(entry["data"], 32, path, fix)
    labels = labels_array(entry[label_key], len(images), label_key, path, fix)
    check_labels(labels, num_classes, path, fix, class_names=class_names, require_all=require_all)
    return images, labels


def _official_md5s() -> list[tuple[str, str]]:
    """(file name, md5) of the official release, as torchvision's ``CIFAR100`` lists them."""
    from torchvision.datasets import CIFAR100

    return [(name, md5) for name, md5 in CIFAR100.train_list + CIFAR100.test_list] + [
        (CIFAR100.meta["filename"], CIFAR100.meta["md5"])
    ]


def _verify_md5(root: Path) -> None:
    from torchvision.datasets.utils import check_integrity

    for name, md5 in _official_md5s():
        path = root / name
        if not check_integrity(str(path), md5):
            what = "missing" if not path.is_file() else "md5 mismatch (not the official file or corrupt):"
            raise DataError(
                f"{what} {path}; delete {root} and rerun with --download, or pass "
                f"--cifar100-verify-md5 never to use a deliberately modified copy"
            )


def _download(data_dir: Path) -> None:
    """Let torchvision download, extract and md5-check the official tarball into ``data_dir``."""
    from torchvision.datasets import CIFAR100

    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # train=False: after downloading, torchvision checks every md5 and reads only the
        # 10,000-image test split, the cheaper half
        CIFAR100(root=str(data_dir), train=False, download=True)
    except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError
        raise DataError(
            f"could not download CIFAR-100 into {data_dir} ({type(exc).__name__}: {exc}); "
            f"download {CIFAR100.url} yourself and extract it there"
        ) from exc


def _factory(options: Options) -> Cifar100:
    return Cifar100(labels=options.get("cifar100_labels", DEFAULT_LABELS),
                    verify_md5=options.get("cifar100_verify_md5", DEFAULT_VERIFY))


@hookimpl
def harness_datasets() -> list[DatasetSpec]:
    return [DatasetSpec(name="cifar100", factory=_factory,
                        description="CIFAR-100, official python pickles (32x32, 100 fine / 20 coarse classes)")]


@hookimpl
def harness_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dataset cifar100")
    group.add_argument("--cifar100-labels", choices=tuple(LABEL_KINDS), default=DEFAULT_LABELS,
                       help="label set: the 100 fine classes or the 20 coarse superclasses (default: %(default)s)")
    # checking the files does not change what is computed: not part of the run id
    execution_only(group.add_argument(
        "--cifar100-verify-md5", choices=VERIFY_MODES, default=DEFAULT_VERIFY,
        help="check the files against the official md5s: always, never, or auto = when "
             "they hold the official 50,000/10,000 images (default: %(default)s)"))
