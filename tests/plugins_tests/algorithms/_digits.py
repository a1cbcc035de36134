"""Search data for the one-shot algorithm tests: embedded digits, split as ``cell.data()`` gives it."""
from __future__ import annotations

from pathlib import Path

from harness.components import DatasetRequest, ImageData

__all__ = ["digits_split"]


def digits_split(max_per_class: int | None = 40, seed: int = 0) -> ImageData:
    """Embedded digits, its train split cut into (train, validation): the validation part sits in
    the ``test_*`` fields, as the core's ``cell.data()`` promises."""
    import torch
    from harness_plugins.datasets.digits import Digits

    full = Digits().load(DatasetRequest(data_dir=Path("."), max_per_class=max_per_class))
    order = torch.randperm(len(full.train_labels), generator=torch.Generator().manual_seed(seed))
    n_val = len(order) // 4
    val, train = order[:n_val], order[n_val:]
    return ImageData(full.train_images[train], full.train_labels[train], full.train_images[val],
                     full.train_labels[val], full.class_names, augment=False)
