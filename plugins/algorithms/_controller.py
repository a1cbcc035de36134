"""The ENAS controller (an LSTM emitting one token per decision) and its REINFORCE update.

Constants follow ENAS (Pham et al., ICML 2018) and its code: 64 hidden units, one layer, Adam lr 0.0035,
baseline decay 0.99, entropy bonus 1e-4; parameters initialised uniform(-0.1, 0.1) as ENAS does.

Update rule, for a sampled architecture ``a`` with reward ``R``:

1. ``b <- b - (1 - decay) * (b - R)`` (ENAS updates the baseline *before* computing the loss:
   ``tf.assign_sub`` under a control dependency);
2. ``loss = -log p(a) * (R - b) - entropy_weight * H(a)``, where ``H`` sums the entropies of the
   per-decision distributions along the sampled sequence; one Adam step.

Our choice, documented: the baseline starts at the first reward seen (ENAS starts at 0, which
with accuracies near 0.9 and decay 0.99 rewards every sample for hundreds of steps, longer than
our budgets); pass ``baseline=`` to start elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

__all__ = ["Controller", "ControllerOutput", "Reinforce", "UpdateStats"]

HIDDEN = 64
LEARNING_RATE = 0.0035
BASELINE_DECAY = 0.99
ENTROPY_WEIGHT = 1e-4
INIT_RANGE = 0.1


@dataclass
class ControllerOutput:
    """Token indices of one architecture, with its log-probability and entropy (both 0-d,
    differentiable)."""

    actions: list[int]
    log_prob: torch.Tensor
    entropy: torch.Tensor


class Controller(nn.Module):
    """LSTM over the decisions: step ``i`` reads the embedding of token ``i - 1`` (a learned start
    vector at step 0) and a per-decision linear head gives the logits of decision ``i``."""

    def __init__(self, decisions: Sequence[tuple[str, Sequence[Any]]], hidden: int = HIDDEN) -> None:
        super().__init__()
        self.names = [name for name, _ in decisions]
        self.options = [list(options) for _, options in decisions]
        self.start = nn.Parameter(torch.empty(1, hidden))
        self.lstm = nn.LSTMCell(hidden, hidden)
        self.embeddings = nn.ModuleList(nn.Embedding(len(o), hidden) for o in self.options)
        self.heads = nn.ModuleList(nn.Linear(hidden, len(o)) for o in self.options)
        for p in self.parameters():
            nn.init.uniform_(p, -INIT_RANGE, INIT_RANGE)

    def forward(self, actions: Sequence[int] | None = None,  # type: ignore[override]
                generator: torch.Generator | None = None, greedy: bool = False) -> ControllerOutput:
        """Sample (or, with ``actions``, score) one architecture."""
        x, state = self.start, None
        chosen: list[int] = []
        log_probs, entropies = [], []
        for i, head in enumerate(self.heads):
            h, c = self.lstm(x, state)
            state = (h, c)
            logp = torch.log_softmax(head(h)[0], dim=-1)
            if actions is not None:
                a = int(actions[i])
            elif greedy:
                a = int(logp.argmax())
            else:
                a = int(torch.multinomial(logp.detach().exp(), 1, generator=generator))
            chosen.append(a)
            log_probs.append(logp[a])
            entropies.append(-(logp.exp() * logp).sum())
            x = self.embeddings[i](torch.tensor([a], device=logp.device))
        return ControllerOutput(chosen, torch.stack(log_probs).sum(), torch.stack(entropies).sum())

    def to_arch(self, actions: Sequence[int]) -> dict[str, Any]:
        return {name: self.options[i][a] for i, (name, a) in enumerate(zip(self.names, actions))}

    def to_actions(self, arch: dict[str, Any]) -> list[int]:
        return [self.options[i].index(arch[name]) for i, name in enumerate(self.names)]

    def sample(self, generator: torch.Generator | None = None) -> dict[str, Any]:
        with torch.no_grad():
            return self.to_arch(self(generator=generator).actions)

    def most_probable(self) -> dict[str, Any]:
        """Greedy decoding (argmax at each step): the mode of the controller, approximately."""
        with torch.no_grad():
            return self.to_arch(self(greedy=True).actions)


@dataclass
class UpdateStats:
    reward: float
    baseline: float
    advantage: float
    log_prob: float
    entropy: float
    loss: float


class Reinforce:
    """REINFORCE with a moving-average baseline and an entropy bonus (see module docstring)."""

    def __init__(self, controller: Controller, lr: float = LEARNING_RATE, baseline_decay: float = BASELINE_DECAY,
                 entropy_weight: float = ENTROPY_WEIGHT, baseline: float | None = None) -> None:
        self.controller = controller
        self.optimizer = torch.optim.Adam(controller.parameters(), lr=lr)
        self.baseline_decay = baseline_decay
        self.entropy_weight = entropy_weight
        self.baseline = baseline
        self.steps = 0

    def update(self, arch: dict[str, Any], reward: float) -> UpdateStats:
        """One REINFORCE step for ``arch`` (sampled earlier) and its ``reward``."""
        reward = float(reward)
        b = reward if self.baseline is None else self.baseline
        self.baseline = b - (1.0 - self.baseline_decay) * (b - reward)
        out = self.controller(actions=self.controller.to_actions(arch))
        advantage = reward - self.baseline
        loss = -out.log_prob * advantage - self.entropy_weight * out.entropy
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.steps += 1
        return UpdateStats(reward, self.baseline, advantage, out.log_prob.item(), out.entropy.item(), loss.item())
