"""Tiny-ImageNet-200 (100,000 train / 10,000 validation images, 64x64, 200 classes), read from the
official layout of ``tiny-imagenet-200.zip``.

Layout, under ``--data-dir``::

    tiny-imagenet-200/wnids.txt                    the 200 WordNet ids, one a line
    tiny-imagenet-200/words.txt                    "<wnid>\\t<names>" for every WordNet id
    tiny-imagenet-200/train/<wnid>/images/*.JPEG   500 per class
    tiny-imagenet-200/val/images/*.JPEG            10,000, labelled by
    tiny-imagenet-200/val/val_annotations.txt      "<file>\\t<wnid>\\t<x0>\\t<y0>\\t<x1>\\t<y1>"

Why: it is the only labelled held-out split the release has (test/ has no labels), so the official
validation set serves as our test split; the harness draws its own validation split from train.
Labels index the wnids in sorted order (the order torchvision's ``ImageFolder`` gives ``train/``);
a class is named by its ``words.txt`` entry. The JPEGs are decoded once and cached in
``tiny-imagenet-200/.harness-cache/`` (see :mod:`harness_plugins.datasets._images`).
With ``--download`` and the folder missing, torchvision's downloader fetches the official zip and
checks its md5.
"""
from __future__ import annotations

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
from harness.errors import DataError

__all__ = ["FOLDER", "TinyImageNet", "harness_datasets"]

FOLDER = "tiny-imagenet-200"
URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
ZIP_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
RESOLUTION = 64


class TinyImageNet(ImageDataset):
    def load(self, request: DatasetRequest) -> ImageData:
        import numpy as np
        import torch

        data_dir = Path(request.data_dir)
        root = data_dir / FOLDER
        fix = f"extract the official {FOLDER}.zip into {data_dir}, or rerun with --download"
        if request.download and not (root / "wnids.txt").is_file():
            _download(data_dir)
        if not root.is_dir():
            raise DataError(f"missing dataset folder {root}; {fix}")

        wnids = _read_wnids(root / "wnids.txt", fix)
        class_names = _read_words(root / "words.txt", wnids, fix)
        train_files, train_labels = _train_files(root / "train", wnids, fix)
        keep = first_per_class(np.asarray(train_labels, dtype=np.int64), request.max_per_class)
        train_images, train_labels = load_images(
            [train_files[i] for i in keep], [train_labels[i] for i in keep],
            resolution=RESOLUTION, base=root, name="train")
        test_files, test_labels = _val_files(root / "val", wnids, fix)
        test_images, test_labels = load_images(test_files, test_labels, resolution=RESOLUTION,
                                               base=root, name="val")
        return ImageData(
            train_images=torch.from_numpy(train_images),
            train_labels=torch.from_numpy(train_labels),
            test_images=torch.from_numpy(test_images),
            test_labels=torch.from_numpy(test_labels),
            class_names=class_names,
        )


def _read_lines(path: Path, fix: str) -> list[str]:
    if not path.is_file():
        raise DataError(f"missing dataset file {path}; {fix}")
    try:
        return [line.rstrip("\r\n") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError as exc:
        raise DataError(f"corrupt text file {path} ({exc}); {fix}") from exc


def _read_wnids(path: Path, fix: str) -> list[str]:
    wnids = [line.strip() for line in _read_lines(path, fix)]
    if not wnids:
        raise DataError(f"empty class list {path}; {fix}")
    if len(set(wnids)) != len(wnids):
        raise DataError(f"duplicate class ids in {path}; {fix}")
    return sorted(wnids)


def _read_words(path: Path, wnids: list[str], fix: str) -> list[str]:
    words = {}
    for line in _read_lines(path, fix):
        wnid, _, names = line.partition("\t")
        words[wnid.strip()] = names.strip()
    missing = [w for w in wnids if w not in words]
    if missing:
        raise DataError(f"class {missing[0]} (wnids.txt) has no entry in {path}; {fix}")
    return [words[w] for w in wnids]


def _train_files(train: Path, wnids: list[str], fix: str) -> tuple[list[Path], list[int]]:
    files: list[Path] = []
    labels: list[int] = []
    for label, wnid in enumerate(wnids):
        folder = train / wnid / "images"
        if not folder.is_dir():
            raise DataError(f"missing dataset folder {folder}; {fix}")
        found = list_images(folder)
        if not found:
            raise DataError(f"class {wnid} has no image in {folder}; {fix}")
        files += found
        labels += [label] * len(found)
    return files, labels


def _val_files(val: Path, wnids: list[str], fix: str) -> tuple[list[Path], list[int]]:
    annotations = val / "val_annotations.txt"
    index = {wnid: i for i, wnid in enumerate(wnids)}
    files: list[Path] = []
    labels: list[int] = []
    for number, line in enumerate(_read_lines(annotations, fix), start=1):
        fields = line.split("\t")
        if len(fields) < 2:
            raise DataError(f"malformed line {number} of {annotations} (expected file<TAB>wnid...); {fix}")
        name, wnid = fields[0].strip(), fields[1].strip()
        if wnid not in index:
            raise DataError(f"unknown class {wnid!r} on line {number} of {annotations} (not in wnids.txt); {fix}")
        path = val / "images" / name
        if not path.is_file():
            raise DataError(f"missing image file {path} (line {number} of {annotations}); {fix}")
        files.append(path)
        labels.append(index[wnid])
    if not files:
        raise DataError(f"no validation images listed in {annotations}; {fix}")
    return files, labels


def _download(data_dir: Path) -> None:
    from torchvision.datasets.utils import download_and_extract_archive

    try:
        download_and_extract_archive(URL, str(data_dir), md5=ZIP_MD5)
    except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError
        raise DataError(f"could not download Tiny-ImageNet into {data_dir} ({type(exc).__name__}: {exc}); "
                        f"download {URL} yourself and extract it there") from exc


def _factory(options: Options) -> TinyImageNet:
    return TinyImageNet()


@hookimpl
def harness_datasets() -> list[DatasetSpec]:
    return [DatasetSpec(name="tiny-imagenet", factory=_factory,
                        description="Tiny-ImageNet-200, official JPEG layout (64x64, 200 classes; val as test)")]
