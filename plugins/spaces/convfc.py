"""``convfc``: the brief's hand-designed CNN of convolution and fully connected layers.

The Optuna sampler chooses every decision (define-by-run, so per-layer choices exist only for
layers that exist): 1..``max_conv`` conv layers, each with its filters, kernel size and an
optional 2x2 max-pooling; a dropout rate; 1..``max_fc`` fully connected layers with their units.
Conv layers use ``same`` padding and BatchNorm + ReLU; pooling is skipped once the feature map is
1x1, so every architecture builds on any input size (8x8 digits to 64x64 Tiny-ImageNet).
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from harness import hookimpl
from harness.components import Architecture, InputShape, Options, SearchSpace, SpaceSpec
from harness.errors import UsageError

if TYPE_CHECKING:
    import optuna
    from torch import nn

FILTERS = (16, 32, 64, 128)
KERNELS = (3, 5)
UNITS = (32, 64, 128, 256)
DROPOUT_RANGE = (0.0, 0.5)


class ConvFCSpace(SearchSpace):
    capabilities = frozenset()

    def __init__(self, max_conv: int = 3, max_fc: int = 2) -> None:
        self.max_conv = max_conv
        self.max_fc = max_fc

    def suggest(self, trial: optuna.Trial) -> Architecture:
        arch: dict[str, Any] = {"conv": [], "fc": []}
        n_conv = trial.suggest_int("n_conv", 1, self.max_conv)
        for i in range(n_conv):
            arch["conv"].append({
                "filters": trial.suggest_categorical(f"conv{i}_filters", FILTERS),
                "kernel": trial.suggest_categorical(f"conv{i}_kernel", KERNELS),
                "pool": trial.suggest_categorical(f"conv{i}_pool", (False, True)),
            })
        arch["dropout"] = trial.suggest_float("dropout", *DROPOUT_RANGE)
        n_fc = trial.suggest_int("n_fc", 1, self.max_fc)
        arch["fc"] = [trial.suggest_categorical(f"fc{i}_units", UNITS) for i in range(n_fc)]
        return arch

    def build(self, arch: Architecture, shape: InputShape) -> nn.Module:
        from torch import nn

        layers: list[nn.Module] = []
        channels, height, width = shape.channels, shape.height, shape.width
        for conv in arch["conv"]:
            layers += [
                nn.Conv2d(channels, conv["filters"], conv["kernel"], padding=conv["kernel"] // 2, bias=False),
                nn.BatchNorm2d(conv["filters"]),
                nn.ReLU(inplace=True),
            ]
            channels = conv["filters"]
            if conv["pool"] and min(height, width) >= 2:
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
        layers.append(nn.Flatten())
        features = channels * height * width
        for units in arch["fc"]:
            layers += [nn.Dropout(arch["dropout"]), nn.Linear(features, units), nn.ReLU(inplace=True)]
            features = units
        layers += [nn.Dropout(arch["dropout"]), nn.Linear(features, shape.num_classes)]
        return nn.Sequential(*layers)


@hookimpl
def harness_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("convfc space")
    group.add_argument("--convfc-max-conv", type=int, default=3, help="most conv layers (default 3)")
    group.add_argument("--convfc-max-fc", type=int, default=2, help="most fully connected layers (default 2)")


def _factory(options: Options) -> ConvFCSpace:
    max_conv, max_fc = int(options.get("convfc_max_conv", 3)), int(options.get("convfc_max_fc", 2))
    if max_conv < 1 or max_fc < 1:
        raise UsageError(f"--convfc-max-conv and --convfc-max-fc must be at least 1, got {max_conv}, {max_fc}")
    return ConvFCSpace(max_conv=max_conv, max_fc=max_fc)


@hookimpl
def harness_spaces() -> list[SpaceSpec]:
    return [SpaceSpec(name="convfc", description="the brief's conv + FC network (sampler decides everything)",
                      factory=_factory)]
