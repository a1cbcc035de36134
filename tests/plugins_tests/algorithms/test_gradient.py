"""The gradient algorithm: the MAdds term moves the relaxation, and the search runs on digits."""
from __future__ import annotations

import importlib.metadata
from types import SimpleNamespace
from typing import Any, Mapping, Sequence

import pytest
import torch
from _cell_ws import WSCell, digits_split
from harness_plugins.algorithms import gradient
from harness_plugins.algorithms._darts import DartsConfig, darts_search
from harness_plugins.algorithms.gradient import GradientAlgorithm
from harness_plugins.spaces.mbconv import MBConvSpace
from torch import nn

from harness.components import ImageData
from harness.errors import UsageError
from harness.supernet import Supernet

COSTS = {"d0": [3e6, 1e6, 2e6], "d1": [2e6, 2.5e6, 0.5e6, 1e6]}  # cheapest: d0 -> "o1", d1 -> "o2"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on a loaded 2-core machine run far faster with one intra-op thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class TiedSupernet(Supernet):
    """Every option computes the same function, so cross-entropy cannot tell them apart: only
    the MAdds term can move the architecture."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(64, 10)
        for name, costs in COSTS.items():
            self.register_buffer(f"cost_{name}", torch.tensor(costs))

    def decisions(self) -> Sequence[tuple[str, Sequence[Any]]]:
        return [(name, [f"o{k}" for k in range(len(costs))]) for name, costs in COSTS.items()]

    def forward(self, x: torch.Tensor, arch: Mapping[str, Any]) -> torch.Tensor:  # type: ignore[override]
        return self.head(x.flatten(1))

    def forward_mixed(self, x: torch.Tensor, probs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.head(x.flatten(1))

    def expected_madds(self, probs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return sum((probs[name] * getattr(self, f"cost_{name}")).sum() for name in COSTS)

    def op_parameters(self, decision: str, option: Any) -> list[nn.Parameter]:
        return []


def random_images(n: int = 128) -> ImageData:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    return ImageData(images, labels, images.clone(), labels.clone(), [str(c) for c in range(10)], augment=False)


def tied_search(madds_lambda: float) -> dict[str, Any]:
    torch.manual_seed(0)
    config = DartsConfig(epochs=40, batch_size=32, madds_lambda=madds_lambda, arch_lr=0.05)
    return darts_search(TiedSupernet(), random_images(), config, seed=0, device="cpu")


def test_lambda_drives_tied_options_to_the_cheapest() -> None:
    result = tied_search(madds_lambda=0.5)
    assert result["arch"] == {"d0": "o1", "d1": "o2"}
    assert result["probs"]["d0"][1] > 0.5 and result["probs"]["d1"][2] > 0.5
    assert result["derived_madds"] == 1e6 + 0.5e6


def test_without_lambda_tied_options_stay_uniform() -> None:
    result = tied_search(madds_lambda=0.0)
    for name, costs in COSTS.items():
        assert max(abs(p - 1 / len(costs)) for p in result["probs"][name]) < 1e-2


def test_search_runs_on_digits_and_records_its_cost_once() -> None:
    space = MBConvSpace(num_layers=3, width=8)
    cell = WSCell(space, digits_split(max_per_class=20), seed=2)
    algo = GradientAlgorithm(DartsConfig(epochs=1, batch_size=32, madds_lambda=0.1))
    algo.prepare(cell)
    algo.prepare(cell)  # resumed: no second search
    assert cell.data_calls == 1 and len(cell.costs) == 1
    arch = algo.propose(SimpleNamespace(number=0), cell)
    assert space.arch_id(arch)
    seconds, details = cell.costs[0]
    assert seconds > 0 and details["algorithm"] == "gradient" and details["arch"] == arch
    assert 0.0 <= details["skip_fraction"] <= 1.0
    assert set(details["probs"]) == {name for name, _ in space.decisions()}
    assert details["derived_madds"] > 0 and details["steps"] > 0
    assert GradientAlgorithm().propose(SimpleNamespace(number=1), cell) == arch


def test_options_are_checked_and_plugin_is_registered() -> None:
    (spec,) = gradient.harness_algorithms()
    assert spec.factory({"gradient_lambda": 0.2}).config.madds_lambda == 0.2
    with pytest.raises(UsageError, match="gradient-lambda"):
        spec.factory({"gradient_lambda": -1.0})
    assert GradientAlgorithm().incompatible(MBConvSpace(), None) is None
    assert importlib.metadata.entry_points(group="harness")["gradient"].value == "harness_plugins.algorithms.gradient"
