"""ENAS weight-sharing search: one supernet, children sampled by the controller, shared weights.

Each epoch alternates, as ENAS does:

1. *shared weights*: one pass over the training split; every batch trains the single-path child
   the controller samples for it (SGD, momentum 0.9, Nesterov, cosine schedule, gradient norm
   clipped at 5 as in ENAS's code);
2. *controller*: ``controller_steps`` REINFORCE updates; each samples a child and rewards it
   with its shared-weight accuracy on one validation batch.

Derivation (ENAS's own): sample ``derive_samples`` children plus the controller's greedy one,
score each with shared weights on up to ``DERIVE_IMAGES`` validation images, keep the best (ties:
the greedy child first, then sampling order). Scoring uses batch statistics (training-mode
BatchNorm, no gradient), as ENAS does: running statistics of an op fed by different children
are not meaningful.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from harness_plugins.algorithms._controller import Controller, Reinforce
from harness_plugins.algorithms._oneshot import (
    RANKING_IMAGES,
    SearchData,
    batch_stream,
    build_supernet,
    seeded_generator,
    shared_accuracy,
    skip_fraction,
    supernet_ranking,
)

from harness.components import ImageData, InputShape, SearchSpace

__all__ = ["EnasConfig", "enas_search"]

GRAD_CLIP = 5.0
MOMENTUM = 0.9
DERIVE_IMAGES = 1024


@dataclass(frozen=True)
class EnasConfig:
    """The shared-mode budget and optimiser settings (CLI options ``--rl-*``)."""

    epochs: int = 10
    controller_steps: int = 20
    batch_size: int = 64
    weight_lr: float = 0.05
    weight_decay: float = 1e-4
    derive_samples: int = 16


def _controller(decisions: Any, seed: int) -> Controller:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Controller(decisions)


def enas_search(space: SearchSpace, shape: InputShape, data: ImageData, config: EnasConfig, seed: int,
                device: str) -> dict[str, Any]:
    """Run the search; return a JSON-serialisable summary whose ``"arch"`` is the derived child."""
    decisions = space.decisions()
    supernet = build_supernet(space, shape, seed, device)
    controller = _controller(decisions, seed)
    reinforce = Reinforce(controller)
    sample_gen = torch.Generator().manual_seed(seed)
    split = SearchData.create(data, device)
    data_gen = seeded_generator(seed, device)
    train = batch_stream(split.train, config.batch_size, split.normaliser, data_gen, split.augment)
    valid = batch_stream(split.valid, config.batch_size, split.normaliser, data_gen)
    steps_per_epoch = max(1, len(split.train) // min(config.batch_size, len(split.train)))
    params = list(supernet.weight_parameters())
    optimizer = torch.optim.SGD(params, lr=config.weight_lr, momentum=MOMENTUM, nesterov=True,
                                weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps_per_epoch * config.epochs)
    supernet.train()
    rewards: list[float] = []
    for _ in range(config.epochs):
        for _ in range(steps_per_epoch):
            arch = controller.sample(sample_gen)
            x, y = next(train)
            loss = F.cross_entropy(supernet(x, arch), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
            optimizer.step()
            schedule.step()
        for _ in range(config.controller_steps):
            arch = controller.sample(sample_gen)
            x, y = next(valid)
            with torch.no_grad():
                reward = float((supernet(x, arch).argmax(dim=1) == y).float().mean())
            reinforce.update(arch, reward)
            rewards.append(reward)

    candidates = [controller.most_probable()] + [controller.sample(sample_gen) for _ in range(config.derive_samples)]
    scores = [shared_accuracy(lambda x, a=arch: supernet(x, a), split.valid, split.normaliser,
                              limit=DERIVE_IMAGES) for arch in candidates]
    best = max(range(len(candidates)), key=lambda i: (scores[i], -i))
    arch = candidates[best]
    ranking = supernet_ranking(decisions, lambda a: shared_accuracy(lambda x: supernet(x, a), split.valid,
                                                                    split.normaliser, limit=RANKING_IMAGES), seed)
    last = rewards[-config.controller_steps:] if rewards else []
    return {
        "arch": arch,
        "arch_id": space.arch_id(arch),
        "ranking": [{"arch_id": space.arch_id(a), "score": score} for a, score in ranking],
        "shared_val_accuracy": scores[best],
        "greedy_shared_val_accuracy": scores[0],
        "skip_fraction": skip_fraction(arch, decisions),
        "weight_steps": steps_per_epoch * config.epochs,
        "controller_updates": reinforce.steps,
        "candidates_scored": len(candidates),
        "architectures_evaluated": reinforce.steps + len(candidates),
        "final_baseline": reinforce.baseline,
        "mean_reward_last_epoch": sum(last) / len(last) if last else None,
        "config": asdict(config),
    }
