"""Optuna's pruners, passed to Optuna unwrapped; the resource unit is the training epoch.

Constants: asynchronous successive halving (Li et al., MLSys 2020) ``reduction_factor=4``;
Hyperband (Li et al., JMLR 2018) ``reduction_factor=3`` over ``[1, max_epochs]`` (its bracket ids hash the study name,
which the harness always sets to the cell's key); median stopping (Golovin et al., KDD 2017)
``n_startup_trials=5`` and one warm-up
epoch (first check after epoch 2).
"""
from __future__ import annotations

import optuna

from harness import hookimpl
from harness.components import PrunerRequest, PrunerSpec

MEDIAN_STARTUP_TRIALS = 5
MEDIAN_WARMUP_EPOCHS = 1


def _none(req: PrunerRequest) -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()


def _sha(req: PrunerRequest) -> optuna.pruners.BasePruner:
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=4)


def _hyperband(req: PrunerRequest) -> optuna.pruners.BasePruner:
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(req.max_epochs, 1), reduction_factor=3)


def _median(req: PrunerRequest) -> optuna.pruners.BasePruner:
    # Steps are 1-based epochs and Optuna may prune once step >= n_warmup_steps, so one warm-up
    # epoch means n_warmup_steps=2: the first check is at the end of epoch 2.
    return optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP_TRIALS,
                                       n_warmup_steps=MEDIAN_WARMUP_EPOCHS + 1)


@hookimpl
def harness_pruners() -> list[PrunerSpec]:
    return [
        PrunerSpec(name="none", description="never prune", factory=_none),
        PrunerSpec(name="sha", description="asynchronous successive halving (reduction factor 4)", factory=_sha),
        PrunerSpec(name="hyperband", description="Hyperband (reduction factor 3, 1..max epochs)", factory=_hyperband),
        PrunerSpec(name="median", description="median stopping (5 startup trials, 1 warm-up epoch)", factory=_median),
    ]
