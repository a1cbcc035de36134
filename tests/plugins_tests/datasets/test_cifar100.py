"""CIFAR-100 plugin: reads generated files in the official pickle layout through the real code."""
from __future__ import annotations

import argparse
import hashlib
import pickle
import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets
import torchvision.datasets.cifar
from _dataset_files import Cifar100Files
from harness_plugins.datasets import cifar100
from harness_plugins.datasets.cifar100 import Cifar100

from harness.components import DatasetRequest
from harness.errors import DataError, UsageError
from harness.testing import DatasetContract


class TestCifar100Contract(DatasetContract):
    dataset_name = "cifar100"
    plugins = ["cifar100"]

    def prepare(self, data_dir: Path) -> None:
        Cifar100Files(data_dir, per_class_train=3)


class TestCifar100CoarseContract(TestCifar100Contract):
    options = {"cifar100_labels": "coarse"}


def load(data_dir: Path, **kwargs) -> object:
    options = {k: kwargs.pop(k) for k in ("labels", "verify_md5") if k in kwargs}
    return Cifar100(**options).load(DatasetRequest(data_dir=data_dir, **kwargs))


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_reads_official_layout_with_fine_labels(cifar100_files):
    data = load(cifar100_files.data_dir)
    assert data.train_images.dtype == torch.uint8 and data.train_labels.dtype == torch.int64
    assert tuple(data.train_images.shape) == (200, 3, 32, 32)
    assert tuple(data.test_images.shape) == (100, 3, 32, 32)
    np.testing.assert_array_equal(data.train_images.numpy(), cifar100_files.images("train"))
    np.testing.assert_array_equal(data.train_labels.numpy(), cifar100_files.labels("train"))
    np.testing.assert_array_equal(data.test_images.numpy(), cifar100_files.images("test"))
    np.testing.assert_array_equal(data.test_labels.numpy(), cifar100_files.labels("test"))
    assert data.class_names == cifar100_files.fine_names
    assert data.num_classes == 100 and data.augment


def test_coarse_labels(cifar100_files):
    data = load(cifar100_files.data_dir, labels="coarse")
    np.testing.assert_array_equal(data.train_labels.numpy(), cifar100_files.labels("train", "coarse"))
    assert data.class_names == cifar100_files.coarse_names
    assert int(data.train_labels.max()) == 19


def test_max_per_class_keeps_first_images_in_file_order(cifar100_files):
    labels = cifar100_files.labels("train")
    expected = [i for i in range(len(labels)) if list(labels[:i]).count(labels[i]) < 1]
    data = load(cifar100_files.data_dir, max_per_class=1)
    assert len(expected) == 100
    np.testing.assert_array_equal(data.train_images.numpy(), cifar100_files.images("train")[expected])
    np.testing.assert_array_equal(data.train_labels.numpy(), labels[expected])
    assert len(data.test_labels) == 100  # the test split is never subsampled


def test_loading_is_deterministic(cifar100_files):
    a, b = load(cifar100_files.data_dir, max_per_class=1), load(cifar100_files.data_dir, max_per_class=1)
    assert torch.equal(a.train_images, b.train_images) and torch.equal(a.train_labels, b.train_labels)


def test_reads_pickles_written_by_numpy_2_too(cifar100_files):
    entry = cifar100_files.splits["test"]
    (cifar100_files.root / "test").write_bytes(pickle.dumps(entry, protocol=5))
    data = load(cifar100_files.data_dir)
    np.testing.assert_array_equal(data.test_images.numpy(), cifar100_files.images("test"))


def test_options_reach_the_dataset_through_the_hook():
    parser = argparse.ArgumentParser()
    cifar100.harness_addoption(parser)
    defaults = vars(parser.parse_args([]))
    assert defaults == {"cifar100_labels": "fine", "cifar100_verify_md5": "auto"}
    dataset = cifar100._factory(vars(parser.parse_args(["--cifar100-labels", "coarse",
                                                        "--cifar100-verify-md5", "never"])))
    assert (dataset.labels, dataset.verify_md5) == ("coarse", "never")
    with pytest.raises(UsageError, match="--cifar100-labels"):
        Cifar100(labels="medium")
    [spec] = cifar100.harness_datasets()
    assert spec.name == "cifar100"


# --- bad input: one-line DataError naming the file -------------------------------------------


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match=r"missing dataset folder .*cifar-100-python.*--download"):
        load(tmp_path)


def test_missing_file(cifar100_files):
    (cifar100_files.root / "test").unlink()
    with pytest.raises(DataError, match=r"missing dataset file .*cifar-100-python/test\b"):
        load(cifar100_files.data_dir)


def test_truncated_file(cifar100_files):
    path = cifar100_files.root / "train"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=r"truncated or corrupt pickle .*cifar-100-python/train\b") as info:
        load(cifar100_files.data_dir)
    assert "\n" not in str(info.value)


def test_garbage_file(cifar100_files):
    (cifar100_files.root / "meta").write_bytes(b"<html>404 not found</html>")
    with pytest.raises(DataError, match=r"corrupt pickle .*cifar-100-python/meta\b"):
        load(cifar100_files.data_dir)


class _Exploit:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_pickle_cannot_run_code(cifar100_files, tmp_path):
    target = tmp_path / "pwned"
    (cifar100_files.root / "meta").write_bytes(pickle.dumps({"fine_label_names": _Exploit(target)}))
    with pytest.raises(DataError, match=r"cifar-100-python/meta\b.*refusing to load pathlib"):
        load(cifar100_files.data_dir)
    assert not target.exists()


def test_label_out_of_range(cifar100_files):
    entry = cifar100_files.splits["test"]
    entry["fine_labels"][3] = 100
    cifar100_files.rewrite("test", entry)
    with pytest.raises(DataError, match=r"label 100 out of range \[0, 100\) in .*cifar-100-python/test\b"):
        load(cifar100_files.data_dir)


def test_wrong_image_size(cifar100_files):
    cifar100_files.rewrite("test", dict(cifar100_files.splits["test"], data=np.zeros((100, 768), np.uint8)))
    with pytest.raises(DataError, match=r"corrupt .*cifar-100-python/test: 'data' should be a uint8 N x 3072"):
        load(cifar100_files.data_dir)


def test_empty_class(cifar100_files):
    entry = cifar100_files.splits["train"]
    entry["fine_labels"] = [0 if label == 7 else label for label in entry["fine_labels"]]
    cifar100_files.rewrite("train", entry)
    with pytest.raises(DataError, match=r"class 7 \('fine07'\) has no image in .*cifar-100-python/train\b"):
        load(cifar100_files.data_dir)


# --- md5 verification, through torchvision's real table and check ----------------------------


@pytest.fixture
def generated_md5s(cifar100_files, monkeypatch):
    """Make torchvision's official md5 table describe the generated files."""
    root = cifar100_files.root
    monkeypatch.setattr(torchvision.datasets.CIFAR100, "train_list", [["train", md5(root / "train")]])
    monkeypatch.setattr(torchvision.datasets.CIFAR100, "test_list", [["test", md5(root / "test")]])
    monkeypatch.setattr(torchvision.datasets.CIFAR100, "meta",
                        {"filename": "meta", "key": "fine_label_names", "md5": md5(root / "meta")})
    return root


def test_md5_always_accepts_matching_files(cifar100_files, generated_md5s):
    assert len(load(cifar100_files.data_dir, verify_md5="always").train_labels) == 200


def test_md5_always_rejects_a_modified_file(cifar100_files, generated_md5s, monkeypatch):
    monkeypatch.setattr(torchvision.datasets.CIFAR100, "test_list", [["test", "0" * 32]])
    with pytest.raises(DataError, match=r"md5 mismatch .* .*cifar-100-python/test; delete .* --download"):
        load(cifar100_files.data_dir, verify_md5="always")


def test_md5_always_rejects_generated_files_against_the_real_table(cifar100_files):
    with pytest.raises(DataError, match=r"md5 mismatch .*cifar-100-python/train"):
        load(cifar100_files.data_dir, verify_md5="always")


def test_md5_auto_checks_files_with_the_official_counts(cifar100_files, monkeypatch):
    # the generated files hold 200/100 images; declare those the official counts
    monkeypatch.setattr(cifar100, "OFFICIAL_COUNTS", {"train": 200, "test": 100})
    with pytest.raises(DataError, match=r"md5 mismatch .*cifar-100-python/train"):
        load(cifar100_files.data_dir)
    assert len(load(cifar100_files.data_dir, verify_md5="never").train_labels) == 200


def test_md5_auto_skips_files_that_are_not_the_full_release(cifar100_files):
    # 200/100 images cannot be the official files, so their md5 is not checked
    assert len(load(cifar100_files.data_dir, verify_md5="auto").train_labels) == 200


# --- download, through torchvision's real CIFAR100 with only the network faked ----------------


def test_download_uses_torchvision_and_its_md5_check(cifar100_files, generated_md5s, tmp_path, monkeypatch):
    staged = cifar100_files.root
    calls = []

    def fake_download(url, download_root, **kwargs):
        calls.append(url)
        shutil.copytree(staged, Path(download_root) / "cifar-100-python")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", fake_download)
    empty = tmp_path / "fresh"
    data = load(empty, download=True)
    assert calls == [torchvision.datasets.CIFAR100.url]
    np.testing.assert_array_equal(data.train_labels.numpy(), cifar100_files.labels("train"))
    load(empty, download=True)  # files present: no second download
    assert len(calls) == 1


def test_download_of_corrupt_files_is_refused(cifar100_files, generated_md5s, tmp_path, monkeypatch):
    staged = cifar100_files.root

    def fake_download(url, download_root, **kwargs):
        shutil.copytree(staged, Path(download_root) / "cifar-100-python")
        (Path(download_root) / "cifar-100-python" / "test").write_bytes(b"bit rot")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", fake_download)
    with pytest.raises(DataError, match=r"could not download CIFAR-100 into .*fresh.*corrupted"):
        load(tmp_path / "fresh", download=True)


def test_download_failure_is_one_line(tmp_path, monkeypatch):
    def offline(url, download_root, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", offline)
    with pytest.raises(DataError, match=r"could not download CIFAR-100 .*no network.*cifar-100-python.tar.gz"):
        load(tmp_path, download=True)


def test_meta_without_a_name_list(cifar100_files):
    cifar100_files.rewrite("meta", {"fine_label_names": 7, "coarse_label_names": cifar100_files.coarse_names})
    with pytest.raises(DataError, match=r"corrupt .*cifar-100-python/meta: 'fine_label_names' should list 100 names"):
        load(cifar100_files.data_dir)


def test_max_per_class_must_be_positive(cifar100_files):
    with pytest.raises(UsageError, match="--max-per-class must be at least 1, got 0"):
        load(cifar100_files.data_dir, max_per_class=0)
