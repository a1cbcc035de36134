"""Optimisers and learning-rate schedules, chosen by a trial's hyperparameters."""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

__all__ = ["make_optimizer"]


def make_optimizer(model: nn.Module, hp: Mapping[str, Any], total_steps: int
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The optimiser and a per-step schedule over ``total_steps`` steps.

    ``optimizer``: ``sgd`` (momentum, optionally Nesterov), ``adam`` or ``adamw``; ``schedule``:
    ``cosine`` (to zero) or ``onecycle`` (peak ``lr`` at 30 %). Weight decay is not applied to
    biases and normalisation weights (1-D parameters), the usual practice for small CNNs.
    """
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": hp["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    name = hp["optimizer"]
    if name == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(groups, lr=hp["lr"], momentum=hp.get("momentum", 0.9),
                                                     nesterov=bool(hp.get("nesterov", True)))
    elif name == "adam":
        opt = torch.optim.Adam(groups, lr=hp["lr"])
    elif name == "adamw":
        opt = torch.optim.AdamW(groups, lr=hp["lr"])
    else:
        raise ValueError(f"unknown optimizer {name!r}")
    total_steps = max(total_steps, 1)
    if hp.get("schedule", "cosine") == "onecycle":
        sched: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=hp["lr"], total_steps=total_steps, pct_start=0.3)
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    return opt, sched
