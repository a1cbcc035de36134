"""The fixed train/validation split every cell of a run shares.

The split is stratified by class and seeded by the run's ``--split-seed`` (not the cell's seed),
so all strategies are selected on the same validation images. The test split is kept apart and
only ever used for the final accuracy of a trained trial.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from harness.components import ImageData
from harness.errors import DataError

__all__ = ["Splits", "split_train_validation"]


@dataclass
class Splits:
    """Train / validation / test views of one dataset (uint8 images, int64 labels, on the CPU)."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_names: list[str]
    augment: bool

    def search_view(self) -> ImageData:
        """What one-shot search may see: train and *validation* (in the ``test`` fields); never the
        real test split."""
        return ImageData(self.train_images, self.train_labels, self.val_images, self.val_labels,
                         self.class_names, self.augment)


def split_train_validation(data: ImageData, fraction: float, seed: int, dataset: str = "dataset") -> Splits:
    """Hold out ``fraction`` of each class of ``data.train_*`` as validation, reproducibly."""
    labels = data.train_labels.numpy()
    if labels.size == 0:
        raise DataError(f"{dataset}: the train split is empty")
    if labels.min() < 0 or labels.max() >= data.num_classes:
        raise DataError(f"{dataset}: train labels must lie in [0, {data.num_classes}), found "
                        f"{labels.min()}..{labels.max()}")
    rng = np.random.default_rng(seed)
    val_parts, train_parts = [], []
    for cls in range(data.num_classes):
        members = np.flatnonzero(labels == cls)
        if members.size == 0:
            continue
        members = rng.permutation(members)
        n_val = int(round(members.size * fraction)) if members.size > 1 else 0
        val_parts.append(members[:n_val])
        train_parts.append(members[n_val:])
    train_idx = torch.from_numpy(np.sort(np.concatenate(train_parts)))
    val_idx = torch.from_numpy(np.sort(np.concatenate(val_parts)))
    if len(train_idx) == 0:
        raise DataError(f"{dataset}: train split is empty after holding out validation; lower --val-fraction")
    if len(val_idx) == 0:
        raise DataError(f"{dataset}: validation split is empty; raise --val-fraction or use more images")
    return Splits(
        data.train_images[train_idx], data.train_labels[train_idx],
        data.train_images[val_idx], data.train_labels[val_idx],
        data.test_images, data.test_labels, list(data.class_names), data.augment,
    )
