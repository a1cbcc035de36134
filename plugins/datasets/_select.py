"""Checks and subsampling shared by the dataset plugins.

``max_per_class`` keeps the *first* k images of each class in file order: deterministic without a
seed, and the same images whatever the cell seed, so quick runs stay comparable.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from harness.errors import DataError, UsageError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["check_labels", "first_per_class", "flat_rows_to_images", "labels_array"]


def first_per_class(labels: np.ndarray, k: int | None) -> np.ndarray:
    """Indices (ascending) of the first ``k`` items of each label; all indices if ``k`` is None."""
    import numpy as np

    if k is None:
        return np.arange(len(labels))
    if k < 1:
        raise UsageError(f"--max-per-class must be at least 1, got {k}")
    # a stable sort groups each class while keeping file order inside it
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank = np.arange(len(labels)) - starts
    return np.sort(order[rank < k])


def check_labels(labels: np.ndarray, num_classes: int, path: Path, fix: str,
                 *, class_names: Sequence[str] | None = None, require_all: bool = True) -> None:
    """Raise :class:`DataError` (naming ``path``) if a label is outside ``[0, num_classes)`` or,
    with ``require_all``, if a class has no image."""
    import numpy as np

    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise DataError(f"label {int(bad)} out of range [0, {num_classes}) in {path}; {fix}")
    if require_all:
        counts = np.bincount(labels, minlength=num_classes)
        if (counts == 0).any():
            empty = int(np.flatnonzero(counts == 0)[0])
            name = f" ({class_names[empty]!r})" if class_names is not None else ""
            raise DataError(f"class {empty}{name} has no image in {path}; {fix}")


def flat_rows_to_images(data: object, size: int, path: Path, fix: str) -> np.ndarray:
    """``N x (3*size*size)`` uint8 rows (channel-major, as CIFAR and ImageNet16 store them) as an
    ``N x 3 x size x size`` array; anything else is a :class:`DataError` naming ``path``."""
    import numpy as np

    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3 * size * size:
        found = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"corrupt {path}: 'data' should be a uint8 N x {3 * size * size} array, "
                        f"found {found}; {fix}")
    if not data.flags.writeable:  # protocol-5 pickles give read-only arrays; torch wants writable
        data = data.copy()
    return data.reshape(-1, 3, size, size)


def labels_array(values: object, count: int, key: str, path: Path, fix: str) -> np.ndarray:
    """The labels stored under ``key`` as an int64 array of length ``count`` (one per image)."""
    import numpy as np

    try:
        labels = np.asarray(values, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"corrupt {path}: {key!r} is not a list of integers ({exc}); {fix}") from exc
    if labels.ndim != 1 or len(labels) != count:
        raise DataError(f"corrupt {path}: {key!r} has {labels.size} labels for {count} images; {fix}")
    return labels
