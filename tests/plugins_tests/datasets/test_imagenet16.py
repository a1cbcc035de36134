"""ImageNet16-120 plugin: generated NAS-Bench-201-style pickles through the real reader."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from _dataset_files import write_imagenet16
from harness_plugins.datasets import imagenet16
from harness_plugins.datasets.imagenet16 import ImageNet16

from harness.components import DatasetRequest
from harness.errors import DataError, UsageError
from harness.testing import DatasetContract

TRAIN = [f"train_data_batch_{i}" for i in range(1, 11)]


class TestImageNet16Contract(DatasetContract):
    dataset_name = "imagenet16-120"
    plugins = ["imagenet16"]
    options = {"imagenet16_classes": 4}

    def prepare(self, data_dir: Path) -> None:
        write_imagenet16(data_dir / "ImageNet16")


def expected(written: dict, names: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """What NAS-Bench-201's reader keeps: rows with 1 <= label <= k, relabelled label - 1."""
    images, labels = [], []
    for name in names:
        for row, label in zip(written[name]["data"], written[name]["labels"]):
            if 1 <= label <= k:
                images.append(row.reshape(3, 16, 16))
                labels.append(label - 1)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def load(data_dir: Path, classes: int = 4, **kwargs):
    return ImageNet16(num_classes=classes).load(DatasetRequest(data_dir=data_dir, **kwargs))


@pytest.mark.parametrize("nested", [True, False], ids=["data_dir/ImageNet16", "data_dir"])
def test_keeps_first_k_classes_and_relabels(tmp_path, imagenet16_writer, nested):
    written = imagenet16_writer(tmp_path / "ImageNet16" if nested else tmp_path, all_classes=6)
    data = load(tmp_path, classes=4)
    train_images, train_labels = expected(written, TRAIN, 4)
    test_images, test_labels = expected(written, ["val_data"], 4)
    assert data.train_images.dtype == torch.uint8 and data.train_labels.dtype == torch.int64
    assert tuple(data.train_images.shape[1:]) == (3, 16, 16)
    np.testing.assert_array_equal(data.train_images.numpy(), train_images)
    np.testing.assert_array_equal(data.train_labels.numpy(), train_labels)
    np.testing.assert_array_equal(data.test_images.numpy(), test_images)
    np.testing.assert_array_equal(data.test_labels.numpy(), test_labels)
    assert data.class_names == ["1", "2", "3", "4"]
    assert len(data.train_labels) == 80  # 120 rows, labels 1..6 evenly: 4/6 kept


def test_max_per_class_takes_first_in_file_order_across_batches(tmp_path, imagenet16_writer):
    written = imagenet16_writer(tmp_path, all_classes=6)
    all_images, all_labels = expected(written, TRAIN, 4)
    data = load(tmp_path, classes=4, max_per_class=3)
    keep = [i for i in range(len(all_labels)) if list(all_labels[:i]).count(all_labels[i]) < 3]
    np.testing.assert_array_equal(data.train_images.numpy(), all_images[keep])
    np.testing.assert_array_equal(np.bincount(data.train_labels.numpy()), [3, 3, 3, 3])
    again = load(tmp_path, classes=4, max_per_class=3)
    assert torch.equal(again.train_images, data.train_images)


def test_class_count_option(tmp_path):
    parser = argparse.ArgumentParser()
    imagenet16.harness_addoption(parser)
    assert parser.parse_args([]).imagenet16_classes == 120
    dataset = imagenet16._factory(vars(parser.parse_args(["--imagenet16-classes", "6"])))
    assert dataset.num_classes == 6
    with pytest.raises(UsageError, match="--imagenet16-classes must be in 1..1000"):
        ImageNet16(num_classes=0)
    assert [s.name for s in imagenet16.harness_datasets()] == ["imagenet16-120"]


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match=r"missing dataset folder .*ImageNet16; put the Downsampled"):
        load(tmp_path)


def test_missing_batch(tmp_path, imagenet16_writer):
    imagenet16_writer(tmp_path / "ImageNet16")
    (tmp_path / "ImageNet16" / "train_data_batch_7").unlink()
    with pytest.raises(DataError, match=r"missing dataset file .*ImageNet16/train_data_batch_7\b"):
        load(tmp_path)


def test_truncated_batch(tmp_path, imagenet16_writer):
    imagenet16_writer(tmp_path / "ImageNet16")
    path = tmp_path / "ImageNet16" / "val_data"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"truncated or corrupt pickle .*ImageNet16/val_data\b"):
        load(tmp_path)


@pytest.mark.parametrize("label", [0, 1001])
def test_label_out_of_range(tmp_path, imagenet16_writer, legacy_pickle, label):
    written = imagenet16_writer(tmp_path)
    entry = written["train_data_batch_2"]
    entry["labels"][5] = label
    legacy_pickle(entry, tmp_path / "train_data_batch_2")
    with pytest.raises(DataError, match=rf"label {label} out of range 1..1000 in .*train_data_batch_2\b"):
        load(tmp_path)


def test_labels_not_matching_images(tmp_path, imagenet16_writer, legacy_pickle):
    written = imagenet16_writer(tmp_path)
    entry = written["val_data"]
    entry["labels"] = entry["labels"][:-1]
    legacy_pickle(entry, tmp_path / "val_data")
    with pytest.raises(DataError, match=r"corrupt .*val_data: 'labels' has 11 labels for 12 images"):
        load(tmp_path)


def test_empty_class(tmp_path, imagenet16_writer):
    imagenet16_writer(tmp_path, all_classes=6)
    # labels 1..6 exist; asking for 7 classes leaves class "7" without images
    with pytest.raises(DataError, match=r"class 6 \('7'\) has no image in .*"):
        load(tmp_path, classes=7)


def test_download_is_not_possible(tmp_path):
    with pytest.raises(DataError, match=r"cannot be downloaded automatically.*train_data_batch_1..10"):
        load(tmp_path, download=True)
