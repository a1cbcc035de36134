"""Tiny-ImageNet-200 plugin: a generated tree in the official layout (real JPEGs), the decode cache
and every bad-input case."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from _dataset_files import TinyImageNetFiles
from harness_plugins.datasets import tiny_imagenet
from harness_plugins.datasets.tiny_imagenet import TinyImageNet

from harness.components import DatasetRequest
from harness.errors import DataError
from harness.testing import DatasetContract


class TestTinyImageNetContract(DatasetContract):
    dataset_name = "tiny-imagenet"
    plugins = ["tiny-imagenet"]

    def prepare(self, data_dir: Path) -> None:
        TinyImageNetFiles(data_dir)


def load(data_dir: Path, **kwargs):
    return TinyImageNet().load(DatasetRequest(data_dir=data_dir, **kwargs))


def mean_colors(images: torch.Tensor) -> np.ndarray:
    return images.float().mean(dim=(2, 3)).numpy()


def cache_files(root: Path) -> list[Path]:
    folder = root / ".harness-cache"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_reads_official_layout(tiny_files):
    data = load(tiny_files.data_dir)
    assert data.train_images.dtype == torch.uint8 and data.train_labels.dtype == torch.int64
    assert tuple(data.train_images.shape) == (9, 3, 64, 64)
    assert tuple(data.test_images.shape) == (6, 3, 64, 64)
    # labels index the sorted wnids (n01, n02, n03), images come in sorted file order
    assert data.train_labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    np.testing.assert_allclose(mean_colors(data.train_images), tiny_files.train_colors, atol=3)
    assert data.test_labels.tolist() == [0, 1, 2, 0, 1, 2]  # from val_annotations.txt
    np.testing.assert_allclose(mean_colors(data.test_images), tiny_files.val_colors, atol=3)
    assert data.class_names == ["goldfish, Carassius auratus", "tabby, tabby cat", "lemon"]


def test_max_per_class(tiny_files):
    data = load(tiny_files.data_dir, max_per_class=2)
    assert data.train_labels.tolist() == [0, 0, 1, 1, 2, 2]
    expected = [c for i, c in enumerate(tiny_files.train_colors) if i % 3 < 2]
    np.testing.assert_allclose(mean_colors(data.train_images), expected, atol=3)
    assert len(data.test_labels) == 6


def test_second_load_reads_the_cache_without_decoding(tiny_files, decode_counter):
    first = load(tiny_files.data_dir)
    assert decode_counter.calls == 15
    assert len(cache_files(tiny_files.root)) == 2  # train and val
    second = load(tiny_files.data_dir)
    assert decode_counter.calls == 15
    for name in ("train_images", "train_labels", "test_images", "test_labels"):
        assert torch.equal(getattr(first, name), getattr(second, name)), name


def test_cache_is_keyed_by_the_files(tiny_files, decode_counter, image_writer):
    load(tiny_files.data_dir)
    path = tiny_files.root / "train" / "n02" / "images" / "n02_1.JPEG"
    image_writer(path, (255, 255, 255), size=(80, 64))  # changed content and size
    data = load(tiny_files.data_dir)
    assert decode_counter.calls == 15 + 9  # train rebuilt, val still cached
    np.testing.assert_allclose(mean_colors(data.train_images)[4], [255, 255, 255], atol=3)
    load(tiny_files.data_dir, max_per_class=1)  # a different file list: its own cache
    assert decode_counter.calls == 15 + 9 + 3


def test_crash_while_writing_the_cache_leaves_no_cache(tiny_files, decode_counter, monkeypatch):
    real_savez = np.savez

    def crashing_savez(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # what a Ctrl-C mid-write looks like

    monkeypatch.setattr(np, "savez", crashing_savez)
    with pytest.raises(KeyboardInterrupt):
        load(tiny_files.data_dir)
    assert cache_files(tiny_files.root) == []  # neither a final nor a temporary file
    monkeypatch.setattr(np, "savez", real_savez)
    load(tiny_files.data_dir)
    calls = decode_counter.calls
    load(tiny_files.data_dir)
    assert decode_counter.calls == calls  # the rerun built a good cache


def test_full_disk_costs_only_the_cache(tiny_files, monkeypatch):
    def full_disk(file, **arrays):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    assert len(load(tiny_files.data_dir).train_labels) == 9
    assert cache_files(tiny_files.root) == []


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_cache_is_rebuilt(tiny_files, decode_counter, damage):
    first = load(tiny_files.data_dir)
    for cache in cache_files(tiny_files.root):
        blob = cache.read_bytes()
        cache.write_bytes({"truncate": blob[: len(blob) // 2], "garbage": b"x" * 100, "empty": b""}[damage])
    rebuilt = load(tiny_files.data_dir)
    assert decode_counter.calls == 30
    assert torch.equal(first.train_images, rebuilt.train_images)
    assert torch.equal(first.test_images, rebuilt.test_images)
    load(tiny_files.data_dir)
    assert decode_counter.calls == 30  # and the rebuilt cache is good


def test_cache_holding_other_content_is_rebuilt(tiny_files, decode_counter):
    load(tiny_files.data_dir)
    for cache in cache_files(tiny_files.root):
        with np.load(cache) as npz:
            arrays = dict(npz)
        arrays["key"] = np.array("not the key")
        np.savez(cache, **arrays)
    load(tiny_files.data_dir)
    assert decode_counter.calls == 30


def test_hook_registers_the_dataset():
    [spec] = tiny_imagenet.harness_datasets()
    assert spec.name == "tiny-imagenet"
    assert isinstance(spec.factory({}), TinyImageNet)


# --- bad input ----------------------------------------------------------------------------------


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match=r"missing dataset folder .*tiny-imagenet-200; extract the official"):
        load(tmp_path)


@pytest.mark.parametrize("name", ["wnids.txt", "words.txt", "val/val_annotations.txt"])
def test_missing_text_file(tiny_files, name):
    (tiny_files.root / name).unlink()
    with pytest.raises(DataError, match=rf"missing dataset file .*tiny-imagenet-200/{name}"):
        load(tiny_files.data_dir)


def test_class_without_words_entry(tiny_files):
    (tiny_files.root / "words.txt").write_text("n01\tgoldfish\nn03\tlemon\n")
    with pytest.raises(DataError, match=r"class n02 \(wnids.txt\) has no entry in .*words.txt"):
        load(tiny_files.data_dir)


def test_missing_class_folder(tiny_files):
    for path in (tiny_files.root / "train" / "n02" / "images").iterdir():
        path.unlink()
    (tiny_files.root / "train" / "n02" / "images").rmdir()
    with pytest.raises(DataError, match=r"missing dataset folder .*train/n02/images"):
        load(tiny_files.data_dir)


def test_empty_class(tiny_files):
    for path in (tiny_files.root / "train" / "n03" / "images").iterdir():
        path.unlink()
    with pytest.raises(DataError, match=r"class n03 has no image in .*train/n03/images"):
        load(tiny_files.data_dir)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_jpeg(tiny_files, damage):
    path = tiny_files.root / "train" / "n02" / "images" / "n02_2.JPEG"
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2] if damage == "truncate" else b"not a jpeg at all")
    with pytest.raises(DataError, match=r"corrupt image file .*train/n02/images/n02_2.JPEG .*delete or replace"):
        load(tiny_files.data_dir)
    assert cache_files(tiny_files.root) == []


def test_unknown_class_in_annotations(tiny_files):
    with (tiny_files.root / "val" / "val_annotations.txt").open("a") as f:
        f.write("val_0.JPEG\tn77\t0\t0\t1\t1\n")
    with pytest.raises(DataError, match=r"unknown class 'n77' on line 7 of .*val_annotations.txt"):
        load(tiny_files.data_dir)


def test_malformed_annotation(tiny_files):
    with (tiny_files.root / "val" / "val_annotations.txt").open("a") as f:
        f.write("val_0.JPEG n01\n")
    with pytest.raises(DataError, match=r"malformed line 7 of .*val_annotations.txt"):
        load(tiny_files.data_dir)


def test_missing_validation_image(tiny_files):
    os.remove(tiny_files.root / "val" / "images" / "val_4.JPEG")
    with pytest.raises(DataError, match=r"missing image file .*val/images/val_4.JPEG \(line 5 of"):
        load(tiny_files.data_dir)


def test_download_failure_is_one_line(tmp_path, monkeypatch):
    import torchvision.datasets.utils

    def offline(url, download_root, **kwargs):
        assert kwargs["md5"] == tiny_imagenet.ZIP_MD5
        raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", offline)
    with pytest.raises(DataError, match=r"could not download Tiny-ImageNet .*unreachable.*tiny-imagenet-200.zip"):
        load(tmp_path, download=True)


def test_download_extracts_into_data_dir(tiny_files, tmp_path, monkeypatch):
    import shutil

    import torchvision.datasets.utils

    def fake(url, download_root, **kwargs):
        shutil.copytree(tiny_files.root, Path(download_root) / "tiny-imagenet-200")

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", fake)
    assert len(load(tmp_path / "fresh", download=True).train_labels) == 9
