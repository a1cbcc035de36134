"""MAdds by flop counter equal the hand formula; parameters are counted."""
from __future__ import annotations

from torch import nn

from harness.components import InputShape
from harness.measure import count_params, madds_of_builder


def test_conv_and_linear_madds_match_formula() -> None:
    shape = InputShape(3, 8, 8, 10)

    def build() -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 64, 10))

    conv = 8 * 8 * 16 * (3 * 3 * 3)  # outputs x (k*k*c_in) multiply-adds each
    linear = 16 * 64 * 10
    assert madds_of_builder(build, shape) == conv + linear
    assert count_params(build()) == 16 * 27 + 16 + 16 * 64 * 10 + 10


def test_depthwise_conv_counts_groups_forward_only() -> None:
    shape = InputShape(8, 4, 4, 2)
    depthwise = madds_of_builder(lambda: nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), shape)
    assert depthwise == 4 * 4 * 8 * 9
