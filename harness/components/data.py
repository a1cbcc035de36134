"""Image datasets: what a dataset plugin receives and returns."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.components.base import Options

if TYPE_CHECKING:
    import torch

__all__ = ["DatasetRequest", "ImageData", "ImageDataset", "InputShape"]


@dataclass(frozen=True)
class InputShape:
    """What a model must accept and produce: images of ``channels x height x width``, logits over
    ``num_classes``."""

    channels: int
    height: int
    width: int
    num_classes: int


@dataclass(frozen=True)
class DatasetRequest:
    """What :meth:`ImageDataset.load` gets.

    ``data_dir`` is the folder given with ``--data-dir`` (datasets look for their official layout
    inside it); ``download`` allows fetching when online; ``max_per_class`` subsamples the train
    split for quick runs (``None``: all); ``options`` holds every parsed CLI option.
    """

    data_dir: Path
    download: bool = False
    max_per_class: int | None = None
    options: Options = field(default_factory=dict)


@dataclass
class ImageData:
    """A whole image dataset held in memory.

    Images are ``uint8`` tensors ``N x C x H x W`` (decoded once; the training engine normalises
    and augments per batch on the device); labels are ``int64`` in ``[0, num_classes)``. The
    harness splits ``train`` into (train, validation) itself, with a fixed seed, so every cell sees
    the same split; ``test`` is used only for the final accuracy of a trained trial.
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_names: list[str]
    #: Whether random crop + horizontal flip make sense (natural images yes, digits no).
    augment: bool = True

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def shape(self) -> InputShape:
        _, c, h, w = self.train_images.shape
        return InputShape(int(c), int(h), int(w), self.num_classes)


class ImageDataset(ABC):
    """A dataset of labelled images, read from its official on-disk format."""

    @abstractmethod
    def load(self, request: DatasetRequest) -> ImageData:
        """Read (and if allowed, download) the data. Raise :class:`harness.errors.DataError` with
        a one-line message naming the file for anything missing or corrupt."""
