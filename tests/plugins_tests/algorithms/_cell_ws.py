"""A minimal in-memory CellContext for the weight-sharing algorithm tests (rl, gradient).

Separate from the NAS-Bench-201 helpers' ``conftest.py`` so the two can evolve independently.
Cell state goes through a JSON round trip, as Optuna's storage would, so a non-serialisable
result fails here rather than in a real run.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from harness.components import (
    CellContext,
    DatasetRequest,
    EvaluatedArchitecture,
    ImageData,
    SearchSpace,
)

__all__ = ["WSCell", "digits_split"]


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


class WSCell(CellContext):
    def __init__(self, space: SearchSpace, data: ImageData | None, *, seed: int = 0, device: str = "cpu",
                 options: dict[str, Any] | None = None, name: str = "cell") -> None:
        self.space = space
        self._data = data
        self.seed = seed
        self.device = device
        self.options = options or {}
        self.study = SimpleNamespace(study_name=name)
        self.shape = data.shape if data is not None else None
        self.entries: list[EvaluatedArchitecture] = []
        self.state: dict[str, str] = {}
        self.costs: list[tuple[float, dict[str, Any]]] = []
        self.data_calls = 0

    def add(self, number: int, arch: dict[str, Any], accuracy: float, state: str = "complete") -> None:
        self.entries.append(EvaluatedArchitecture(number, arch, self.space.arch_id(arch), accuracy, state))
        self.entries.sort(key=lambda e: e.number)

    def history(self) -> list[EvaluatedArchitecture]:
        return list(self.entries)

    def data(self) -> ImageData | None:
        self.data_calls += 1
        return self._data

    def get_cell_state(self, key: str) -> Any:
        return json.loads(self.state[key]) if key in self.state else None

    def set_cell_state(self, key: str, value: Any) -> None:
        self.state[key] = json.dumps(value)

    def record_search_cost(self, seconds: float, **details: Any) -> None:
        json.dumps(details)
        self.costs.append((seconds, details))
