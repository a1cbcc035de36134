"""NPENAS's graph predictors (Wei et al., IEEE TNNLS 2022; official code auroua/NPENASv1), in
plain PyTorch.

Both predictors read NPENAS graphs (an 8x8 adjacency ``A[i, j] = 1`` for an edge i -> j and 8
one-hot node features, from ``SearchSpace.graph``) and predict a validation *error* in percent.
Every graph has the same node count, so a batch is a dense ``B x 8 x 8`` tensor and a GIN layer
(eps = 0, sum aggregation over predecessors, as PyG's ``GINConv``) is one ``bmm``.

- NP (``GINPredictor``): 3 GINConv layers of 32 (MLP Linear-ReLU-Linear), each followed by ReLU and
  BatchNorm; mean pooling over nodes; Linear 32->16, ReLU, dropout 0.1, Linear 16->1;
  ``sigmoid(out) * RATE``; MSE loss.
- BO (``GINGaussianPredictor``): the same backbone with CELU, a mean head (as NP, without the
  sigmoid) and a std head (Linear 32->16, CELU, Linear 16->1, CELU), ``sigma = exp(s / 2)``;
  Gaussian negative log-likelihood; candidates are ranked by one Thompson sample
  ``mu + sigma * N(0, 1)``.

Training as in the official trainers: Adam with betas (0, 0.9), lr 0.005, weight decay 1e-4 (the
official ``make_agent_optimizer`` doubles the lr of biases and exempts them from decay: kept), a
per-step cosine schedule, batch 10 for <= 10 graphs else 16, shuffled each epoch.

Training and prediction run on the CPU, one thread, whatever ``--device`` says. Three trainers
compute the same training (same model, loss, optimizer, schedule, batches, shuffles and dropout
masks):

- :func:`fit`, autograd + ``torch.optim``: the definition, kept as the reference (~1.2 ms per step);
- :func:`._gin_train.fit_fast`, the same PyTorch kernels called by hand, equal to :func:`fit` bit
  for bit (~0.85 ms per step);
- :func:`._gin_kernel.fit_compiled`, the default: the whole loop compiled (Numba) around BLAS
  matrix products (~0.14 ms per step for NP, ~0.16 ms for BO). It rounds differently, which this
  training amplifies (a 1e-7 change of the initial weights moves the predictions as much after a
  few dozen steps), so its equality with :func:`fit` is tested in float64 and, in float32, by the
  predictors' ranking quality over paired seeds.

Why not a GPU: a step on 8-node graphs is ~4 MFLOP spread over ~70 operations; on a GPU each
would be one kernel launch of several microseconds, ~0.3-0.7 ms per step before any
synchronisation, slower than the compiled CPU loop. ``benchmarks/bench_tabular_search.py``
measures the trainers.

Two documented choices of ours:

- ``RATE = 100`` (the official trainer's default is 10, sized for NAS-Bench-101's ~5-10 % errors);
  NAS-Bench-201 errors span 5-99 %, so the sigmoid must cover [0, 100].
- The BO mean head's output bias starts at the mean training error (official: 0). Adam moves a
  bias by about one learning rate per step, so from 0 the mean needs thousands of steps just to
  reach errors of tens of percent, and meanwhile the NLL inflates sigma and Thompson sampling is
  close to random. With the paper's 1000 epochs this changes little; with fewer epochs (tests, quick
  runs) it is the difference between NPENAS-BO and random search (measured: 0.86 vs 0.67 best
  accuracy after 50 queries with 30 epochs on the synthetic table; 0.67 without it).
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "LR",
    "RATE",
    "GINGaussianPredictor",
    "GINPredictor",
    "fit",
    "gaussian_nll",
    "graphs_to_tensors",
    "parameter_groups",
    "predict_gaussian",
    "predict_np",
    "thompson_sample",
]

HIDDEN = 32
HEAD = 16
DROPOUT = 0.1
RATE = 100.0
LR = 0.005
BETAS = (0.0, 0.9)
WEIGHT_DECAY = 1e-4


def graphs_to_tensors(graphs: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (adjacency, features) pairs into ``(A^T, X)`` batches; A^T so a node sums its
    predecessors with one ``bmm``."""
    adj = torch.from_numpy(np.stack([a for a, _ in graphs]).astype(np.float32))
    feats = torch.from_numpy(np.stack([x for _, x in graphs]).astype(np.float32))
    return adj.transpose(1, 2).contiguous(), feats


class _GINBackbone(nn.Module):
    def __init__(self, in_dim: int, act: nn.Module) -> None:
        super().__init__()
        dims = [in_dim, HIDDEN, HIDDEN, HIDDEN]
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(d, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN)) for d in dims[:-1])
        self.norms = nn.ModuleList(nn.BatchNorm1d(HIDDEN) for _ in dims[:-1])
        self.act = act

    def forward(self, adj_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        for mlp, norm in zip(self.mlps, self.norms):
            x = self.act(mlp(x + torch.bmm(adj_t, x)))
            x = norm(x.reshape(b * n, -1)).reshape(b, n, -1)
        return x.mean(dim=1)  # mean pooling over every node, isolate ones included (as PyG's)


def _init_head(*layers: nn.Linear) -> None:
    for layer in layers:
        nn.init.kaiming_uniform_(layer.weight, a=1)
        nn.init.zeros_(layer.bias)


class GINPredictor(nn.Module):
    """NPENAS-NP: predicted error in percent, ``sigmoid(out) * RATE``."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.backbone = _GINBackbone(in_dim, nn.ReLU())
        self.before = nn.Linear(HIDDEN, HEAD)
        self.out = nn.Linear(HEAD, 1)
        _init_head(self.before, self.out)

    def forward(self, adj_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h = F.dropout(F.relu(self.before(self.backbone(adj_t, x))), DROPOUT, self.training)
        return torch.sigmoid(self.out(h)).squeeze(-1) * RATE


class GINGaussianPredictor(nn.Module):
    """NPENAS-BO: ``(mu, sigma)`` of the error in percent."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.backbone = _GINBackbone(in_dim, nn.CELU())
        self.before_mean = nn.Linear(HIDDEN, HEAD)
        self.before_std = nn.Linear(HIDDEN, HEAD)
        self.mean = nn.Linear(HEAD, 1)
        self.std = nn.Linear(HEAD, 1)
        _init_head(self.before_mean, self.before_std, self.mean, self.std)

    def forward(self, adj_t: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.backbone(adj_t, x)
        mu = self.mean(F.dropout(F.celu(self.before_mean(emb)), DROPOUT, self.training)).squeeze(-1)
        s = F.celu(self.std(F.celu(self.before_std(emb)))).squeeze(-1)
        return mu, torch.exp(s / 2)


def gaussian_nll(mu: torch.Tensor, sigma: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood, ``(y - mu)^2 / (2 sigma^2) + log(sqrt(2 pi) sigma)``
    (the official ``Criterion``; equals ``GaussianNLLLoss(full=True)`` with ``var = sigma^2``)."""
    return (0.5 * (target - mu) ** 2 / sigma**2 + torch.log(math.sqrt(2 * math.pi) * sigma)).mean()


def thompson_sample(mu: np.ndarray, sigma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per candidate, ``mu + sigma * N(0, 1)``: the BO acquisition (lower is better)."""
    return mu + sigma * rng.standard_normal(len(mu))


def parameter_groups(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(weights, biases): the official optimizer's two groups (biases get 2x lr, no decay)."""
    weights = [p for name, p in model.named_parameters() if not name.endswith("bias")]
    biases = [p for name, p in model.named_parameters() if name.endswith("bias")]
    return weights, biases


def _optimizer(model: nn.Module) -> torch.optim.Optimizer:
    weights, biases = parameter_groups(model)
    return torch.optim.Adam(
        [{"params": weights, "lr": LR, "weight_decay": WEIGHT_DECAY},
         {"params": biases, "lr": 2 * LR, "weight_decay": 0.0}],
        lr=LR, betas=BETAS, fused=True)  # fused: ~2x faster steps than foreach on CPU (measured)


def fit(model: nn.Module, adj_t: torch.Tensor, x: torch.Tensor, target: torch.Tensor,
        epochs: int, generator: torch.Generator) -> float:
    """Train ``model`` in place (MSE for :class:`GINPredictor`, Gaussian NLL for
    :class:`GINGaussianPredictor`) with autograd and ``torch.optim``; returns the last batch's loss.

    The plain reference: predictions are trained by :func:`._gin_kernel.fit_compiled`, tested
    against this loop."""
    n = len(target)
    batch = 10 if n <= 10 else 16
    steps = epochs * math.ceil(n / batch)
    opt = _optimizer(model)
    base = [g["lr"] for g in opt.param_groups]
    model.train()
    loss = torch.zeros(())
    step = 0
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            step += 1
            factor = 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))
            for group, lr in zip(opt.param_groups, base):
                group["lr"] = lr * factor
            out = model(adj_t[idx], x[idx])
            if isinstance(out, tuple):
                loss = gaussian_nll(out[0], out[1], target[idx])
            else:
                loss = F.mse_loss(out, target[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return float(loss.detach())


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    # Ops on 8-node graphs are far too small to gain from intra-op threads, and on a busy
    # machine the thread pool's synchronisation made each step up to 50x slower (measured).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


Trainer = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, int, torch.Generator], float]


def _train(model_cls: type[nn.Module], train: Sequence[tuple[np.ndarray, np.ndarray]],
           errors: np.ndarray, epochs: int, seed: int, trainer: Trainer | None) -> nn.Module:
    if trainer is None:
        from harness_plugins.algorithms._gin_kernel import fit_compiled as trainer
    adj_t, x = graphs_to_tensors(train)
    with torch.random.fork_rng(devices=[]):  # init and dropout draw from the global generator
        torch.manual_seed(seed)
        model = model_cls(x.shape[-1])
        if isinstance(model, GINGaussianPredictor):
            with torch.no_grad():
                model.mean.bias.fill_(float(np.mean(errors)))
        trainer(model, adj_t, x, torch.as_tensor(errors, dtype=torch.float32), epochs,
                torch.Generator().manual_seed(seed))
    model.eval()
    return model


def predict_np(train: Sequence[tuple[np.ndarray, np.ndarray]], errors: np.ndarray,
               candidates: Sequence[tuple[np.ndarray, np.ndarray]], epochs: int, seed: int,
               trainer: Trainer | None = None) -> np.ndarray:
    """Train a fresh NP predictor on (graph, error %) and return the candidates' predicted errors.

    ``trainer`` defaults to :func:`._gin_kernel.fit_compiled`; :func:`fit` (autograd) and
    :func:`._gin_train.fit_fast` compute the same training, slower (benchmarks and tests compare them)."""
    with _one_thread():
        model = _train(GINPredictor, train, errors, epochs, seed, trainer)
        with torch.no_grad():
            return model(*graphs_to_tensors(candidates)).numpy().astype(np.float64)


def predict_gaussian(train: Sequence[tuple[np.ndarray, np.ndarray]], errors: np.ndarray,
                     candidates: Sequence[tuple[np.ndarray, np.ndarray]], epochs: int,
                     seed: int, trainer: Trainer | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Train a fresh BO predictor and return the candidates' ``(mu, sigma)`` of the error %
    (``trainer`` as for :func:`predict_np`)."""
    with _one_thread():
        model = _train(GINGaussianPredictor, train, errors, epochs, seed, trainer)
        with torch.no_grad():
            mu, sigma = model(*graphs_to_tensors(candidates))
    return mu.numpy().astype(np.float64), sigma.numpy().astype(np.float64)
