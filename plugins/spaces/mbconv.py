"""``mbconv``: a MobileNetV2 / ProxylessNAS-style layer-wise space for small images.

The skeleton is fixed (stride-1 3x3 stem of ``w`` channels; three stages of widths ``w, 2w, 4w``
with strides 1, 2, 2; global average pooling and a linear head); each of the ``L`` layers picks
one of 7 options: an MBConv block with kernel 3/5/7 and expansion 3/6 (``k3_e3`` ... ``k7_e6``),
or ``skip``. ``skip`` is offered only where the layer keeps the shape (every layer except the
first of stages 1 and 2, which halve the resolution and double the width): those two layers have
6 options. This is ProxylessNAS's "zero layer" choice, restricted so that every child builds.

Options: ``--mbconv-layers`` (L, default 6: two per stage) and ``--mbconv-width`` (w, default 16),
small enough for CPU tests on 8x8 digits; 32x32 images end at 8x8 before pooling.

Architecture: ``{"layer_0": "k3_e3", ..., "layer_{L-1}": "skip"}``; ``arch_id`` is the options
joined in layer order by ``-`` (``k3_e3-skip-k5_e6-...``). Capabilities: suggest, sample,
mutate (exactly one layer to a different option), encode (concatenated one-hot per layer),
decisions, supernet (:class:`harness_plugins.spaces._mbconv_supernet.MBConvSupernet`). It does
not enumerate (7^4 x 6^2 = 86,436 children at the defaults; far more beyond).
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Sequence

from harness import hookimpl
from harness.components import Architecture, InputShape, Options, SearchSpace, SpaceSpec

if TYPE_CHECKING:
    import numpy as np
    import optuna
    from harness_plugins.spaces._mbconv_ops import NetworkPlan
    from harness_plugins.spaces._mbconv_supernet import MBConvSupernet
    from torch import nn

__all__ = ["DEFAULT_LAYERS", "DEFAULT_WIDTH", "MBConvSpace"]

DEFAULT_LAYERS = 6
DEFAULT_WIDTH = 16
# Mirrors _mbconv_ops (kept here so `harness list` and `decisions()` need no torch import).
_CONV_OPTIONS = tuple(f"k{k}_e{e}" for k in (3, 5, 7) for e in (3, 6))
_SKIP = "skip"


class MBConvSpace(SearchSpace):
    capabilities = frozenset({"sample", "mutate", "encode", "decisions", "supernet"})

    def __init__(self, num_layers: int = DEFAULT_LAYERS, width: int = DEFAULT_WIDTH) -> None:
        if num_layers < 3:
            raise ValueError(f"--mbconv-layers must be at least 3 (one per stage), got {num_layers}")
        if width < 1:
            raise ValueError(f"--mbconv-width must be positive, got {width}")
        self.num_layers = num_layers
        self.width = width
        stage_sizes = [num_layers // 3 + (1 if s < num_layers % 3 else 0) for s in range(3)]
        firsts = {sum(stage_sizes[:s]) for s in (1, 2)}  # layers that halve resolution, double width
        self._decisions = [
            (f"layer_{i}", _CONV_OPTIONS + (() if i in firsts else (_SKIP,))) for i in range(num_layers)
        ]

    # -- decisions and identities ------------------------------------------------------------

    def decisions(self) -> Sequence[tuple[str, Sequence[Any]]]:
        return [(name, list(options)) for name, options in self._decisions]

    def arch_id(self, arch: Architecture) -> str:
        self._check(arch)
        return "-".join(arch[name] for name, _ in self._decisions)

    def suggest(self, trial: optuna.Trial) -> Architecture:
        return {name: trial.suggest_categorical(name, options) for name, options in self._decisions}

    def sample(self, rng: np.random.Generator) -> Architecture:
        return {name: options[int(rng.integers(len(options)))] for name, options in self._decisions}

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        self._check(arch)
        name, options = self._decisions[int(rng.integers(len(self._decisions)))]
        others = [o for o in options if o != arch[name]]
        return {**arch, name: others[int(rng.integers(len(others)))]}

    def encode(self, arch: Architecture) -> np.ndarray:
        import numpy as np

        self._check(arch)
        parts = []
        for name, options in self._decisions:
            onehot = np.zeros(len(options), dtype=np.float32)
            onehot[options.index(arch[name])] = 1.0
            parts.append(onehot)
        return np.concatenate(parts)

    # -- models --------------------------------------------------------------------------------

    def plan(self, shape: InputShape) -> NetworkPlan:
        """The fixed skeleton for ``shape`` (widths, strides, resolutions per layer)."""
        from harness_plugins.spaces._mbconv_ops import plan_network

        return plan_network(shape, self.num_layers, self.width)

    def build(self, arch: Architecture, shape: InputShape) -> nn.Module:
        from harness_plugins.spaces._mbconv_ops import MBConvNet

        self._check(arch)
        return MBConvNet(self.plan(shape), arch)

    def supernet(self, shape: InputShape) -> MBConvSupernet:
        from harness_plugins.spaces._mbconv_supernet import MBConvSupernet

        return MBConvSupernet(self.plan(shape))

    def _check(self, arch: Architecture) -> None:
        """Errors name the culprit: a wrong architecture is a bug of whoever made it."""
        for name, options in self._decisions:
            if arch.get(name) not in options:
                raise ValueError(f"mbconv: {name}={arch.get(name)!r} is not one of {', '.join(options)}")
        extra = set(arch) - {name for name, _ in self._decisions}
        if extra:
            raise ValueError(f"mbconv: unknown decisions {sorted(extra)}")


@hookimpl
def harness_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("mbconv space")
    group.add_argument("--mbconv-layers", type=int, default=DEFAULT_LAYERS,
                       help=f"searchable layers, split over 3 stages (default {DEFAULT_LAYERS})")
    group.add_argument("--mbconv-width", type=int, default=DEFAULT_WIDTH,
                       help=f"stem and first-stage width w; stages are w, 2w, 4w (default {DEFAULT_WIDTH})")


def _factory(options: Options) -> MBConvSpace:
    from harness.errors import UsageError

    try:
        return MBConvSpace(options.get("mbconv_layers", DEFAULT_LAYERS), options.get("mbconv_width", DEFAULT_WIDTH))
    except ValueError as error:
        raise UsageError(str(error)) from None


@hookimpl
def harness_spaces() -> list[SpaceSpec]:
    return [SpaceSpec(name="mbconv", factory=_factory,
                      description="MobileNetV2-style layer-wise space: kernel 3/5/7 x expand 3/6 or skip per layer")]
