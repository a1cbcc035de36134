"""Compiled training of NPENAS's GIN predictors: the whole training loop (forward, backward, Adam,
BatchNorm statistics) as one machine-code function, built by Numba on first use and cached on disk.

Why: a training step on a batch of 16 eight-node graphs is ~4 MFLOP, a few microseconds of
arithmetic per layer, but every PyTorch operation costs 3-15 microseconds of dispatch however small
its tensors are. Even written by hand with ~70 operations a step (:mod:`._gin_train`), a step cost
~0.8 ms, and NPENAS-NP at the paper's settings runs ~9,600 steps per search (NPENAS-BO ~32,000), so
the predictor was nearly all of a tabular search's time. Here a step is BLAS matrix products and
loops over preallocated buffers, with no dispatch and no allocation: ~0.15-0.2 ms (12-14x faster
than autograd; ``benchmarks/bench_predictor_step.py``).

What is the same as the autograd loop :func:`._gin.fit`, exactly:

- the model, loss (MSE / Gaussian NLL), optimizer (Adam, betas (0, 0.9), the two parameter groups
  with 2x learning rate and no decay for biases), per-step cosine schedule, batch size, epochs,
  BatchNorm in training mode with its running statistics, dropout 0.1 on the head;
- the random streams: every epoch's shuffle is the same ``torch.randperm`` call on the same
  generator, and the dropout masks are drawn from the global generator with the same ``bernoulli_``
  calls, in the same order and sizes, as ``F.dropout`` makes; initial weights come from the model.

What differs is floating-point rounding (BLAS and these loops sum in another order than PyTorch's
kernels). In float64 the trained weights equal autograd's to 1e-5 (tested); in float32 they drift
apart after a few dozen steps, as they would between two BLAS libraries, because this training
amplifies rounding: ReLU layers give some BatchNorm-fed biases gradients that are zero up to
rounding, and Adam with beta1 = 0 turns their sign into full-size steps (a 1e-7 change of the
reference's own initial weights moves its predictions as much). So float32 equivalence is
statistical: over paired seeds the predictions rank as well as autograd's (tested, 20 seeds) and
searches find the same best accuracies (``benchmarks/bench_tabular_search.py --equivalence``).

Parameters travel as one flat vector, weights group first (each ``Linear`` weight stored
transposed, ``in x out``), then the biases group; :func:`_layout` is the single definition of that
order. Arithmetic is in the model's dtype (float32 normally, float64 in the formula tests).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import numba
import numpy as np
import torch
from harness_plugins.algorithms import _gin
from torch import nn

__all__ = ["fit_compiled"]

_H = _gin.HIDDEN
_E = _gin.HEAD
_LAYERS = 3
_BN_MOMENTUM = 0.1
_BN_EPS = 1e-5
_ADAM_EPS = 1e-8
# No fast-math: it bought nothing measurable here (BLAS does the heavy arithmetic), and reassociated
# sums changed the training *systematically*, not just by noise: some BatchNorm-fed biases get
# gradients that are zero up to rounding, and whether that rounding noise is above or below Adam's
# eps decides whether they random-walk. Measured over 30 seeds: Kendall tau of NP's predictions
# +0.022 +- 0.014 against autograd with fast-math, +0.005 +- 0.017 without.
_Function = TypeVar("_Function", bound=Callable[..., Any])


def _jit(function: _Function) -> _Function:
    """Compile on first call, cached on disk (next to this file, else in the user's cache folder)."""
    try:
        return numba.njit(cache=True, nogil=True, error_model="numpy")(function)  # type: ignore[no-any-return]
    except RuntimeError:  # no writable cache folder at all: compile once per process instead
        return numba.njit(nogil=True, error_model="numpy")(function)  # type: ignore[no-any-return]


def _layout(model: nn.Module) -> list[tuple[str, bool]]:
    """(parameter name, stored transposed) in the flat vector's order: the weights group (Linear
    weights, BatchNorm weights) then the biases group, as :func:`._gin.parameter_groups` splits them."""
    weights: list[tuple[str, bool]] = []
    biases: list[tuple[str, bool]] = []
    for i in range(_LAYERS):
        weights += [(f"backbone.mlps.{i}.0.weight", True), (f"backbone.mlps.{i}.2.weight", True),
                    (f"backbone.norms.{i}.weight", False)]
        biases += [(f"backbone.mlps.{i}.0.bias", False), (f"backbone.mlps.{i}.2.bias", False),
                   (f"backbone.norms.{i}.bias", False)]
    heads = ("before_mean", "before_std", "mean", "std") if isinstance(model, _gin.GINGaussianPredictor) \
        else ("before", "out")
    weights += [(f"{head}.weight", True) for head in heads]
    biases += [(f"{head}.bias", False) for head in heads]
    return weights + biases


# -- building blocks: dense layers on the first ``rows`` rows of preallocated buffers -------------

@_jit
def _linear(x, rows, wt, b, out):  # type: ignore[no-untyped-def]
    """out = x @ wt + b (wt is in x out) on the first ``rows`` rows."""
    o = out[:rows]
    np.dot(x[:rows], wt, o)
    for r in range(rows):
        for k in range(o.shape[1]):
            o[r, k] += b[k]


@_jit
def _linear_grads(x, g, rows, gwt, gb):  # type: ignore[no-untyped-def]
    """gwt = x^T g, gb = column sums of g."""
    np.dot(x[:rows].T, g[:rows], gwt)
    gb[:] = 0.0
    for r in range(rows):
        for o in range(gb.shape[0]):
            gb[o] += g[r, o]


@_jit
def _input_grad(g, rows, wt, out):  # type: ignore[no-untyped-def]
    """out = g @ wt^T."""
    np.dot(g[:rows], wt.T, out[:rows])


@_jit
def _edges(adj_t):  # type: ignore[no-untyped-def]
    """Every graph's edges as lists: ``(ptr, dst, src, weight)``, graph G's edges being
    ``ptr[G]:ptr[G + 1]`` (``adj_t[G, dst, src] != 0``: dst sums src). Graphs have a handful of
    edges among n^2 slots, so the sums loop over edges, not over the adjacency matrix."""
    graphs, n, _ = adj_t.shape
    ptr = np.zeros(graphs + 1, dtype=np.int64)
    for g in range(graphs):
        count = 0
        for i in range(n):
            for j in range(n):
                if adj_t[g, i, j] != 0:
                    count += 1
        ptr[g + 1] = ptr[g] + count
    dst = np.empty(ptr[graphs], dtype=np.int64)
    src = np.empty(ptr[graphs], dtype=np.int64)
    weight = np.empty(ptr[graphs], dtype=adj_t.dtype)
    e = 0
    for g in range(graphs):
        for i in range(n):
            for j in range(n):
                if adj_t[g, i, j] != 0:
                    dst[e], src[e], weight[e] = i, j, adj_t[g, i, j]
                    e += 1
    return ptr, dst, src, weight


@_jit
def _aggregate(h, idx, n, graphs, edges, out):  # type: ignore[no-untyped-def]
    """GIN's eps = 0 sum: node i gets its own features plus its predecessors' (h + A^T h). Its
    backward is the same sum over the reversed edges (``edges`` with ``dst`` and ``src`` swapped)."""
    ptr, dst, src, weight = edges
    width = h.shape[1]
    for r in range(graphs * n):
        for k in range(width):
            out[r, k] = h[r, k]
    for g in range(graphs):
        base = g * n
        for e in range(ptr[idx[g]], ptr[idx[g] + 1]):
            i, j, w = base + dst[e], base + src[e], weight[e]
            for k in range(width):
                out[i, k] += w * h[j, k]


@_jit
def _batch_norm(v, rows, gamma, beta, run_mean, run_var, xhat, invstd, out, mean, var):  # type: ignore[no-untyped-def]
    """Training-mode BatchNorm1d over ``rows`` rows: batch statistics (two passes, as PyTorch, not
    E[x^2] - E[x]^2), running-statistics update (unbiased variance, momentum 0.1), normalised values
    kept for the backward. ``mean`` and ``var`` are scratch."""
    t = v.dtype.type
    width = v.shape[1]
    inv_rows, momentum, eps = t(1.0 / rows), t(_BN_MOMENTUM), t(_BN_EPS)
    mean[:] = 0
    var[:] = 0
    for r in range(rows):
        for k in range(width):
            mean[k] += v[r, k]
    for k in range(width):
        mean[k] *= inv_rows
    for r in range(rows):
        for k in range(width):
            d = v[r, k] - mean[k]
            var[k] += d * d
    unbiased = t(rows / (rows - 1))
    for k in range(width):
        var[k] *= inv_rows
        invstd[k] = t(1) / np.sqrt(var[k] + eps)
        run_mean[k] = (t(1) - momentum) * run_mean[k] + momentum * mean[k]
        run_var[k] = (t(1) - momentum) * run_var[k] + momentum * var[k] * unbiased
    for r in range(rows):
        for k in range(width):
            xh = (v[r, k] - mean[k]) * invstd[k]
            xhat[r, k] = xh
            out[r, k] = xh * gamma[k] + beta[k]


@_jit
def _batch_norm_backward(gy, rows, xhat, invstd, gamma, ggamma, gbeta, out, scale):  # type: ignore[no-untyped-def]
    """``scale`` is scratch."""
    t = gy.dtype.type
    width = gy.shape[1]
    ggamma[:] = 0
    gbeta[:] = 0
    for r in range(rows):
        for k in range(width):
            gbeta[k] += gy[r, k]
            ggamma[k] += gy[r, k] * xhat[r, k]
    n = t(rows)
    for k in range(width):
        scale[k] = gamma[k] * invstd[k] / n
    for r in range(rows):
        for k in range(width):
            out[r, k] = scale[k] * (n * gy[r, k] - gbeta[k] - xhat[r, k] * ggamma[k])


@_jit
def _relu(v, rows, out):  # type: ignore[no-untyped-def]
    zero = v.dtype.type(0)
    for r in range(rows):
        for k in range(v.shape[1]):
            x = v[r, k]
            out[r, k] = x if x > zero else zero


@_jit
def _celu_rows(v, rows, out):  # type: ignore[no-untyped-def]
    for r in range(rows):
        for k in range(v.shape[1]):
            out[r, k] = _celu(v[r, k])


@_jit
def _relu_backward(g, rows, result):  # type: ignore[no-untyped-def]
    """g = 0 where the ReLU's output is 0 (as autograd's ``threshold_backward``)."""
    zero = g.dtype.type(0)
    for r in range(rows):
        for k in range(g.shape[1]):
            if result[r, k] <= zero:
                g[r, k] = zero


@_jit
def _celu_backward(g, rows, z, result):  # type: ignore[no-untyped-def]
    """g *= d celu / dz: 1 for z > 0, else exp(z) = celu(z) + 1."""
    t = g.dtype.type
    for r in range(rows):
        for k in range(g.shape[1]):
            slope = t(1) if z[r, k] > t(0) else result[r, k] + t(1)
            g[r, k] *= slope


@_jit
def _exp_nonpositive(z):  # type: ignore[no-untyped-def]
    """exp(z) for z <= 0 with no library call, so that loops over it vectorize (a libm call per
    element was a third of NPENAS-BO's training time): the Taylor series of exp(z / 256), then 8
    squarings. z is clamped at -40, where exp(z) - 1 is -1 to float64 precision; for
    |z / 256| <= 0.16 the series' truncation error is < 2e-13 relative."""
    x = max(z, -40.0) / 256.0
    p = 1.0 + x * (1.0 + x * (1 / 2 + x * (1 / 6 + x * (1 / 24 + x * (1 / 120 + x * (
        1 / 720 + x * (1 / 5040 + x * (1 / 40320 + x / 362880))))))))
    for _ in range(8):
        p = p * p
    return p


@_jit
def _celu(z):  # type: ignore[no-untyped-def]
    """CELU with alpha = 1: z for z > 0, else exp(z) - 1."""
    e = _exp_nonpositive(min(z, 0.0)) - 1.0
    return z if z > 0.0 else e




# -- the flat parameter vector ---------------------------------------------------------------------

@_jit
def _views(flat, d, gaussian):  # type: ignore[no-untyped-def]
    """Per-tensor views of a flat vector laid out as :func:`_layout` says."""
    w1 = []
    w2 = []
    gamma = []
    b1 = []
    b2 = []
    beta = []
    o = 0
    for layer in range(_LAYERS):
        width = d if layer == 0 else _H
        w1.append(flat[o:o + width * _H].reshape((width, _H)))
        o += width * _H
        w2.append(flat[o:o + _H * _H].reshape((_H, _H)))
        o += _H * _H
        gamma.append(flat[o:o + _H])
        o += _H
    head_w = []
    head_b = []
    shapes = [(_H, _E), (_H, _E), (_E, 1), (_E, 1)] if gaussian else [(_H, _E), (_E, 1)]
    for rows, cols in shapes:
        head_w.append(flat[o:o + rows * cols].reshape((rows, cols)))
        o += rows * cols
    for _ in range(_LAYERS):
        b1.append(flat[o:o + _H])
        o += _H
        b2.append(flat[o:o + _H])
        o += _H
        beta.append(flat[o:o + _H])
        o += _H
    for _, cols in shapes:
        head_b.append(flat[o:o + cols])
        o += cols
    return w1, w2, gamma, b1, b2, beta, head_w, head_b


@_jit
def _train(adj_t, x, target, order, sizes, masks, factors, theta, n_weights, running, gaussian,  # type: ignore[no-untyped-def]
           lr, decay, beta2, rate):
    """Every step of a training run; returns the last step's loss. ``order`` is the concatenated
    shuffles, ``sizes`` the batch size of every step, ``masks`` the scaled dropout keep-masks of
    every sample of every step (rows in the same order), ``factors`` the cosine schedule. Arithmetic
    is in ``theta``'s dtype (constants are cast to it: a float64 constant would turn float32 loops
    into float64 ones, several times slower)."""
    t = theta.dtype.type
    _, n, d = x.shape
    batch_max = sizes.max()
    rows_max = batch_max * n
    edges = _edges(adj_t)
    reversed_edges = (edges[0], edges[2], edges[1], edges[3])  # the backward of h + A^T h is g + A g
    w1, w2, gamma, b1, b2, beta, head_w, head_b = _views(theta, d, gaussian)
    grad = np.zeros_like(theta)
    g_w1, g_w2, g_gamma, g_b1, g_b2, g_beta, g_head_w, g_head_b = _views(grad, d, gaussian)
    exp_avg_sq = np.zeros_like(theta)

    dtype = theta.dtype
    h0 = np.empty((rows_max, d), dtype)
    a0 = np.empty((rows_max, d), dtype)
    agg = np.empty((_LAYERS, rows_max, _H), dtype)  # layers 1.. : aggregated inputs
    r1 = np.empty((_LAYERS, rows_max, _H), dtype)
    z2 = np.empty((_LAYERS, rows_max, _H), dtype)
    r2 = np.empty((_LAYERS, rows_max, _H), dtype)
    xhat = np.empty((_LAYERS, rows_max, _H), dtype)
    out = np.empty((_LAYERS, rows_max, _H), dtype)
    invstd = np.empty((_LAYERS, _H), dtype)
    scratch_a = np.empty(_H, dtype)
    scratch_b = np.empty(_H, dtype)
    g_rows = np.empty((rows_max, _H), dtype)
    g_act = np.empty((rows_max, _H), dtype)
    g_hidden = np.empty((rows_max, _H), dtype)
    g_agg = np.empty((rows_max, _H), dtype)
    emb = np.empty((batch_max, _H), dtype)
    g_emb = np.empty((batch_max, _H), dtype)
    g_emb_b = np.empty((batch_max, _H), dtype)
    z_a = np.empty((batch_max, _E), dtype)  # NP: before; BO: before_mean
    z_b = np.empty((batch_max, _E), dtype)  # BO: before_std
    c_a = np.empty((batch_max, _E), dtype)  # activations of z_a, z_b
    c_b = np.empty((batch_max, _E), dtype)
    d_a = np.empty((batch_max, _E), dtype)  # c_a after dropout: the last layer's input
    g_za = np.empty((batch_max, _E), dtype)
    g_zb = np.empty((batch_max, _E), dtype)
    head_out = np.empty((batch_max, 1), dtype)
    std_out = np.empty((batch_max, 1), dtype)
    g_out = np.empty((batch_max, 1), dtype)
    g_std = np.empty((batch_max, 1), dtype)

    zero, inv_n = t(0), t(1.0 / n)
    beta2_t, one_minus_b2, eps, decay_t = t(beta2), t(1.0 - beta2), t(_ADAM_EPS), t(decay)
    loss = 0.0
    start = 0
    for step in range(len(sizes)):
        bs = sizes[step]
        rows = bs * n
        idx = order[start:start + bs]
        mask = masks[start:start + bs]
        start += bs
        # ---- forward
        for g in range(bs):
            for i in range(n):
                for k in range(d):
                    h0[g * n + i, k] = x[idx[g], i, k]
        for layer in range(_LAYERS):
            a = a0 if layer == 0 else agg[layer]
            r1_l, z2_l, r2_l = r1[layer], z2[layer], r2[layer]
            _aggregate(h0 if layer == 0 else out[layer - 1], idx, n, bs, edges, a)
            _linear(a, rows, w1[layer], b1[layer], r1_l)
            _relu(r1_l, rows, r1_l)
            _linear(r1_l, rows, w2[layer], b2[layer], z2_l)
            if gaussian:
                _celu_rows(z2_l, rows, r2_l)
            else:
                _relu(z2_l, rows, r2_l)
            _batch_norm(r2_l, rows, gamma[layer], beta[layer], running[2 * layer], running[2 * layer + 1],
                        xhat[layer], invstd[layer], out[layer], scratch_a, scratch_b)
        last = out[_LAYERS - 1]
        for g in range(bs):
            for k in range(_H):
                emb[g, k] = zero
            for i in range(n):
                for k in range(_H):
                    emb[g, k] += last[g * n + i, k]
            for k in range(_H):
                emb[g, k] *= inv_n
        # ---- head, loss and its gradient
        _linear(emb, bs, head_w[0], head_b[0], z_a)
        loss = 0.0
        if gaussian:
            _celu_rows(z_a, bs, c_a)
            for g in range(bs):
                for k in range(_E):
                    d_a[g, k] = c_a[g, k] * mask[g, k]
            _linear(d_a, bs, head_w[2], head_b[2], head_out)  # mu
            _linear(emb, bs, head_w[1], head_b[1], z_b)
            _celu_rows(z_b, bs, c_b)
            _linear(c_b, bs, head_w[3], head_b[3], std_out)
            for g in range(bs):
                zo = std_out[g, 0]
                c_o = _celu(zo)
                sigma = math.exp(c_o / 2)
                diff = target[idx[g]] - head_out[g, 0]
                ratio = diff * diff / (sigma * sigma)
                loss += 0.5 * ratio + math.log(math.sqrt(2 * math.pi) * sigma)
                g_out[g, 0] = -diff / (sigma * sigma) / bs
                g_std[g, 0] = (1.0 - ratio) / (2 * bs) * (1.0 if zo > 0 else c_o + 1.0)
            _linear_grads(d_a, g_out, bs, g_head_w[2], g_head_b[2])
            _linear_grads(c_b, g_std, bs, g_head_w[3], g_head_b[3])
            for g in range(bs):
                for k in range(_E):
                    g_za[g, k] = g_out[g, 0] * head_w[2][k, 0] * mask[g, k]
                    g_zb[g, k] = g_std[g, 0] * head_w[3][k, 0]
            _celu_backward(g_za, bs, z_a, c_a)
            _celu_backward(g_zb, bs, z_b, c_b)
            _linear_grads(emb, g_za, bs, g_head_w[0], g_head_b[0])
            _linear_grads(emb, g_zb, bs, g_head_w[1], g_head_b[1])
            _input_grad(g_za, bs, head_w[0], g_emb)
            _input_grad(g_zb, bs, head_w[1], g_emb_b)
            for g in range(bs):
                for k in range(_H):
                    g_emb[g, k] += g_emb_b[g, k]
        else:
            _relu(z_a, bs, c_a)
            for g in range(bs):
                for k in range(_E):
                    d_a[g, k] = c_a[g, k] * mask[g, k]
            _linear(d_a, bs, head_w[1], head_b[1], head_out)
            for g in range(bs):
                s = 1.0 / (1.0 + math.exp(-head_out[g, 0]))
                diff = s * rate - target[idx[g]]
                loss += diff * diff
                g_out[g, 0] = 2.0 * diff / bs * rate * s * (1.0 - s)
            _linear_grads(d_a, g_out, bs, g_head_w[1], g_head_b[1])
            for g in range(bs):
                for k in range(_E):
                    g_za[g, k] = g_out[g, 0] * head_w[1][k, 0] * mask[g, k]
            _relu_backward(g_za, bs, c_a)
            _linear_grads(emb, g_za, bs, g_head_w[0], g_head_b[0])
            _input_grad(g_za, bs, head_w[0], g_emb)
        loss /= bs
        # ---- backbone backward
        for g in range(bs):
            for i in range(n):
                for k in range(_H):
                    g_rows[g * n + i, k] = g_emb[g, k] * inv_n
        for layer in range(_LAYERS - 1, -1, -1):
            r1_l = r1[layer]
            _batch_norm_backward(g_rows, rows, xhat[layer], invstd[layer], gamma[layer], g_gamma[layer],
                                 g_beta[layer], g_act, scratch_a)
            if gaussian:
                _celu_backward(g_act, rows, z2[layer], r2[layer])
            else:
                _relu_backward(g_act, rows, r2[layer])
            _linear_grads(r1_l, g_act, rows, g_w2[layer], g_b2[layer])
            _input_grad(g_act, rows, w2[layer], g_hidden)
            _relu_backward(g_hidden, rows, r1_l)
            a = a0 if layer == 0 else agg[layer]
            _linear_grads(a, g_hidden, rows, g_w1[layer], g_b1[layer])
            if layer:
                _input_grad(g_hidden, rows, w1[layer], g_agg)
                _aggregate(g_agg, idx, n, bs, reversed_edges, g_rows)
        # ---- Adam (L2 weight decay on the weights group; beta1 = 0, so the first moment is the gradient)
        inv_correction = t(1.0 / math.sqrt(1.0 - beta2 ** (step + 1)))
        step_lr = t(lr * factors[step])
        for p in range(n_weights):
            grad_p = grad[p] + decay_t * theta[p]
            v = beta2_t * exp_avg_sq[p] + one_minus_b2 * grad_p * grad_p
            exp_avg_sq[p] = v
            theta[p] -= step_lr * grad_p / (np.sqrt(v) * inv_correction + eps)
        step_lr = t(2 * lr * factors[step])  # biases: twice the learning rate, no decay
        for p in range(n_weights, len(theta)):
            grad_p = grad[p]
            v = beta2_t * exp_avg_sq[p] + one_minus_b2 * grad_p * grad_p
            exp_avg_sq[p] = v
            theta[p] -= step_lr * grad_p / (np.sqrt(v) * inv_correction + eps)
    return loss


def _dropout_masks(sizes: list[int], dtype: torch.dtype) -> np.ndarray:
    """``F.dropout``'s scaled keep-masks, drawn from the global generator exactly as it draws them
    during training on the CPU (``empty_like(input).bernoulli_(1 - p)``, one call per step, then
    ``/ (1 - p)``), stacked row after row."""
    keep = 1 - _gin.DROPOUT
    masks = [torch.empty(size, _E, dtype=dtype).bernoulli_(keep) for size in sizes]
    return torch.cat(masks).div_(keep).numpy()


def fit_compiled(model: nn.Module, adj_t: torch.Tensor, x: torch.Tensor, target: torch.Tensor, epochs: int,
                 generator: torch.Generator) -> float:
    """Train ``model`` in place as :func:`._gin.fit` does (same batches, dropout masks, optimizer,
    schedule and BatchNorm statistics; float rounding aside), in compiled code; returns the last
    batch's loss. Works in the model's dtype (float32 normally; float64 lets tests compare formulas
    without rounding noise). The first call in a fresh installation compiles (~10 s, then cached
    on disk)."""
    if not isinstance(model, (_gin.GINPredictor, _gin.GINGaussianPredictor)):
        raise TypeError(f"fit_compiled trains GINPredictor or GINGaussianPredictor, not {type(model).__name__}")
    gaussian = isinstance(model, _gin.GINGaussianPredictor)
    n = len(target)
    batch = 10 if n <= 10 else 16
    sizes = [min(batch, n - start) for start in range(0, n, batch)] * epochs
    steps = len(sizes)
    factors = np.array([0.5 * (1 + math.cos(math.pi * step / steps)) for step in range(1, steps + 1)])
    model.train()
    params = dict(model.named_parameters())
    dtype = params["backbone.mlps.0.0.weight"].dtype
    np_dtype = torch.empty((), dtype=dtype).numpy().dtype
    with torch.no_grad():
        order = torch.cat([torch.randperm(n, generator=generator) for _ in range(epochs)]).numpy()
        masks = _dropout_masks(sizes, dtype)
        layout = _layout(model)
        theta = np.concatenate([(params[name].t() if transposed else params[name]).reshape(-1).numpy()
                                for name, transposed in layout]).astype(np_dtype)
        n_weights = sum(params[name].numel() for name, _ in layout[:len(layout) // 2])
        norms = list(model.backbone.norms)
        running = np.stack([np.stack([norm.running_mean.numpy(), norm.running_var.numpy()]) for norm in norms]
                           ).reshape(2 * len(norms), -1).astype(np_dtype)
        loss = _train(np.ascontiguousarray(adj_t.numpy(), dtype=np_dtype),
                      np.ascontiguousarray(x.numpy(), dtype=np_dtype), target.numpy().astype(np_dtype), order,
                      np.array(sizes, dtype=np.int64), masks, factors, theta, n_weights, running, gaussian,
                      _gin.LR, _gin.WEIGHT_DECAY, _gin.BETAS[1], _gin.RATE)
        offset = 0
        for name, transposed in layout:
            p = params[name]
            shape = p.t().shape if transposed else p.shape
            value = torch.from_numpy(theta[offset:offset + p.numel()].reshape(shape).copy())
            p.copy_(value.t() if transposed else value)
            offset += p.numel()
        for i, norm in enumerate(norms):
            norm.running_mean.copy_(torch.from_numpy(running[2 * i]))
            norm.running_var.copy_(torch.from_numpy(running[2 * i + 1]))
            norm.num_batches_tracked += steps
    return float(loss)
