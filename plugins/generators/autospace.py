"""The ``autospace`` generator: AutoSpace (Zhou et al., "AutoSpace: Neural Architecture Search with
Less Human Interference", ICCV 2021, arXiv 2103.11833) evolves a layer-wise search space from the
training data, starting from a base cell space and its reference cell.

Base spaces: any space with the ``"cells"`` capability (:mod:`harness_plugins.spaces._cells`):
``nb201`` (4-node cells over NAS-Bench-201's ops, 3N positions) and ``mbcell`` (4-node cells over
MBConv k3/5/7 x e3/6, skip, zero in a MobileNetV2 backbone). Output: per position the top-K cells
by fitness alpha (:class:`harness_plugins.generators._layerwise.LayerwiseSpace`), the paper's
layer-wise space.

**Shared-cell mode** (``--autospace-shared-cell``): one population serves every position and an
architecture is one cell used everywhere, which for ``nb201`` stays inside NAS-Bench-201 (tables
can score it). The supernet still mixes K cells per position while alpha learns, but the space is
the top-M cells by alpha (``--autospace-space-size``, default 200) over every cell the run held,
scored cells first; a run that scored fewer than M cells fills the rest with cells drawn uniformly
within ``r_H < T``, as the control does (:mod:`._autospace_space`). The details count them:
``space_scored``, ``space_unscored`` (held, never scored: alpha is a prior) and ``space_drawn``.
At the defaults a run scores about 20-28 cells (of 25-35 held), so most of a 200-cell space is
drawn: alpha can only be told from chance with a larger budget (more iterations) or a smaller M.
A space of K = 4 cells, the paper's per-layer output, ends any search within 4 queries.

**The control** ``autospace-random`` (:mod:`._autospace_random`), registered by this plugin, takes
the same reference, T, op set, K, M and seed and draws its cells uniformly within ``r_H < T``,
training nothing: autospace minus autospace-random is what alpha learned.

The method, one module per part:

- cells, ``r_H`` and the bounded mutation: :mod:`._autospace_cells`
  (``r_H = sum_{i!=j} [G_ij != G_ref_ij] / (V (V - 1))``, mutate until ``r_H < T``);
- populations, tournament selection, the counters ``n, n'`` and the EMA
  ``alpha_k(t) = eps alpha*_k + (1 - eps) alpha_k(t-1)``: :mod:`._autospace_population`;
- the supernet ``sum_k (alpha_k / sum_j alpha_j) d_k(x)``, the corrected gradient
  ``dL/da_i = sum_k dL/dp_k p_k (delta_ik - p_i) n(d_i)/n'(d_i)`` (``a = log alpha``), weight
  sharing across rebuilds and ``E[MAdds]``: :mod:`._autospace_supernet`;
- the loop (rebuild every f iterations, loss ``CE + lambda * E[MAdds] / MAdds_ref``):
  :mod:`._autospace_search`.

Generation reads only the request's train split (and the validation split for one diagnostic
figure), seeds everything from the cell seed, and runs on the request's device.

Defaults are sized so that alpha scores most of the cells it holds on real 16-32 px images within
minutes on 2 CPU cores (on 16 px Tiny-ImageNet, 20 classes, the default ``nb201``: 600 iterations
took 170 s and scored about 145 cells; the former 60 scored about 22, so that about 170 of the
200 cells of the space were drawn at random), not for the paper: P=8 cells
per population, K=4 (the paper's example), tournament 3, T=0.3 (at most 3 of a 4-node cell's 6
edges differ from the reference; T is in (0, 1/2], see :mod:`._autospace_cells`), eps=0.5, f=5,
lambda=0.1 per reference network's MAdds (:mod:`._autospace_search`), 600 iterations of batch 32,
60 warm-up iterations, M=200 (shared-cell). ``--autospace-iterations`` and
``--autospace-batch-size`` scale a generation up to a GPU run; its progress is shown as it trains.
The paper's ImageNet run is far larger
(11 layers x 9 candidate cells in the released space, many epochs); its P, tournament size, T,
eps, f and lambda are not published, so every one is an option and recorded in the details.
"""
from __future__ import annotations

import argparse
import time
from typing import Any

from harness_plugins.generators._autospace_cells import MAX_THRESHOLD
from harness_plugins.generators._autospace_random import AutoSpaceRandomGenerator
from harness_plugins.generators._autospace_space import CellSpaceGenerator, shared_space

from harness import hookimpl
from harness.components import GeneratedSpaceState, GenerationRequest, GeneratorSpec, Options
from harness.errors import UsageError

__all__ = ["AutoSpaceGenerator", "AutoSpaceRandomGenerator"]

_DEFAULTS: dict[str, Any] = {
    "population": 8, "k": 4, "tournament": 3, "threshold": 0.3, "eps": 0.5, "rebuild_every": 5,
    "madds_lambda": 0.1, "iterations": 600, "warmup": 60, "mutation_prob": 0.5, "batch_size": 32,
    "weight_lr": 0.05, "alpha_lr": 2.0, "space_size": 200,
}
#: config field -> CLI option
_OPTIONS = {
    "population": "population", "k": "k", "tournament": "tournament", "threshold": "threshold", "eps": "eps",
    "rebuild_every": "rebuild-every", "madds_lambda": "lambda", "iterations": "iterations", "warmup": "warmup",
    "mutation_prob": "mutation-prob", "batch_size": "batch-size", "weight_lr": "weight-lr", "alpha_lr": "alpha-lr",
    "space_size": "space-size",
}
#: The options the control ``autospace-random`` shares with ``autospace`` (the rest train alpha).
_CONTROL_FIELDS = ("k", "threshold", "space_size")


class AutoSpaceGenerator(CellSpaceGenerator):
    """See the module docstring."""

    def __init__(self, settings: dict[str, Any], reference: str | None = None, ops: tuple[str, ...] | None = None,
                 shared_cell: bool = False, generator_data: str | None = None) -> None:
        from harness_plugins.generators._autospace_search import AutoSpaceConfig

        self.config = AutoSpaceConfig(**settings, shared_cell=shared_cell)
        super().__init__(self.config.k, self.config.space_size, self.config.threshold, shared_cell, reference, ops,
                         generator_data)

    def generate(self, request: GenerationRequest) -> GeneratedSpaceState:
        import numpy as np
        import torch
        from harness_plugins.generators._autospace_search import run_autospace

        if request.data is None:
            raise UsageError("autospace needs image data: name an image dataset with --generator-data")
        template = self.template(request.base)
        start = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(request.seed)
            backbone = request.base.cell_backbone(request.data.shape)  # type: ignore[attr-defined]
        backbone = backbone.to(request.device)
        result = run_autospace(template, backbone, request.data, self.config, request.seed, request.device,
                               progress=request.progress)
        request.progress(self.config.iterations, self.config.iterations)
        populations = result.pop("populations")
        top_k = result.pop("cells")
        space = top_k
        extra: dict[str, Any] = {}
        if self.config.shared_cell:
            ranking = populations[0].ranking()
            scored = {m.cell for m in ranking if m.scored}
            cells, drawn = shared_space(template, [m.cell for m in ranking], self.config.threshold,
                                        self.config.space_size, np.random.default_rng(request.seed))
            space = [[template.cell_id(c) for c in cells]]
            kept_scored = sum(c in scored for c in cells)
            extra = {"space_scored": kept_scored, "space_unscored": len(cells) - drawn - kept_scored,
                     "space_drawn": drawn,
                     # alpha's own ranking of the cells it scored: the harness scores it against a
                     # table's accuracies (Kendall's tau in cells.csv's generation_kendall_tau)
                     "ranking": [{"arch_id": template.cell_id(m.cell), "score": m.alpha} for m in ranking
                                 if m.scored]}
        details = {
            **result,
            **self.space_details(template, space),
            **extra,
            "base": request.base_name,
            "cells": top_k,
            "generation_seconds": time.perf_counter() - start,
            "data_shape": [request.data.shape.channels, request.data.shape.height, request.data.shape.width,
                           request.data.shape.num_classes],
        }
        return GeneratedSpaceState(space={"cells": space, "shared": self.config.shared_cell}, details=details)


def _check(config: dict[str, Any], generator: str = "autospace") -> None:
    bad = []
    if "population" in config:
        if not 2 <= config["k"] <= config["population"]:
            bad.append("need 2 <= --autospace-k <= --autospace-population")
    elif config["k"] < 2:
        bad.append("--autospace-k must be >= 2")
    if config["space_size"] < 2:
        bad.append("--autospace-space-size must be >= 2")
    for name in ("tournament", "rebuild_every", "iterations", "batch_size"):
        if name in config and config[name] < (2 if name == "batch_size" else 1):
            bad.append(f"--autospace-{_OPTIONS[name]} must be positive")
    if not 0 < config["threshold"] <= MAX_THRESHOLD:
        bad.append(f"--autospace-threshold must be in (0, {MAX_THRESHOLD}] (r_H of a DAG cell is at most 1/2)")
    if not 0 < config.get("eps", 1) <= 1:
        bad.append("--autospace-eps must be in (0, 1]")
    if not 0 <= config.get("mutation_prob", 0) <= 1:
        bad.append("--autospace-mutation-prob must be in [0, 1]")
    for name in ("madds_lambda", "warmup", "weight_lr", "alpha_lr"):
        if config.get(name, 0) < 0:
            bad.append(f"--autospace-{_OPTIONS[name]} must be >= 0")
    if bad:
        raise UsageError(f"{generator}: " + "; ".join(bad))


def _settings(options: Options, fields: tuple[str, ...] | None = None) -> dict[str, Any]:
    return {field: type(default)(options.get(f"autospace_{_OPTIONS[field].replace('-', '_')}", default))
            for field, default in _DEFAULTS.items() if fields is None or field in fields}


def _common(options: Options) -> dict[str, Any]:
    ops = options.get("autospace_ops")
    return {"reference": options.get("autospace_reference"),
            "ops": tuple(o.strip() for o in ops.split(",") if o.strip()) if ops else None,
            "shared_cell": bool(options.get("autospace_shared_cell", False)),
            "generator_data": options.get("generator_data")}


def _factory(options: Options) -> AutoSpaceGenerator:
    settings = _settings(options)
    _check(settings)
    return AutoSpaceGenerator(settings, **_common(options))


def _control_factory(options: Options) -> AutoSpaceRandomGenerator:
    settings = _settings(options, _CONTROL_FIELDS)
    _check(settings, "autospace-random")
    return AutoSpaceRandomGenerator(settings["k"], settings["space_size"], settings["threshold"], **_common(options))


@hookimpl
def harness_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("autospace generator (Zhou et al., ICCV 2021; defaults sized for CPU)")
    helps = {
        "population": "P, cells per population (default 8)",
        "k": "K, cells per position in the supernet, and in the layer-wise space (default 4, the paper's example)",
        "tournament": "tournament size of the selection (default 3)",
        "threshold": "T in (0, 0.5]: cells keep r_H to the reference below T; r_H counts differing edges over "
                     "V(V-1), so it is at most 1/2 (default 0.3: <= 3 of a 4-node cell's 6 edges differ)",
        "eps": "eps of the EMA population update (default 0.5)",
        "rebuild_every": "f: rebuild the supernet (reselect cells) every f iterations (default 5)",
        "madds_lambda": "lambda of CE + lambda * E[MAdds] / MAdds(reference network): nats per reference "
                        "network's MAdds (default 0.1)",
        "iterations": "training iterations (batches) of the generation (default 600: on 16 px Tiny-ImageNet "
                      "images about 3 minutes on 2 CPU cores, about 140 of the cells scored; 60 scored about 22)",
        "warmup": "iterations before the EMA updates the population (default 60)",
        "mutation_prob": "probability that a tournament winner is replaced by its mutation (default 0.5)",
        "batch_size": "batch size (default 32)",
        "weight_lr": "SGD learning rate of the supernet weights (default 0.05)",
        "alpha_lr": "SGD learning rate of log alpha (default 2.0)",
        "space_size": "M, shared-cell mode: cells in the generated space, the top-M by alpha, filled up with cells "
                      "drawn uniformly within r_H < T if the run scored fewer (default 200: a 100-query search sees "
                      "at most half; 1,545 nb201 cells are within the default T)",
    }
    for field, default in _DEFAULTS.items():
        group.add_argument(f"--autospace-{_OPTIONS[field]}", type=type(default), default=default, help=helps[field])
    group.add_argument("--autospace-reference", default=None,
                       help="reference cell G_ref as '|op~0|+|op~0|op~1|+...' (default: the base's, nb201: "
                            "ResNet cell, mbcell: MobileNetV2 block)")
    group.add_argument("--autospace-ops", default=None,
                       help="comma-separated op set for mutations (default: all the base's ops; its no-edge op is "
                            "always kept)")
    group.add_argument("--autospace-shared-cell", action="store_true",
                       help="one population for all positions: the space is one of M cells used everywhere "
                            "(for nb201: inside NAS-Bench-201, scoreable by the nb201-* tables)")


@hookimpl
def harness_generators() -> list[GeneratorSpec]:
    return [
        GeneratorSpec(name="autospace", factory=_factory,
                      description="AutoSpace (Zhou et al., ICCV 2021): evolve per-position top-K cells from data"),
        GeneratorSpec(name="autospace-random", factory=_control_factory,
                      description="AutoSpace's control: the same number of cells drawn uniformly within r_H < T of "
                                  "the same reference, nothing trained"),
    ]
