"""DARTS / FBNet-style first-order one-shot search over a :class:`harness.supernet.Supernet`.

Architecture parameters: one logit vector per decision, ``probs = softmax(logits)`` (DARTS's
relaxation; AutoSpace's plain normalisation is a different thing, not used here), initialised
``1e-3 * N(0, 1)`` as DARTS does. Per step, first order (DARTS's ``--unrolled`` off):

1. architecture step on a *validation* batch: ``CE(forward_mixed) + lambda * E[MAdds] / 1e6``,
   Adam lr 3e-4, betas (0.5, 0.999), weight decay 1e-3 (DARTS's constants);
2. weight step on a *training* batch: ``CE(forward_mixed)`` with the probabilities detached, SGD
   lr 0.025 (cosine to 0.001), momentum 0.9, weight decay 3e-4, gradient norm clipped at 5.

``lambda`` is per million MAdds: with ``lambda = 0.1`` a child 1M MAdds cheaper is worth 0.1 nats
of cross-entropy. Derivation: argmax of each decision's probabilities. The summary records the
final probabilities and the share of skip/none choices, because one-shot gradient search is known
to collapse to parameter-free ops (Zela et al., "Understanding and Robustifying Differentiable
Architecture Search", ICLR 2020) and the harness must show it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from harness_plugins.algorithms._oneshot import (
    RANKING_IMAGES,
    SearchData,
    batch_stream,
    seeded_generator,
    shared_accuracy,
    skip_fraction,
    supernet_ranking,
)

from harness.components import ImageData
from harness.supernet import Supernet

__all__ = ["DartsConfig", "darts_search"]

MADDS_UNIT = 1e6
GRAD_CLIP = 5.0
INIT_SCALE = 1e-3


@dataclass(frozen=True)
class DartsConfig:
    """Budget and optimiser settings (CLI options ``--gradient-*``)."""

    epochs: int = 3
    batch_size: int = 64
    madds_lambda: float = 0.0
    weight_lr: float = 0.025
    weight_lr_min: float = 0.001
    weight_momentum: float = 0.9
    weight_decay: float = 3e-4
    arch_lr: float = 3e-4
    arch_betas: tuple[float, float] = field(default=(0.5, 0.999))
    arch_weight_decay: float = 1e-3
    #: Cap on steps per epoch (``None``: one pass over the training split).
    steps_per_epoch: int | None = None


def darts_search(supernet: Supernet, data: ImageData, config: DartsConfig, seed: int,
                 device: str) -> dict[str, Any]:
    """Search on ``supernet`` (already on ``device``); return a JSON-serialisable summary whose
    ``"arch"`` is the derived architecture."""
    decisions = supernet.decisions()
    init = torch.Generator().manual_seed(seed)
    logits = {name: torch.nn.Parameter((INIT_SCALE * torch.randn(len(options), generator=init)).to(device))
              for name, options in decisions}
    arch_opt = torch.optim.Adam(list(logits.values()), lr=config.arch_lr, betas=config.arch_betas,
                                weight_decay=config.arch_weight_decay)
    weights = list(supernet.weight_parameters())
    split = SearchData.create(data, device)
    gen = seeded_generator(seed, device)
    train = batch_stream(split.train, config.batch_size, split.normaliser, gen, split.augment)
    valid = batch_stream(split.valid, config.batch_size, split.normaliser, gen)
    steps = max(1, len(split.train) // min(config.batch_size, len(split.train)))
    if config.steps_per_epoch is not None:
        steps = min(steps, config.steps_per_epoch)
    total_steps = steps * config.epochs
    weight_opt = schedule = None
    if weights:
        weight_opt = torch.optim.SGD(weights, lr=config.weight_lr, momentum=config.weight_momentum,
                                     weight_decay=config.weight_decay)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(weight_opt, T_max=total_steps,
                                                              eta_min=config.weight_lr_min)
    supernet.train()
    for _ in range(total_steps):
        x, y = next(valid)
        probs = {name: torch.softmax(v, dim=0) for name, v in logits.items()}
        madds = supernet.expected_madds(probs)
        loss = F.cross_entropy(supernet.forward_mixed(x, probs), y) + config.madds_lambda * madds / MADDS_UNIT
        # gradients for the logits only: the weights' gradients of this validation loss are unused
        grads = torch.autograd.grad(loss, list(logits.values()), allow_unused=True)
        for v, g in zip(logits.values(), grads):
            v.grad = torch.zeros_like(v) if g is None else g
        arch_opt.step()
        if weight_opt is not None:
            x, y = next(train)
            fixed = {name: torch.softmax(v.detach(), dim=0) for name, v in logits.items()}
            loss = F.cross_entropy(supernet.forward_mixed(x, fixed), y)
            weight_opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(weights, GRAD_CLIP)
            weight_opt.step()
            schedule.step()

    def shared_weights_accuracy(candidate: dict[str, Any]) -> float:
        onehot = {name: F.one_hot(torch.tensor(list(options).index(candidate[name])), len(options))
                  .to(device=device, dtype=torch.float32) for name, options in decisions}
        return shared_accuracy(lambda x: supernet.forward_mixed(x, onehot), split.valid, split.normaliser,
                               limit=RANKING_IMAGES)

    ranking = supernet_ranking(decisions, shared_weights_accuracy, seed)
    with torch.no_grad():
        probs = {name: torch.softmax(v, dim=0) for name, v in logits.items()}
        arch = {name: options[int(probs[name].argmax())] for name, options in decisions}
        onehot = {name: F.one_hot(probs[name].argmax(), len(options)).to(probs[name].dtype)
                  for name, options in decisions}
        expected, derived = float(supernet.expected_madds(probs)), float(supernet.expected_madds(onehot))
    return {
        "arch": arch,
        "skip_fraction": skip_fraction(arch, decisions),
        "probs": {name: [round(float(p), 6) for p in probs[name]] for name, _ in decisions},
        "mean_max_prob": sum(float(p.max()) for p in probs.values()) / max(len(probs), 1),
        "expected_madds": expected,
        "derived_madds": derived,
        "steps": total_steps,
        "ranking": [{"arch": a, "score": score} for a, score in ranking],
        "config": {**asdict(config), "arch_betas": list(config.arch_betas)},
    }
