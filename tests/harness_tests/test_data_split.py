"""The shared train/validation split: stratified, disjoint, reproducible, test untouched."""
from __future__ import annotations

import pytest
import torch

from harness.components import ImageData
from harness.data import split_train_validation
from harness.errors import DataError


def _data(n_per_class: int = 20, classes: int = 3) -> ImageData:
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    images = torch.arange(len(labels), dtype=torch.int64).reshape(-1, 1, 1, 1).to(torch.uint8)
    return ImageData(images, labels, images[:5], labels[:5], [str(c) for c in range(classes)])


def test_split_is_stratified_disjoint_and_reproducible() -> None:
    data = _data()
    a = split_train_validation(data, 0.25, seed=7)
    b = split_train_validation(data, 0.25, seed=7)
    c = split_train_validation(data, 0.25, seed=8)
    assert torch.equal(a.val_images, b.val_images) and not torch.equal(a.val_images, c.val_images)
    assert torch.bincount(a.val_labels).tolist() == [5, 5, 5]
    train_ids, val_ids = set(a.train_images.flatten().tolist()), set(a.val_images.flatten().tolist())
    assert not train_ids & val_ids and len(train_ids | val_ids) == 60
    assert torch.equal(a.test_images, data.test_images)
    view = a.search_view()
    assert torch.equal(view.test_images, a.val_images)  # one-shot search never sees the test split


def test_labels_out_of_range_are_a_data_error() -> None:
    data = _data()
    data.train_labels[3] = 9
    with pytest.raises(DataError, match=r"mine: train labels must lie in \[0, 3\)"):
        split_train_validation(data, 0.2, 0, "mine")
