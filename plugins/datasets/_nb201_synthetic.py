"""A synthetic NAS-Bench-201 table in the real CSV format, for tests, benchmarks and smoke runs.

Why it exists: the real 15,625-row extract is a download, while search algorithms need a
complete, *structured* table to be compared at all. The accuracy function imitates the real
benchmark's shape, not its numbers: a cell whose output is unreachable from its input scores
chance level; otherwise accuracy rises with 3x3 (then 1x1) convolutions, depends on a few edge
interactions (depth through node 1, a skip on ``3<-0`` beside convolutions, pooling repeated) and
carries a small fixed per-cell noise, so local search has something to climb and random search
rarely lands on the top cells. Its optimum is NAS-Bench-201's CIFAR-10 optimum cell
``|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|``
(asserted by the tests), scaled to the published optima 94.37 / 73.51 / 47.31.
"""
from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
from harness_plugins.spaces.nb201 import EDGES, OPS, arch_to_string

__all__ = ["OPTIMUM", "synthetic_accuracies", "write_synthetic_table"]

OPTIMUM = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
_HEADER = ["CIFAR10TestAccuracy200Epochs", "CIFAR100TestAccuracy200Epochs",
           "ImageNetTestAccuracy200Epochs", "ArchitectureString", "UniqueString"]
#: (chance %, optimum %) per column, the optima being NAS-Bench-201's published ones.
_RANGES = ((10.0, 94.37), (1.0, 73.51), (1 / 1.2, 47.31))
_OP_GAIN = {"none": 0.0, "skip_connect": 0.15, "nor_conv_1x1": 0.45, "nor_conv_3x3": 1.0, "avg_pool_3x3": 0.1}


def _connected(arch: dict[str, str]) -> bool:
    reach = {0}
    for node in (1, 2, 3):
        if any(arch[f"{node}<-{j}"] != "none" and j in reach for j in range(node)):
            reach.add(node)
    return 3 in reach


def _score(arch: dict[str, str]) -> float:
    score = sum(_OP_GAIN[arch[e]] for e in EDGES)
    conv = {e: arch[e].startswith("nor_conv") for e in EDGES}
    if conv["1<-0"] and (conv["2<-1"] or conv["3<-1"]):
        score += 0.6  # depth through node 1
    if arch["3<-0"] == "skip_connect" and sum(conv.values()) >= 4:
        score += 1.2  # a residual path beside a deep stack
    score -= 0.5 * max(0, sum(arch[e] == "avg_pool_3x3" for e in EDGES) - 1)
    return score


def synthetic_accuracies(seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """``{arch string: (cifar10 %, cifar100 %, imagenet16-120 %)}`` for all 15,625 cells."""
    archs = [dict(zip(EDGES, ops)) for ops in itertools.product(OPS, repeat=len(EDGES))]
    noise = np.random.default_rng(seed).normal(0.0, 0.03, size=(len(archs), 3))
    scores = np.array([_score(a) for a in archs])
    best = scores.max()
    table = {}
    for i, arch in enumerate(archs):
        key = arch_to_string(arch)
        if not _connected(arch):
            table[key] = tuple(round(low, 2) for low, _ in _RANGES)
            continue
        # the optimum alone reaches quality 1; every other cell stays below 0.97
        quality = np.ones(3) if key == OPTIMUM else np.clip(0.9 * scores[i] / best + noise[i], 0.0, 0.97)
        # convex map: the top of the range is rare, as in the real benchmark
        table[key] = tuple(round(low + (high - low) * (0.35 + 0.65 * q ** 2), 2)
                           for (low, high), q in zip(_RANGES, quality))
    return table


def write_synthetic_table(path: str | Path, seed: int = 0) -> Path:
    """Write the synthetic table as a CSV with the public extract's columns; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(_HEADER)
        for key, (c10, c100, img) in synthetic_accuracies(seed).items():
            writer.writerow([f"{c10:.2f}", f"{c100:.2f}", f"{img:.2f}", key, key])
    return path
