"""The AutoSpace generation loop (Zhou et al., ICCV 2021, arXiv 2103.11833), on a base space with
the cell protocol (:mod:`harness_plugins.spaces._cells`).

One *iteration* is one training batch. Every ``rebuild_every`` (f) iterations, from iteration 0,
each population selects K cells (tournament + local mutation) and the supernet is rebuilt from
them over the same :class:`ParameterBank` (weights shared across rebuilds); the learned scores
``a = log alpha`` of the selected cells restart from the population's alpha. Each iteration:

1. ``loss = CE(forward_mixed(x, p)) + lambda * E[MAdds] / MAdds_ref`` on a batch of the *train*
   split, ``p = alpha / sum(alpha)`` per position (or one shared ``p`` with ``shared_cell``);
2. one SGD step on the supernet weights (momentum 0.9, weight decay 3e-4, gradient norm <= 5);
3. one plain SGD step on ``a`` with the gradient multiplied by ``n / n'``;
4. after ``warmup`` iterations, the EMA update of the selected cells' alpha towards
   ``alpha* = exp(a)``.

At the end each population's top-K cells by alpha (:meth:`Population.top`: scored cells first)
are the paper's output; the populations themselves are returned too, so that a shared-cell space
can take the top-M of every cell the run held. The validation split is used only to report the
shared-weight accuracy of the top-K mixed supernet (a diagnostic, ``val_accuracy`` in the details).

**The resource term.** ``MAdds_ref`` is the MAdds of the backbone with the reference cell at every
position, so ``lambda`` is in nats of cross-entropy per reference network: a mixture that costs 10%
more than the reference network pays ``0.1 lambda``. Its gradient on ``a_i`` at one position is
``lambda p_i (MAdds(d_i) - E_p[MAdds]) / MAdds_ref``, free of the channel width and the image size.
Measured on 8x8 digits (NB201 backbone, one cell per stage, K=4 shared, 60 steps): the mean
``|d(E[MAdds]/MAdds_ref)/da|`` is 0.043 at C=4 and 0.038 at C=16, the CE gradient's 0.016 and
0.012. The paper's ``lambda * MAdds(N)`` in raw units (our former default, 0.01 per million MAdds)
gave 3e-5 at C=4 and 5e-4 at C=16, 0.2-4% of the CE gradient: the term did nothing. At the
default ``lambda = 0.1`` it is a third of the CE gradient's size and, unlike that mostly
batch-to-batch noise, always points the same way: over 50 scored steps it moves ``log alpha`` by
about 0.4 (``alpha_lr = 2``). The top-K mixture's MAdds, over four runs (seeds 0, 1; C=4, 16), was
0.36-0.64 of the reference network's (mean 0.53) against 0.38-1.07 (mean 0.81) with ``lambda = 0``.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from harness_plugins.algorithms._oneshot import (
    SearchData,
    batch_stream,
    seeded_generator,
    shared_accuracy,
)
from harness_plugins.generators._autospace_population import Member, Population
from harness_plugins.generators._autospace_supernet import (
    CellChoiceSupernet,
    correct_gradient,
    layer_weights,
)
from harness_plugins.spaces._cell_nets import CellBackbone, ParameterBank
from harness_plugins.spaces._cells import Cell, CellTemplate

from harness.components import ImageData

__all__ = ["AutoSpaceConfig", "alpha_step", "reference_madds", "resource_term", "run_autospace"]

GRAD_CLIP = 5.0
VAL_LIMIT = 1024


@dataclass(frozen=True)
class AutoSpaceConfig:
    """The constants the paper leaves open (CLI options ``--autospace-*``; defaults sized for a
    quick CPU benchmark, see :mod:`harness_plugins.generators.autospace`)."""

    population: int = 8
    k: int = 4
    tournament: int = 3
    threshold: float = 0.3
    eps: float = 0.5
    rebuild_every: int = 5
    madds_lambda: float = 0.1
    iterations: int = 600
    warmup: int = 60
    mutation_prob: float = 0.5
    batch_size: int = 32
    weight_lr: float = 0.05
    alpha_lr: float = 2.0
    #: Shared-cell mode: cells in the generated space, the top-M by alpha (not used by the loop).
    space_size: int = 200
    shared_cell: bool = False


def alpha_step(logs: list[torch.Tensor], members: list[list[Member]], lr: float) -> None:
    """One plain SGD step on each ``a = log alpha`` with the corrected gradient (no-op where a
    gradient is missing)."""
    with torch.no_grad():
        for a, sel in zip(logs, members, strict=True):
            if a.grad is None:
                continue
            grad = correct_gradient(a.grad, [m.expected for m in sel], [m.sampled for m in sel])
            a -= lr * grad
            a.grad = None


def reference_madds(backbone: CellBackbone, reference: Cell) -> float:
    """MAdds of the backbone with ``reference`` at every position (the unit of the resource term,
    see the module docstring)."""
    return float(backbone.fixed_madds()) + sum(backbone.cell_madds(p, reference)
                                               for p in range(len(backbone.positions)))


def resource_term(supernet: CellChoiceSupernet, probs: dict[str, torch.Tensor], madds_lambda: float,
                  unit: float) -> torch.Tensor:
    """``lambda * E[MAdds] / MAdds_ref``, the loss's resource term (see the module docstring)."""
    return madds_lambda * supernet.expected_madds(probs) / unit


def run_autospace(template: CellTemplate, backbone: CellBackbone, data: ImageData, config: AutoSpaceConfig,
                  seed: int, device: str,
                  on_rebuild: Callable[[int, CellChoiceSupernet], None] | None = None,
                  progress: Callable[[int, int], None] = lambda done, total: None) -> dict[str, Any]:
    """Generate; return ``{"cells": [[id, ...] per decision], "populations": [Population, ...],
    "alphas": ..., details...}`` (the caller pops ``cells`` and ``populations``, the rest is JSON).
    ``template`` may restrict the base's ops (mutations use its ops) and sets the reference;
    ``backbone`` is the base's backbone for the data's shape, already on ``device``."""
    rng = np.random.default_rng(seed)
    positions = len(backbone.positions)
    groups = 1 if config.shared_cell else positions
    pops = [Population(template, config.population, config.k, config.tournament, config.threshold,
                       config.mutation_prob, rng) for _ in range(groups)]
    bank = ParameterBank(backbone, device)
    split = SearchData.create(data, device)
    gen = seeded_generator(seed, device)
    train = batch_stream(split.train, config.batch_size, split.normaliser, gen, split.augment)
    weight_opt = torch.optim.SGD(backbone.parameters(), lr=config.weight_lr, momentum=0.9, weight_decay=3e-4)
    supernet: CellChoiceSupernet | None = None
    selected: list[list[Member]] = []
    logs: list[torch.Tensor] = []
    rebuilds = 0
    loss_value = math.nan
    unit = reference_madds(backbone, template.reference) or 1.0
    backbone.train()
    for t in range(config.iterations):
        progress(t, config.iterations)
        if t % config.rebuild_every == 0:
            selected = [pop.select() for pop in pops]
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(rng.integers(2**31)))
                supernet = CellChoiceSupernet(backbone, [[m.cell for m in sel] for sel in selected],
                                              config.shared_cell, bank)
            new = bank.take_new()
            if new:
                weight_opt.add_param_group({"params": new})
            logs = [torch.tensor([math.log(m.alpha) for m in sel], dtype=torch.float32, device=device,
                                 requires_grad=True) for sel in selected]
            rebuilds += 1
            if on_rebuild is not None:
                on_rebuild(t, supernet)
        assert supernet is not None
        probs = {name: layer_weights(a.exp()) for name, a in zip(supernet.names, logs)}
        x, y = next(train)
        loss = F.cross_entropy(supernet.forward_mixed(x, probs), y)
        if config.madds_lambda:
            loss = loss + resource_term(supernet, probs, config.madds_lambda, unit)
        weight_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in weight_opt.param_groups for p in g["params"]], GRAD_CLIP)
        weight_opt.step()
        alpha_step(logs, selected, config.alpha_lr)
        if t >= config.warmup:
            for pop, sel, a in zip(pops, selected, logs):
                pop.update(sel, a.detach().exp().tolist(), config.eps)
        loss_value = float(loss.detach())

    tops = [pop.top(config.k) for pop in pops]
    final = CellChoiceSupernet(backbone, [[m.cell for m in top] for top in tops], config.shared_cell, bank)
    final.to(device).train()  # shared-weight children are scored with batch statistics (ENAS)
    probs = {name: layer_weights(torch.tensor([m.alpha for m in top], device=device))
             for name, top in zip(final.names, tops)}
    with torch.no_grad():
        val = shared_accuracy(lambda inp: final.forward_mixed(inp, probs), split.valid, split.normaliser,
                              limit=VAL_LIMIT)
        madds = float(final.expected_madds(probs))
    return {
        "cells": [[template.cell_id(m.cell) for m in top] for top in tops],
        "populations": pops,
        "alphas": [[round(m.alpha, 6) for m in top] for top in tops],
        "sampled": [[m.sampled for m in top] for top in tops],
        "rebuilds": rebuilds,
        "final_loss": loss_value,
        "val_accuracy": val,
        "expected_madds": madds,
        "reference_madds": unit,
        "scored": [[[template.cell_id(m.cell), round(m.alpha, 6)] for m in pop.ranking() if m.scored]
                   for pop in pops],
        "config": asdict(config),
    }
