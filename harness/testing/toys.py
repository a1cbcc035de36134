"""Small, fast stand-ins a plugin's tests can run against: a space, a score over it, image data.

``TinySpace`` has every optional capability an algorithm may require except ``graph`` and
``supernet``, builds a two-layer perceptron whose width follows the architecture (so MAdds differ
between architectures), and has 3 x 3 x 3 = 27 architectures: small enough to enumerate, large
enough that a search differs from a random draw. ``tiny_score`` gives each architecture a fixed
accuracy with a single optimum (``TINY_OPTIMUM``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from harness.components import Architecture, ImageData, InputShape, SearchSpace

if TYPE_CHECKING:
    import numpy as np
    import optuna
    from torch import nn

__all__ = ["TINY_OPTIMUM", "TinySpace", "tiny_image_data", "tiny_score"]

_DECISIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("width", ("narrow", "medium", "wide")),
    ("act", ("relu", "tanh", "none")),
    ("depth", ("one", "two", "three")),
)
_WIDTHS = {"narrow": 4, "medium": 8, "wide": 16}

#: The architecture with the highest :func:`tiny_score`.
TINY_OPTIMUM: Architecture = {"width": "wide", "act": "relu", "depth": "two"}


class TinySpace(SearchSpace):
    """Three categorical decisions; the architecture dict's keys are :meth:`decisions`' names."""

    capabilities: ClassVar[frozenset[str]] = frozenset({"sample", "mutate", "enumerate", "encode", "decisions"})

    def decisions(self) -> Sequence[tuple[str, Sequence[Any]]]:
        return [(name, list(options)) for name, options in _DECISIONS]

    def suggest(self, trial: optuna.Trial) -> Architecture:
        return {name: trial.suggest_categorical(name, options) for name, options in _DECISIONS}

    def sample(self, rng: np.random.Generator) -> Architecture:
        return {name: options[int(rng.integers(len(options)))] for name, options in _DECISIONS}

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        name, options = _DECISIONS[int(rng.integers(len(_DECISIONS)))]
        others = [o for o in options if o != arch[name]]
        return {**arch, name: others[int(rng.integers(len(others)))]}

    def enumerate(self) -> Sequence[Architecture]:
        import itertools

        return [
            dict(zip((n for n, _ in _DECISIONS), combo))
            for combo in itertools.product(*(options for _, options in _DECISIONS))
        ]

    def encode(self, arch: Architecture) -> np.ndarray:
        import numpy as np

        return np.concatenate([np.eye(len(options))[options.index(arch[name])] for name, options in _DECISIONS])

    def madds(self, arch: Architecture, shape: InputShape) -> float:
        """The built model's multiply-adds (analytic: two or three linear layers)."""
        width = _WIDTHS[arch["width"]]
        hidden = (_DECISIONS[2][1].index(arch["depth"])) * width * width
        return float(shape.channels * shape.height * shape.width * width + hidden + width * shape.num_classes)

    def build(self, arch: Architecture, shape: InputShape) -> nn.Module:
        from torch import nn

        width = _WIDTHS[arch["width"]]
        act: type[nn.Module] = {"relu": nn.ReLU, "tanh": nn.Tanh, "none": nn.Identity}[arch["act"]]
        layers: list[nn.Module] = [nn.Flatten(), nn.Linear(shape.channels * shape.height * shape.width, width), act()]
        for _ in range(_DECISIONS[2][1].index(arch["depth"])):
            layers += [nn.Linear(width, width), act()]
        return nn.Sequential(*layers, nn.Linear(width, shape.num_classes))


def tiny_score(arch: Architecture) -> float:
    """A fixed accuracy in (0, 1) for each :class:`TinySpace` architecture: each decision adds
    its own term (so one-edit neighbours of good architectures are good), best at
    :data:`TINY_OPTIMUM`."""
    terms = {
        "width": {"narrow": 0.0, "medium": 0.1, "wide": 0.2},
        "act": {"relu": 0.2, "tanh": 0.1, "none": 0.0},
        "depth": {"one": 0.05, "two": 0.15, "three": 0.1},
    }
    return 0.3 + sum(terms[name][arch[name]] for name in terms)


def tiny_image_data(classes: int = 3, per_class: int = 8, size: int = 8, channels: int = 1, seed: int = 0) -> ImageData:
    """Random ``uint8`` images whose class is a bright square's position, split as search
    algorithms and generators receive data: ``train_*`` for training, ``test_*`` for validation."""
    import torch

    g = torch.Generator().manual_seed(seed)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(classes).repeat_interleave(n)
        images = torch.randint(0, 60, (len(labels), channels, size, size), generator=g, dtype=torch.uint8)
        for i, label in enumerate(labels.tolist()):
            at = label * max(1, size // classes) % max(1, size - 1)
            images[i, :, at : at + 2, at : at + 2] = 250
        return images, labels

    train_x, train_y = make(per_class)
    val_x, val_y = make(max(2, per_class // 2))
    return ImageData(train_x, train_y, val_x, val_y, [f"class{c}" for c in range(classes)], augment=False)
