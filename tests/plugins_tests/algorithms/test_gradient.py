"""The gradient algorithm: the MAdds term moves the relaxation, and the search runs on digits."""
from __future__ import annotations

import importlib.metadata
from typing import Any, Mapping, Sequence

import pytest
import torch
from _digits import digits_split
from harness_plugins.algorithms import gradient
from harness_plugins.algorithms._darts import DartsConfig, darts_search
from harness_plugins.algorithms.gradient import GradientAlgorithm
from harness_plugins.spaces.mbconv import MBConvSpace
from torch import nn

from harness.components import ImageData
from harness.errors import UsageError
from harness.supernet import Supernet
from harness.testing import make_cell

COSTS = {"d0": [3e6, 1e6, 2e6], "d1": [2e6, 2.5e6, 0.5e6, 1e6]}  # cheapest: d0 -> "o1", d1 -> "o2"
#: Each option scales the logits: only "o0" lets the classifier through, every other option
#: silences it (uniform predictions), so cross-entropy prefers "o0" and the MAdds term the cheapest.
SCALES = {"d0": [1.0, 0.0, 0.0], "d1": [1.0, 0.0, 0.0, 0.0]}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on a loaded 2-core machine run far faster with one intra-op thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class ScaledSupernet(Supernet):
    """A linear classifier whose logits each decision's mixed op scales by ``sum_k p_k * s_k``:
    the architecture gets a cross-entropy gradient (toward "o0") and a MAdds gradient (toward
    the cheapest option), so the test sees which term wins for a given lambda."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(64, 10)
        for name, costs in COSTS.items():
            self.register_buffer(f"cost_{name}", torch.tensor(costs))
            self.register_buffer(f"scale_{name}", torch.tensor(SCALES[name]))

    def decisions(self) -> Sequence[tuple[str, Sequence[Any]]]:
        return [(name, [f"o{k}" for k in range(len(costs))]) for name, costs in COSTS.items()]

    def forward(self, x: torch.Tensor, arch: Mapping[str, Any]) -> torch.Tensor:  # type: ignore[override]
        onehot = {name: torch.nn.functional.one_hot(torch.tensor(int(arch[name][1:])), len(COSTS[name])).float()
                  for name in COSTS}
        return self.forward_mixed(x, onehot)

    def forward_mixed(self, x: torch.Tensor, probs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        scale = torch.ones(())
        for name in COSTS:
            scale = scale * (probs[name] * getattr(self, f"scale_{name}")).sum()
        return self.head(x.flatten(1)) * scale

    def expected_madds(self, probs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return sum((probs[name] * getattr(self, f"cost_{name}")).sum() for name in COSTS)

    def op_parameters(self, decision: str, option: Any) -> list[nn.Parameter]:
        return []


def learnable_images(n: int = 128) -> ImageData:
    """Random 8x8 images labelled by a fixed linear rule, so a linear head can learn them."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=g)
    rule = torch.randn(64, 10, generator=g)
    labels = ((images.flatten(1).float() / 255 - 0.5) @ rule).argmax(dim=1)
    return ImageData(images, labels, images.clone(), labels.clone(), [str(c) for c in range(10)], augment=False)


def scaled_search(madds_lambda: float) -> dict[str, Any]:
    torch.manual_seed(0)
    config = DartsConfig(epochs=40, batch_size=32, madds_lambda=madds_lambda, arch_lr=0.05)
    return darts_search(ScaledSupernet(), learnable_images(), config, seed=0, device="cpu")


def test_without_lambda_cross_entropy_chooses_the_informative_options() -> None:
    result = scaled_search(madds_lambda=0.0)
    assert result["arch"] == {"d0": "o0", "d1": "o0"}
    assert result["probs"]["d0"][0] > 0.5 and result["probs"]["d1"][0] > 0.5


def test_lambda_makes_the_cheapest_options_win_over_cross_entropy() -> None:
    result = scaled_search(madds_lambda=5.0)
    assert result["arch"] == {"d0": "o1", "d1": "o2"}
    assert result["probs"]["d0"][1] > 0.5 and result["probs"]["d1"][2] > 0.5
    assert result["derived_madds"] == 1e6 + 0.5e6


@pytest.mark.slow
def test_search_runs_on_digits_and_records_its_cost_once() -> None:
    space = MBConvSpace(num_layers=3, width=8)
    config = DartsConfig(epochs=1, batch_size=32, madds_lambda=0.1)
    cell = make_cell(space, GradientAlgorithm(config), lambda arch: 0.5, data=digits_split(max_per_class=20), seed=2)
    assert cell.run(1) == "done"
    assert cell.run(1, algorithm=GradientAlgorithm(config)) == "done"  # resumed: no second search
    assert cell.data_calls == 1 and len(cell.search_costs()) == 1
    details = cell.search_costs()[0]
    first, second = cell.history()
    assert first.arch == second.arch == details["arch"] and first.arch_id == details["arch_id"]
    assert details["seconds"] > 0 and details["algorithm"] == "gradient"
    assert 0.0 <= details["skip_fraction"] <= 1.0
    assert set(details["probs"]) == {name for name, _ in space.decisions()}
    assert details["derived_madds"] > 0 and details["steps"] > 0


def test_options_are_checked_and_plugin_is_registered() -> None:
    (spec,) = gradient.harness_algorithms()
    assert spec.factory({"gradient_lambda": 0.2}).config.madds_lambda == 0.2
    with pytest.raises(UsageError, match="gradient-lambda"):
        spec.factory({"gradient_lambda": -1.0})
    assert GradientAlgorithm().incompatible(MBConvSpace(), None) is None
    assert importlib.metadata.entry_points(group="harness")["gradient"].value == "harness_plugins.algorithms.gradient"
