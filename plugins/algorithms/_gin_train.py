"""Training of NPENAS's GIN predictors with PyTorch kernels called by hand: the same model, loss,
optimizer, schedule, batches and random streams as the autograd loop :func:`._gin.fit`, equal to it
bit for bit, ~1.4x faster. Not the default (:func:`._gin_kernel.fit_compiled` is, ~6x faster still):
it is the exact reference that benchmarks and equivalence tests can afford to run many times, and
the device-generic formulation (it runs as-is on CUDA tensors).

Why: a training step on a batch of 16 eight-node graphs is ~3 MFLOP, but autograd and
``torch.optim`` turn it into ~200 tiny dispatched operations plus per-step Python bookkeeping
(graph construction, ``zero_grad``, ``param_groups`` updates, ``Adam.step``'s checks), which cost
~1.2 ms per step, while the arithmetic needs well under 0.1 ms. NPENAS-NP at the paper's settings
runs ~9,600 such steps per search (NPENAS-BO ~32,000), so the predictor was almost all of a
tabular search's time. Here one step is ~70 operations, each already the kernel autograd would
call for the same node (``addmm``/``mm``, ``native_batch_norm``[``_backward``],
``threshold_backward``, ``elu_backward``, ``sigmoid_backward``, ``baddbmm``), with:

- the batches of all epochs gathered in one indexing op from the pre-stacked training tensors
  (the shuffles are the same ``randperm`` calls, in the same order);
- the dropout masks drawn up front from the global generator, with the same ``bernoulli_`` calls
  in the same order as ``F.dropout`` makes during training (nothing else draws from it there);
- the cosine learning-rate schedule precomputed; Adam is the fused kernel ``torch.optim.Adam``
  (``fused=True``) calls, on the same two parameter groups, without the Python around it.

The code is device-generic, but the predictors run on the CPU (:mod:`._gin` says why); on CUDA
``F.dropout`` draws its masks with a fused kernel, so there the masks, not the method, would differ.

The trained weights and the predictions equal the autograd loop's bit for bit on the CPU (checked
in the tests; bit-exactness matters because Adam with beta1 = 0 turns rounding differences in
near-zero gradients into full-size steps, so any drift grows). The loss's backward
is written out in :func:`_gaussian_nll_grads`, in autograd's order of operations.
"""
from __future__ import annotations

import math

import torch
from harness_plugins.algorithms import _gin
from torch import nn

__all__ = ["fit_fast"]

_BN_MOMENTUM = 0.1
_BN_EPS = 1e-5
_ADAM_EPS = 1e-8
_SQRT_2PI = math.sqrt(2 * math.pi)


def _relu_backward(grad: torch.Tensor, result: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten.threshold_backward(grad, result, 0)


def _celu_backward(grad: torch.Tensor, inp: torch.Tensor) -> torch.Tensor:
    # celu(x, alpha=1) is elu with scale 1 and input_scale 1/alpha; autograd calls exactly this
    return torch.ops.aten.elu_backward(grad, 1.0, 1, 1.0, False, inp)


class _Backbone:
    """Forward and backward of :class:`._gin._GINBackbone` in training mode."""

    def __init__(self, module: nn.Module, tensors: dict[str, torch.Tensor], celu: bool) -> None:
        self.layers = [tuple(tensors[f"backbone.{name}"] for name in (
                           f"mlps.{i}.0.weight", f"mlps.{i}.0.bias", f"mlps.{i}.2.weight", f"mlps.{i}.2.bias",
                           f"norms.{i}.weight", f"norms.{i}.bias", f"norms.{i}.running_mean",
                           f"norms.{i}.running_var"))
                       for i in range(len(module.mlps))]
        # W^T once: views of the weights, so they follow Adam's in-place updates
        self.transposed = [(layer[0].t(), layer[2].t()) for layer in self.layers]
        self.norms = list(module.norms)
        self.celu = celu

    def forward(self, adj_t: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, list]:
        b, n, _ = x.shape
        saved = []
        h = x
        for (w1_t, w2_t), (_, b1, _, b2, gamma, beta, run_mean, run_var) in zip(self.transposed, self.layers):
            a = torch.baddbmm(h, adj_t, h).view(b * n, -1)  # h + A^T h: sum over predecessors, eps = 0
            r1 = torch.relu(torch.addmm(b1, a, w1_t))
            z2 = torch.addmm(b2, r1, w2_t)
            r2 = torch.celu(z2) if self.celu else torch.relu(z2)
            y, mean, invstd = torch.native_batch_norm(r2, gamma, beta, run_mean, run_var, True, _BN_MOMENTUM,
                                                      _BN_EPS)
            saved.append((a, r1, z2, r2, mean, invstd))
            h = y.view(b, n, -1)
        return h.mean(dim=1), saved

    def backward(self, grad_emb: torch.Tensor, adj: torch.Tensor, n: int, saved: list,
                 grads: dict[torch.Tensor, torch.Tensor]) -> None:
        b = grad_emb.shape[0]
        g = (grad_emb / n).unsqueeze(1).expand(b, n, -1).reshape(b * n, -1)  # mean pooling's backward
        for i in reversed(range(len(self.layers))):
            w1, b1, w2, b2, gamma, beta, run_mean, run_var = self.layers[i]
            a, r1, z2, r2, mean, invstd = saved[i]
            g, grads[gamma], grads[beta] = torch.ops.aten.native_batch_norm_backward(
                g, r2, gamma, run_mean, run_var, mean, invstd, True, _BN_EPS, [True, True, True])
            g = _celu_backward(g, z2) if self.celu else _relu_backward(g, r2)
            grads[w2], grads[b2] = g.t().mm(r1), g.sum(0)
            g = _relu_backward(g.mm(w2), r1)
            grads[w1], grads[b1] = g.t().mm(a), g.sum(0)
            if i:
                g = g.mm(w1).view(b, n, -1)
                g = torch.baddbmm(g, adj, g).view(b * n, -1)  # through h + A^T h


def _np_head(t: dict[str, torch.Tensor], backbone: _Backbone):
    wb, bb, wo, bo = t["before.weight"], t["before.bias"], t["out.weight"], t["out.bias"]
    wb_t, wo_t = wb.t(), wo.t()
    one = torch.ones((), device=wb.device)  # d loss / d loss

    def step(adj_t: torch.Tensor, adj: torch.Tensor, x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
             grads: dict[torch.Tensor, torch.Tensor], want_loss: bool) -> torch.Tensor | None:
        b, n, _ = x.shape
        emb, saved = backbone.forward(adj_t, x)
        r3 = torch.relu(torch.addmm(bb, emb, wb_t))
        d = r3 * mask
        s = torch.sigmoid(torch.addmm(bo, d, wo_t))
        out = (s * _gin.RATE).view(b)
        g = torch.ops.aten.mse_loss_backward(one, out, target, 1).view(b, 1)  # reduction "mean"
        g = torch.ops.aten.sigmoid_backward(g * _gin.RATE, s)
        grads[wo], grads[bo] = g.t().mm(d), g.sum(0)
        g = _relu_backward(g.mm(wo) * mask, r3)
        grads[wb], grads[bb] = g.t().mm(emb), g.sum(0)
        backbone.backward(g.mm(wb), adj, n, saved, grads)
        return torch.nn.functional.mse_loss(out, target) if want_loss else None

    return step


def _gaussian_nll_grads(mu: torch.Tensor, sigma: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor,
                                                                                               torch.Tensor]:
    """d loss / d mu and d loss / d s for :func:`._gin.gaussian_nll` with ``sigma = exp(s / 2)``:
    ``-(y - mu) / sigma^2 / B`` and ``(1 - (y - mu)^2 / sigma^2) / (2 B)``, evaluated as autograd
    evaluates the chain rule through the loss's expression, operation by operation, so that
    rounding matches (Adam with beta1 = 0 turns rounding differences in near-zero gradients into
    full-size steps, and training would drift apart)."""
    b = mu.shape[0]
    g = torch.ones_like(mu) / b  # mean
    diff = target - mu
    num, var = 0.5 * diff**2, sigma**2
    g_var = -g * ((num / var) / var)  # num / var, d/d var
    g_mu = -((g / var) * 0.5 * (2.0 * diff))  # 0.5 * diff ** 2, d/d mu through diff = target - mu
    g_sigma = g_var * (2.0 * sigma) + (g / (_SQRT_2PI * sigma)) * _SQRT_2PI  # sigma**2 and log(c * sigma)
    return g_mu, g_sigma * sigma / 2  # sigma = exp(s / 2)


def _gaussian_head(t: dict[str, torch.Tensor], backbone: _Backbone):
    wbm, bbm, wbs, bbs = t["before_mean.weight"], t["before_mean.bias"], t["before_std.weight"], t["before_std.bias"]
    wm, bm, ws, bs = t["mean.weight"], t["mean.bias"], t["std.weight"], t["std.bias"]
    wbm_t, wbs_t, wm_t, ws_t = wbm.t(), wbs.t(), wm.t(), ws.t()

    def step(adj_t: torch.Tensor, adj: torch.Tensor, x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
             grads: dict[torch.Tensor, torch.Tensor], want_loss: bool) -> torch.Tensor | None:
        b, n, _ = x.shape
        emb, saved = backbone.forward(adj_t, x)
        zm = torch.addmm(bbm, emb, wbm_t)
        dm = torch.celu(zm) * mask
        mu = torch.addmm(bm, dm, wm_t).view(b)
        zs = torch.addmm(bbs, emb, wbs_t)
        cs = torch.celu(zs)
        zo = torch.addmm(bs, cs, ws_t)
        sigma = torch.exp(torch.celu(zo) / 2).view(b)
        g_mu, g_s = _gaussian_nll_grads(mu, sigma, target)
        g_mu, g_s = g_mu.view(b, 1), _celu_backward(g_s.view(b, 1), zo)
        grads[wm], grads[bm] = g_mu.t().mm(dm), g_mu.sum(0)
        grads[ws], grads[bs] = g_s.t().mm(cs), g_s.sum(0)
        g_m = _celu_backward(g_mu.mm(wm) * mask, zm)
        g_s = _celu_backward(g_s.mm(ws), zs)
        grads[wbm], grads[bbm] = g_m.t().mm(emb), g_m.sum(0)
        grads[wbs], grads[bbs] = g_s.t().mm(emb), g_s.sum(0)
        backbone.backward(g_m.mm(wbm) + g_s.mm(wbs), adj, n, saved, grads)
        return _gin.gaussian_nll(mu, sigma, target) if want_loss else None

    return step


def _schedule(epochs: int, n: int, batch: int) -> tuple[list[int], list[float]]:
    """Batch sizes of one epoch, and the cosine factor of every step (as :func:`._gin.fit`)."""
    sizes = [min(batch, n - start) for start in range(0, n, batch)]
    steps = epochs * len(sizes)
    return sizes, [0.5 * (1 + math.cos(math.pi * min(step, steps) / steps)) for step in range(1, steps + 1)]


def fit_fast(model: nn.Module, adj_t: torch.Tensor, x: torch.Tensor, target: torch.Tensor, epochs: int,
             generator: torch.Generator) -> float:
    """Train ``model`` in place exactly as :func:`._gin.fit` does (same batches, dropout masks, Adam
    steps and BatchNorm running statistics), by hand; returns the last batch's loss."""
    if not isinstance(model, (_gin.GINPredictor, _gin.GINGaussianPredictor)):
        raise TypeError(f"fit_fast trains GINPredictor or GINGaussianPredictor, not {type(model).__name__}")
    gaussian = isinstance(model, _gin.GINGaussianPredictor)
    n = len(target)
    batch = 10 if n <= 10 else 16
    sizes, factors = _schedule(epochs, n, batch)
    model.train()
    with torch.no_grad():
        # every epoch's shuffle, then every batch of the run as views of one gathered tensor
        order = torch.cat([torch.randperm(n, generator=generator) for _ in range(epochs)])
        all_sizes = sizes * epochs
        adj_ts = adj_t[order].split(all_sizes)
        adjs = adj_t.transpose(1, 2)[order].split(all_sizes)  # A itself, for the backward of A^T h
        xs, targets = x[order].split(all_sizes), target[order].split(all_sizes)
        masks = _dropout_masks(all_sizes, _gin.HEAD, x.dtype, x.device)
        # one tensor object per parameter (``p.data`` makes a new one each call): the grads' keys
        tensors = {name: p.data for name, p in model.named_parameters()}
        tensors.update(model.named_buffers())
        backbone = _Backbone(model.backbone, tensors, celu=gaussian)
        step = (_gaussian_head if gaussian else _np_head)(tensors, backbone)
        # Adam's two groups (as _gin._optimizer), its state, and one step count shared by all
        name_of = {id(p): name for name, p in model.named_parameters()}
        count = torch.zeros((), dtype=torch.float32, device=x.device)
        groups = []
        for params, lr, decay in zip(_gin.parameter_groups(model), (_gin.LR, 2 * _gin.LR),
                                     (_gin.WEIGHT_DECAY, 0.0)):
            data = [tensors[name_of[id(p)]] for p in params]
            groups.append((data, [torch.zeros_like(d) for d in data], [torch.zeros_like(d) for d in data],
                           [count] * len(data), lr, decay))
        grads: dict[torch.Tensor, torch.Tensor] = {}
        loss = None
        last = len(all_sizes) - 1
        for i, factor in enumerate(factors):
            loss = step(adj_ts[i], adjs[i], xs[i], targets[i], masks[i], grads, i == last)
            count.add_(1)
            for params, exp_avgs, exp_avg_sqs, counts, lr, decay in groups:
                torch._fused_adam_(params, [grads[p] for p in params], exp_avgs, exp_avg_sqs, [], counts,
                                   lr=lr * factor, beta1=_gin.BETAS[0], beta2=_gin.BETAS[1], weight_decay=decay,
                                   eps=_ADAM_EPS, amsgrad=False, maximize=False)
        for norm in backbone.norms:
            norm.num_batches_tracked += len(factors)
    return float(loss) if loss is not None else 0.0


def _dropout_masks(sizes: list[int], width: int, dtype: torch.dtype, device: torch.device) -> list[torch.Tensor]:
    """``F.dropout``'s scaled keep-masks for the given batch sizes, drawn as it draws them on the CPU
    (``empty_like(input).bernoulli_(1 - p)``, one call per step, then ``/ (1 - p)``)."""
    keep = 1 - _gin.DROPOUT
    masks = [torch.empty(size, width, dtype=dtype, device=device).bernoulli_(keep) for size in sizes]
    return [m.div_(keep) for m in masks]
