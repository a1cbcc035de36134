"""Contract for image-dataset plugins (tabular benchmarks have their own format tests)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
import torch

from harness.components import DatasetRequest, ImageData, ImageDataset
from harness.testing._base import ContractBase

__all__ = ["DatasetContract"]


class DatasetContract(ContractBase):
    """Set ``dataset_name`` and override :meth:`prepare` to write a small copy of the data in its
    official format under ``data_dir`` (or leave it, for embedded datasets)."""

    dataset_name: ClassVar[str]
    max_per_class: ClassVar[int] = 2

    def prepare(self, data_dir: Path) -> None:
        """Write the dataset's files under ``data_dir``."""

    def _load(self, tmp_path: Path, max_per_class: int | None = None) -> ImageData:
        self.prepare(tmp_path)
        dataset = self.registered("dataset", self.dataset_name).spec.factory(self.options)
        assert isinstance(dataset, ImageDataset)
        return dataset.load(DatasetRequest(data_dir=tmp_path, max_per_class=max_per_class, options=self.options))

    def test_images_and_labels_are_well_formed(self, tmp_path: Path) -> None:
        data = self._load(tmp_path)
        for images, labels in ((data.train_images, data.train_labels), (data.test_images, data.test_labels)):
            assert images.dtype == torch.uint8 and images.ndim == 4 and len(images) == len(labels) > 0
            assert labels.dtype == torch.int64
            assert 0 <= int(labels.min()) and int(labels.max()) < data.num_classes
        assert data.test_images.shape[1:] == data.train_images.shape[1:]
        assert len(set(data.class_names)) == data.num_classes

    def test_every_class_has_train_images(self, tmp_path: Path) -> None:
        data = self._load(tmp_path)
        assert set(data.train_labels.tolist()) == set(range(data.num_classes))

    def test_max_per_class_subsamples_train(self, tmp_path: Path) -> None:
        full = self._load(tmp_path)
        small = self._load(tmp_path, self.max_per_class)
        counts = torch.bincount(small.train_labels, minlength=small.num_classes)
        assert int(counts.max()) <= self.max_per_class
        if int(torch.bincount(full.train_labels).min()) > self.max_per_class:
            assert len(small.train_labels) < len(full.train_labels)
        else:
            pytest.skip("the prepared data has too few images per class to subsample")
