"""``rl``: ENAS-style REINFORCE with an LSTM controller, one token per decision of the space.

Constants (ENAS, Pham et al., ICML 2018, and its code): LSTM 64 units, 1 layer, Adam lr 0.0035, reward =
validation accuracy, baseline ``b <- b - (1 - 0.99)(b - R)`` (starting at the first reward),
loss ``-log p(arch) (R - b) - 1e-4 * entropy``. Details in
:mod:`harness_plugins.algorithms._controller`.

Two modes (``--rl-mode``):

- ``child`` (multi-trial, the default): each trial trains the child the controller samples; the
  rewards are the trained trials' validation accuracies from ``cell.history()``. The controller
  keeps no state of its own: it is rebuilt by *replaying* the history (init from the cell seed,
  one REINFORCE update per finished trial, oldest first; pruned trials count with their last
  reported accuracy). The replay is cached and extended with new trials only; if another process
  finished a trial that sorts before ones already replayed, the replay restarts, so every process
  holds the same controller for the same history. A trial's sample is seeded by (cell seed, trial
  number).
- ``shared`` (ENAS weight sharing, one-shot; needs the space's ``supernet``): ``prepare`` trains
  shared weights and the controller in alternation (:mod:`._enas_shared`), derives the best of
  ``--rl-derive-samples`` sampled children plus the greedy one by shared-weight validation
  accuracy, stores it in the cell state and records the search cost; every trial trains it.
  Options ``--rl-epochs`` (10), ``--rl-controller-steps`` (20 per epoch), ``--rl-batch-size``
  (64), ``--rl-weight-lr`` (0.05) and ``--rl-derive-samples`` (16) set its budget. A shared-weight
  epoch costs about one child-training epoch; on digits with the default mbconv space, 3 epochs
  leave shared-weight children near chance (0.2-0.4 validation accuracy), 10 reach about 0.9.
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
    ImageDataset,
    Options,
    SearchAlgorithm,
    SearchSpace,
    TabularBenchmark,
)

if TYPE_CHECKING:
    import optuna
    from harness_plugins.algorithms._controller import Controller, Reinforce
    from harness_plugins.algorithms._enas_shared import EnasConfig

__all__ = ["MODES", "RLAlgorithm"]

MODES = ("child", "shared")
STATE_KEY = "rl_shared_search"


class _Replay:
    """The controller after REINFORCE updates for the trials in ``replayed`` (in that order)."""

    def __init__(self, controller: Controller, reinforce: Reinforce) -> None:
        self.controller = controller
        self.reinforce = reinforce
        self.replayed: list[int] = []


class RLAlgorithm(SearchAlgorithm):
    requires = frozenset({"decisions"})

    def __init__(self, mode: str = "child", config: EnasConfig | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"--rl-mode must be one of {', '.join(MODES)}, got {mode!r}")
        from harness_plugins.algorithms._enas_shared import EnasConfig

        self.mode = mode
        self.config = config or EnasConfig()
        self._replays: dict[Any, _Replay] = {}

    def incompatible(self, space: SearchSpace, dataset: ImageDataset | TabularBenchmark) -> str | None:
        reason = super().incompatible(space, dataset)
        if reason or self.mode == "child":
            return reason
        if "supernet" not in space.capabilities:
            return "space lacks supernet (needed by --rl-mode shared)"
        return None

    @property
    def trains_on_images(self) -> bool:
        return self.mode == "shared"  # the supernet (on a table: the run's --search-data images)

    # -- shared mode -----------------------------------------------------------------------------

    def prepare(self, cell: CellContext) -> None:
        if self.mode != "shared":
            return
        from harness_plugins.algorithms._enas_shared import enas_search
        from harness_plugins.algorithms._oneshot import search_once

        # the supernet is built for the data it trains on (on a table: the --search-data images)
        search_once(cell, STATE_KEY, lambda data: enas_search(cell.space, data.shape, data, self.config, cell.seed,
                                                              cell.device),
                    "rl shared mode", algorithm="rl", mode="shared")

    # -- both modes ------------------------------------------------------------------------------

    def propose(self, trial: optuna.Trial, cell: CellContext) -> Architecture:
        if self.mode == "shared":
            from harness_plugins.algorithms._oneshot import derived_arch

            return derived_arch(cell, STATE_KEY, self.prepare)
        import torch

        replay = self.replay(cell)
        generator = torch.Generator().manual_seed((cell.seed * 1_000_003 + trial.number) % 2**63)
        return replay.controller.sample(generator)

    def replay(self, cell: CellContext) -> _Replay:
        """The controller for the cell's current history (cached; see the module docstring)."""
        key = (getattr(cell.study, "study_name", None), cell.seed)
        finished = [e for e in cell.history() if e.accuracy is not None and math.isfinite(e.accuracy)]
        numbers = [e.number for e in finished]
        replay = self._replays.get(key)
        if replay is None or numbers[:len(replay.replayed)] != replay.replayed:
            replay = self._replays[key] = self._fresh(cell)
        for entry in finished[len(replay.replayed):]:
            replay.reinforce.update(entry.arch, entry.accuracy)
            replay.replayed.append(entry.number)
        return replay

    @staticmethod
    def _fresh(cell: CellContext) -> _Replay:
        import torch
        from harness_plugins.algorithms._controller import Controller, Reinforce

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cell.seed)
            controller = Controller(cell.space.decisions())
        return _Replay(controller, Reinforce(controller))


@hookimpl
def harness_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("rl algorithm (ENAS / REINFORCE)")
    group.add_argument("--rl-mode", choices=MODES, default="child",
                       help="child: train every sampled child (multi-trial); shared: ENAS weight sharing, "
                            "one-shot (default child)")
    group.add_argument("--rl-epochs", type=int, default=10,
                       help="shared mode: supernet epochs (default 10: at 3, shared-weight children of the "
                            "default mbconv space score near chance on digits)")
    group.add_argument("--rl-controller-steps", type=int, default=20,
                       help="shared mode: controller updates per epoch (default 20)")
    group.add_argument("--rl-batch-size", type=int, default=64, help="shared mode: batch size (default 64)")
    group.add_argument("--rl-weight-lr", type=float, default=0.05,
                       help="shared mode: SGD learning rate of the shared weights (default 0.05)")
    group.add_argument("--rl-derive-samples", type=int, default=16,
                       help="shared mode: children sampled to derive the result (default 16)")


def _factory(options: Options) -> RLAlgorithm:
    from harness_plugins.algorithms._enas_shared import EnasConfig

    from harness.errors import UsageError

    config = EnasConfig(
        epochs=options.get("rl_epochs", 10),
        controller_steps=options.get("rl_controller_steps", 20),
        batch_size=options.get("rl_batch_size", 64),
        weight_lr=options.get("rl_weight_lr", 0.05),
        derive_samples=options.get("rl_derive_samples", 16),
    )
    if not (math.isfinite(config.weight_lr) and config.weight_lr > 0):
        raise UsageError(f"--rl-weight-lr {config.weight_lr}: must be a positive number")
    if config.epochs < 1 or config.batch_size < 2 or config.controller_steps < 0 or config.derive_samples < 0:
        raise UsageError("rl: --rl-epochs must be >= 1, --rl-batch-size >= 2, "
                         "--rl-controller-steps and --rl-derive-samples >= 0")
    try:
        return RLAlgorithm(options.get("rl_mode", "child"), config)
    except ValueError as error:
        raise UsageError(str(error)) from None


@hookimpl
def harness_algorithms() -> list[AlgorithmSpec]:
    return [AlgorithmSpec(name="rl", factory=_factory,
                          description="ENAS REINFORCE, LSTM controller (--rl-mode child | shared weights)")]
