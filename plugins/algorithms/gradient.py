"""``gradient``: DARTS / FBNet-style one-shot search with a resource-aware loss.

``prepare`` searches once per cell on the space's supernet (softmax relaxation, first-order
alternating updates, loss ``CE + lambda * E[MAdds]`` with lambda per million MAdds; constants
and details in :mod:`harness_plugins.algorithms._darts`), derives the argmax architecture,
stores it in the cell state (a resumed cell does not search again) and records the search cost
with the derived architecture, its skip share and the final probabilities, so collapse to
parameter-free ops shows in the cell table. Every trial then trains the derived architecture
(the sampler still chooses its hyperparameters).

Options: ``--gradient-epochs`` (default 3); ``--gradient-lambda`` (per million MAdds, default 0:
plain DARTS; 0.1 trades 0.1 nats of cross-entropy for 1M MAdds; at the mbconv defaults a child
costs about 0.2-2M MAdds on 8x8 digits, 3-33M on 32x32 images); ``--gradient-batch-size``
(64); ``--gradient-weight-lr`` (0.025); ``--gradient-arch-lr`` (3e-4, DARTS's: with small
budgets the logits move little, so the recorded ``mean_max_prob`` says how decided the search
was).
"""
from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING, Any

from harness import hookimpl
from harness.components import (
    AlgorithmSpec,
    Architecture,
    CellContext,
    ImageData,
    Options,
    SearchAlgorithm,
)

if TYPE_CHECKING:
    import optuna
    from harness_plugins.algorithms._darts import DartsConfig

__all__ = ["GradientAlgorithm"]

STATE_KEY = "gradient_search"


class GradientAlgorithm(SearchAlgorithm):
    requires = frozenset({"decisions", "supernet"})

    def __init__(self, config: DartsConfig | None = None) -> None:
        from harness_plugins.algorithms._darts import DartsConfig

        self.config = config or DartsConfig()

    @property
    def trains_on_images(self) -> bool:
        return True  # the supernet (on a table: the run's --search-data images)

    def prepare(self, cell: CellContext) -> None:
        from harness_plugins.algorithms._darts import darts_search
        from harness_plugins.algorithms._oneshot import build_supernet, search_once

        def search(data: ImageData) -> dict[str, Any]:
            # the supernet is built for the data it trains on (on a table: the --search-data images)
            supernet = build_supernet(cell.space, data.shape, cell.seed, cell.device)
            result = darts_search(supernet, data, self.config, cell.seed, cell.device)
            ranking = [{"arch_id": cell.space.arch_id(e["arch"]), "score": e["score"]} for e in result["ranking"]]
            return {**result, "arch_id": cell.space.arch_id(result["arch"]), "ranking": ranking}

        search_once(cell, STATE_KEY, search, "gradient search", algorithm="gradient")

    def propose(self, trial: optuna.Trial, cell: CellContext) -> Architecture:
        from harness_plugins.algorithms._oneshot import derived_arch

        return derived_arch(cell, STATE_KEY, self.prepare)


@hookimpl
def harness_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("gradient algorithm (DARTS / FBNet one-shot)")
    group.add_argument("--gradient-epochs", type=int, default=3, help="supernet search epochs (default 3)")
    group.add_argument("--gradient-lambda", type=float, default=0.0,
                       help="weight of expected MAdds in the architecture loss, per million MAdds "
                            "(default 0: accuracy only)")
    group.add_argument("--gradient-batch-size", type=int, default=64, help="search batch size (default 64)")
    group.add_argument("--gradient-weight-lr", type=float, default=0.025,
                       help="SGD learning rate of the supernet weights (default 0.025, DARTS)")
    group.add_argument("--gradient-arch-lr", type=float, default=3e-4,
                       help="Adam learning rate of the architecture logits (default 3e-4, DARTS)")


def _factory(options: Options) -> GradientAlgorithm:
    from harness_plugins.algorithms._darts import DartsConfig

    from harness.errors import UsageError

    config = DartsConfig(
        epochs=options.get("gradient_epochs", 3),
        madds_lambda=options.get("gradient_lambda", 0.0),
        batch_size=options.get("gradient_batch_size", 64),
        weight_lr=options.get("gradient_weight_lr", 0.025),
        arch_lr=options.get("gradient_arch_lr", 3e-4),
    )
    for option, value in (("--gradient-weight-lr", config.weight_lr), ("--gradient-arch-lr", config.arch_lr)):
        if not (math.isfinite(value) and value > 0):
            raise UsageError(f"{option} {value}: must be a positive number")
    if not math.isfinite(config.madds_lambda):
        raise UsageError(f"--gradient-lambda {config.madds_lambda}: must be a finite number >= 0")
    if config.epochs < 1 or config.batch_size < 2 or config.madds_lambda < 0:
        raise UsageError("gradient: --gradient-epochs must be >= 1, --gradient-batch-size >= 2, "
                         "--gradient-lambda >= 0")
    return GradientAlgorithm(config)


@hookimpl
def harness_algorithms() -> list[AlgorithmSpec]:
    return [AlgorithmSpec(name="gradient", factory=_factory,
                          description="DARTS/FBNet one-shot: softmax relaxation, CE + lambda * MAdds, argmax")]
