"""Synthetic NATS-Bench archives in the official format, written with ``nats_bench``'s own classes.

Why it exists: the real archives are a download of gigabytes, while whole searches (and the
samplers x pruners grids that compare pruners) need every architecture a search may propose.
:func:`write_archive` writes a ``*-simple`` folder that ``nats_bench.create(path, space,
fast_mode=True)`` opens as it opens the release: a ``meta.pickle.pbz2`` listing the whole space
and one ``NNNNNN.pickle.pbz2`` per chosen architecture, each ``{hp: ArchResults.state_dict()}``
built from ``nats_bench.ResultsCount`` objects and saved with ``nats_bench.pickle_save``.

The layout imitates the release's (seen in its sample files): schedules ``12`` and ``200`` (tss)
or ``12`` and ``90`` (sss); seeds 111 and 777 (tss, 12 epochs, cifar10-valid), 111 (the other
datasets), 777/888/999 (tss 200 epochs, sss 12 epochs), 777 (sss 90 epochs); ``x-valid`` and
``ori-test`` on cifar10-valid, ``x-valid``, ``x-test`` and ``ori-test`` on cifar100 and
ImageNet16-120, recorded after every epoch except, on the topology space's 200-epoch schedule,
``ori-test`` of cifar10-valid and ``x-valid``/``x-test`` of cifar100 and ImageNet16-120, recorded
after the last epoch only (as there). The MAdds and parameters are the networks' (closed forms
equal to what the release records; its tests compare them); the training time per epoch grows
with MAdds.

The numbers imitate the benchmark's shape, not its values: a topology's final accuracy is the
synthetic NAS-Bench-201 table's (:mod:`._nb201_synthetic`), a size's grows with its channels;
each architecture learns at its own rate (fast starters do not all finish first, so a pruner can
be wrong), the 12-epoch schedule ends lower than the full one, and each seed adds its own noise.
"""
from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from harness_plugins.datasets._nats_archive import ARCHIVE_NAMES, DATASETS
from harness_plugins.spaces.nb201 import EDGES, OPS, arch_to_string, count_madds, parse_arch_string

from harness.components import InputShape

__all__ = ["default_folder", "meta_archs", "size_costs", "topology_costs", "write_archive"]

SHAPES = {"cifar10-valid": InputShape(3, 32, 32, 10), "cifar100": InputShape(3, 32, 32, 100),
          "ImageNet16-120": InputShape(3, 16, 16, 120)}
#: hp -> dataset -> seeds, per space (the release's layout)
SEEDS = {
    "tss": {"12": {"cifar10-valid": (111, 777), "cifar100": (111,), "ImageNet16-120": (111,)},
            "200": dict.fromkeys(DATASETS, (777, 888, 999))},
    "sss": {"12": dict.fromkeys(DATASETS, (777, 888, 999)), "90": dict.fromkeys(DATASETS, (777,))},
}
_EVAL_SETS = {"cifar10-valid": ("x-valid", "ori-test"), "cifar100": ("x-valid", "x-test", "ori-test"),
              "ImageNet16-120": ("x-valid", "x-test", "ori-test")}
#: (space, hp, dataset) -> the sets recorded after the last epoch only
_LAST_ONLY = {("tss", "200", "cifar10-valid"): ("ori-test",), ("tss", "200", "cifar100"): ("x-valid", "x-test"),
              ("tss", "200", "ImageNet16-120"): ("x-valid", "x-test")}
_CHANCE = {"cifar10-valid": 10.0, "cifar100": 1.0, "ImageNet16-120": 100 / 120}
#: best final accuracy per dataset of the size space (% ; NATS-Bench's are near these)
_SIZE_BEST = {"cifar10-valid": 91.0, "cifar100": 70.0, "ImageNet16-120": 45.0}
_CHANNELS = (8, 16, 24, 32, 40, 48, 56, 64)


def meta_archs(space: str) -> list[str]:
    """Every architecture string of ``space``, in this generator's index order (the topology
    order is not the release's: readers must look indices up in the meta file)."""
    if space == "tss":
        return [arch_to_string(dict(zip(EDGES, ops))) for ops in itertools.product(OPS, repeat=len(EDGES))]
    return [":".join(map(str, c)) for c in itertools.product(_CHANNELS, repeat=5)]


def _halve(size: int) -> int:
    return (size - 1) // 2 + 1


def size_costs(channels: list[int], shape: InputShape) -> tuple[float, float]:
    """(MAdds, parameters) of the size space's network, both in millions."""
    h, w = shape.height, shape.width
    c0 = channels[0]
    madds = shape.channels * c0 * 9 * h * w
    params = shape.channels * c0 * 9 + 2 * c0
    previous = c0
    for position, c in enumerate(channels):
        if position % 2:  # residual reduction
            h, w = _halve(h), _halve(w)
            madds += (9 * previous * c + 9 * c * c + previous * c) * h * w
            params += 9 * previous * c + 2 * c + 9 * c * c + 2 * c + previous * c
        else:  # the cell: two 3x3 convs from its input, three inside, skip widened if needed
            widen = previous * c if previous != c else 0
            madds += (2 * 9 * previous * c + 3 * 9 * c * c + widen) * h * w
            params += 2 * (9 * previous * c + 2 * c) + 3 * (9 * c * c + 2 * c) + (widen + 2 * c if widen else 0)
        previous = c
    madds += previous * shape.num_classes + shape.num_classes  # NATS-Bench counts the classifier's bias
    params += 2 * previous + previous * shape.num_classes + shape.num_classes
    return madds / 1e6, params / 1e6


def topology_costs(arch: dict[str, str], shape: InputShape) -> tuple[float, float]:
    """(MAdds, parameters) of NAS-Bench-201's network (C=16, N=5), both in millions."""
    madds = count_madds(arch, shape)[0] + shape.num_classes  # NATS-Bench counts the classifier's bias
    params = shape.channels * 16 * 9 + 2 * 16
    c = 16
    for stage in range(3):
        if stage:
            params += 9 * c * 2 * c + 2 * 2 * c + 9 * 4 * c * c + 2 * 2 * c + c * 2 * c
            c *= 2
        per_cell = sum({"nor_conv_3x3": 9 * c * c + 2 * c, "nor_conv_1x1": c * c + 2 * c}.get(arch[e], 0)
                       for e in EDGES)
        params += 5 * per_cell
    params += 2 * c + c * shape.num_classes + shape.num_classes
    return madds / 1e6, params / 1e6


def _finals(space: str, text: str, cache: dict[str, Any]) -> dict[str, float]:
    """The architecture's final accuracy (%) per dataset after the full schedule."""
    if space == "tss":
        if "table" not in cache:
            from harness_plugins.datasets._nb201_synthetic import synthetic_accuracies

            cache["table"] = synthetic_accuracies()
        return dict(zip(DATASETS, cache["table"][text]))
    channels = [int(c) for c in text.split(":")]
    weights = (0.15, 0.15, 0.25, 0.2, 0.25)
    score = sum(wt * math.log2(c / 8) / 3 for wt, c in zip(weights, channels))
    wobble = np.random.default_rng([7, *channels]).normal(0.0, 0.004)
    return {d: _CHANCE[d] + (_SIZE_BEST[d] - _CHANCE[d]) * (0.55 + 0.45 * score ** 0.7 + wobble) for d in DATASETS}


def _curve(final: float, chance: float, epochs: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(1, epochs + 1) / epochs
    shape = (1 - np.exp(-rate * t)) / (1 - math.exp(-rate))
    return np.clip(chance + (final - chance) * shape + rng.normal(0.0, 0.3, epochs), 0.0, 100.0)


def _results_count(space: str, index: int, text: str, hp: str, dataset: str, seed: int, finals: dict[str, float],
                   costs: tuple[float, float]) -> Any:
    from nats_bench import ResultsCount

    epochs = int(hp)
    full = hp != "12"
    rng = np.random.default_rng([index, DATASETS.index(dataset), epochs, seed])
    chance = _CHANCE[dataset]
    rate = 1.5 + 6.0 * np.random.default_rng([index, 99]).random()  # the architecture's own learning rate
    final = finals[dataset] if full else chance + 0.8 * (finals[dataset] - chance)
    flops, params = costs
    config = ({"channel": 16, "num_cells": 5, "arch_str": text, "class_num": SHAPES[dataset].num_classes}
              if space == "tss" else {"name": "infer.shape.tiny", "channels": text, "class_num":
                                      SHAPES[dataset].num_classes})
    count = ResultsCount(dataset, None, None, None, params, flops, config, seed, epochs, [0.01 + flops * 1e-4])
    train = _curve(min(100.0, final + 8.0), chance, epochs, rate, rng)
    per_epoch = (2.0 + 0.15 * flops) * (1.0 + 0.02 * rng.standard_normal())
    count.update_train_info(dict(enumerate(train.tolist())), None, dict(enumerate((4.0 - train / 30).tolist())),
                            dict.fromkeys(range(epochs), per_epoch))
    accs, losses, times = {}, {}, {}
    valid = _curve(final - 0.5, chance, epochs, rate, rng)
    for name in _EVAL_SETS[dataset]:
        curve = np.clip(valid if name == "x-valid" else valid + rng.normal(0.4, 0.2), 0.0, 100.0)
        for i, (accuracy, loss) in enumerate(zip(curve.tolist(), (4.0 - curve / 30).tolist())):
            accs[f"{name}@{i}"], losses[f"{name}@{i}"], times[f"{name}@{i}"] = accuracy, loss, 0.05 * per_epoch
    count.update_eval(accs, losses, times)
    for name in _LAST_ONLY.get((space, hp, dataset), ()):
        for i in range(epochs - 1):  # the release keeps the times of every epoch, the accuracy of the last
            del count.eval_acc1es[f"{name}@{i}"], count.eval_losses[f"{name}@{i}"]
    return count


def write_archive(path: Path, space: str, indices: Iterable[int] | None = None) -> Path:
    """Write a synthetic ``space`` archive (``"tss"`` or ``"sss"``) into the folder ``path``
    (created; name it :func:`default_folder` to be found under ``--data-dir``), with one file per
    index in ``indices`` (default: every architecture, minutes for the topology space). Returns
    ``path``."""
    from nats_bench import ArchResults, pickle_save

    path.mkdir(parents=True, exist_ok=True)
    archs = meta_archs(space)
    pickle_save({"meta_archs": archs, "total_archs": len(archs), "arch2infos": None, "evaluated_indexes": set()},
                str(path / "meta.pickle"))
    cache: dict[str, Any] = {}
    for index in (range(len(archs)) if indices is None else indices):
        text = archs[index]
        finals = _finals(space, text, cache)
        by_hp = {}
        for hp, seeds in SEEDS[space].items():
            results = ArchResults(index, text)
            for dataset in DATASETS:
                shape = SHAPES[dataset]
                costs = (topology_costs(parse_arch_string(text), shape) if space == "tss"
                         else size_costs([int(c) for c in text.split(":")], shape))
                for seed in seeds[dataset]:
                    results.update(dataset, seed, _results_count(space, index, text, hp, dataset, seed, finals, costs))
            by_hp[hp] = results.state_dict()
        pickle_save(by_hp, str(path / f"{index:06d}.pickle"))
    return path


def default_folder(root: Path, space: str) -> Path:
    """The folder ``root / <release name>`` the tables look for under ``--data-dir root``."""
    return root / ARCHIVE_NAMES[space]
