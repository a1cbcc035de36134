"""Writers of tiny datasets in each official on-disk format, so the plugins' real readers are tested.

Pickles use the real keys and are written as the 2009 CIFAR files were (protocol 2, Python 2
byte strings, ``numpy.core`` global names); JPEGs and PNGs are written with PIL.
"""
from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import pytest


class _Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 ``str`` (BINSTRING), as the 2009 CIFAR pickles hold array data;
    Python 3 would write ``_codecs.encode(...)`` calls instead."""

    def save_bytes(self, obj: bytes) -> None:
        n = len(obj)
        header = pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)
        self.write(header + obj)
        self.memoize(obj)

    dispatch = pickle._Pickler.dispatch.copy()
    dispatch[bytes] = save_bytes


def dump_legacy_pickle(obj: object, path: Path) -> None:
    """Pickle ``obj`` as the official files are pickled: protocol 2, byte strings as Python 2
    ``str``, numpy arrays under the ``numpy.core`` names (numpy 2 writes ``numpy._core``)."""
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(obj)
    blob = buffer.getvalue().replace(b"cnumpy._core.", b"cnumpy.core.")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)


class Cifar100Files:
    """Generated CIFAR-100 files and the arrays they hold (for comparisons)."""

    def __init__(self, data_dir: Path, per_class_train: int = 2, per_class_test: int = 1, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.data_dir = data_dir
        self.root = data_dir / "cifar-100-python"
        self.fine_names = [f"fine{i:02d}" for i in range(100)]
        self.coarse_names = [f"coarse{i:02d}" for i in range(20)]
        self.splits = {}
        for split, per_class in (("train", per_class_train), ("test", per_class_test)):
            fine = np.tile(np.arange(100), per_class)
            rng.shuffle(fine)  # interleaved classes, so "first k per class" is not "first rows"
            data = rng.integers(0, 256, size=(len(fine), 3072), dtype=np.uint8)
            entry = {"filenames": [f"img{i}.png" for i in range(len(fine))], "batch_label": f"{split} batch",
                     "fine_labels": fine.tolist(), "coarse_labels": (fine // 5).tolist(), "data": data}
            self.splits[split] = entry
            dump_legacy_pickle(entry, self.root / split)
        dump_legacy_pickle({"fine_label_names": self.fine_names, "coarse_label_names": self.coarse_names},
                           self.root / "meta")

    def rewrite(self, name: str, entry: dict) -> None:
        """Replace file ``name`` (train, test or meta) with ``entry``, pickled like the originals."""
        dump_legacy_pickle(entry, self.root / name)

    def images(self, split: str) -> np.ndarray:
        return self.splits[split]["data"].reshape(-1, 3, 32, 32)

    def labels(self, split: str, kind: str = "fine") -> np.ndarray:
        return np.asarray(self.splits[split][f"{kind}_labels"], dtype=np.int64)


def write_imagenet16(folder: Path, per_batch: int = 12, all_classes: int = 6, seed: int = 0) -> dict[str, dict]:
    """``train_data_batch_1..10`` and ``val_data`` with 1-based labels cycling through
    1..all_classes; returns the entries written, by file name."""
    rng = np.random.default_rng(seed)
    written = {}
    names = [f"train_data_batch_{i}" for i in range(1, 11)] + ["val_data"]
    for number, name in enumerate(names):
        labels = (np.arange(per_batch) + number) % all_classes + 1
        entry = {"data": rng.integers(0, 256, size=(per_batch, 768), dtype=np.uint8),
                 "labels": labels.tolist(), "mean": np.zeros(768)}
        dump_legacy_pickle(entry, folder / name)
        written[name] = entry
    return written


def solid_image(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (64, 64)) -> None:
    """A one-colour image (JPEG or PNG by suffix): JPEG keeps flat colours within a few levels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def class_color(label: int, index: int) -> tuple[int, int, int]:
    """A colour that identifies (class, image index) after JPEG round-off."""
    return (40 + 60 * label, 30 + 40 * index, 200 - 30 * index)


IMAGEFOLDER_COLORS = {"cat": (200, 0, 0), "dog": (0, 200, 0), "eel": (0, 0, 200)}


def write_imagefolder(root: Path) -> None:
    """root/{train,test}/<class>/ for cat, dog, eel: 3 train images (one in a subfolder) and 1 test
    image per class, mixed sizes and formats, plus a non-image file that must be ignored."""
    for name, color in IMAGEFOLDER_COLORS.items():
        solid_image(root / "train" / name / "a.png", color, size=(40, 24))
        solid_image(root / "train" / name / "b.jpg", color, size=(24, 40))
        solid_image(root / "train" / name / "sub" / "c.PNG", color, size=(16, 16))
        (root / "train" / name / "notes.txt").write_text("not an image")
        solid_image(root / "test" / name / "t.png", color, size=(30, 30))


class TinyImageNetFiles:
    """A 3-class Tiny-ImageNet-200 tree: 3 train images per class, 2 validation images per class."""

    wnids = ["n03", "n01", "n02"]  # deliberately unsorted in wnids.txt

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.root = data_dir / "tiny-imagenet-200"
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "wnids.txt").write_text("\n".join(self.wnids) + "\n")
        words = {"n01": "goldfish, Carassius auratus", "n02": "tabby, tabby cat", "n03": "lemon",
                 "n99": "an unused class"}
        (self.root / "words.txt").write_text("".join(f"{w}\t{n}\n" for w, n in words.items()))
        #: colours of the train images in expected order (sorted wnids, then sorted file names)
        self.train_colors: list[tuple[int, int, int]] = []
        self.val_colors: list[tuple[int, int, int]] = []
        for label, wnid in enumerate(sorted(self.wnids)):
            for i in range(3):
                solid_image(self.root / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", class_color(label, i))
                self.train_colors.append(class_color(label, i))
            (self.root / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        lines = []
        for number in range(6):
            label = number % 3
            name = f"val_{number}.JPEG"
            solid_image(self.root / "val" / "images" / name, class_color(label, 2 - label))
            self.val_colors.append(class_color(label, 2 - label))
            lines.append(f"{name}\t{sorted(self.wnids)[label]}\t0\t0\t63\t63\n")
        (self.root / "val" / "val_annotations.txt").write_text("".join(lines))


class DecodeCounter:
    """Counts calls of ``_images.decode_image`` (to prove a cached load decodes nothing)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from harness_plugins.datasets import _images

        self.paths: list[Path] = []  # list.append is atomic, and decoding runs in threads
        real = _images.decode_image

        def counting(path, resolution):
            self.paths.append(path)
            return real(path, resolution)

        monkeypatch.setattr(_images, "decode_image", counting)

    @property
    def calls(self) -> int:
        return len(self.paths)
