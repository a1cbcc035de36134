"""The ``autospace`` generator: AutoSpace (Zhou et al., "AutoSpace: Neural Architecture Search with
Less Human Interference", ICCV 2021, arXiv 2103.11833) evolves a layer-wise search space from the
training data, starting from a base cell space and its reference cell.

Base spaces: any space with the ``"cells"`` capability (:mod:`harness_plugins.spaces._cells`):
``nb201`` (4-node cells over NAS-Bench-201's ops, 3N positions) and ``mbcell`` (4-node cells over
MBConv k3/5/7 x e3/6, skip, zero in a MobileNetV2 backbone). Output: per position the top-K cells
by fitness alpha (:class:`harness_plugins.generators._layerwise.LayerwiseSpace`); with
``--autospace-shared-cell`` one population serves every position and an architecture is one of
the K cells used everywhere, which for ``nb201`` stays inside NAS-Bench-201 (tables can score it).

The method, one module per part:

- cells, ``r_H`` and the bounded mutation: :mod:`._autospace_cells`
  (``r_H = sum_{i!=j} [G_ij != G_ref_ij] / (V (V - 1))``, mutate until ``r_H < T``);
- populations, tournament selection, the counters ``n, n'`` and the EMA
  ``alpha_k(t) = eps alpha*_k + (1 - eps) alpha_k(t-1)``: :mod:`._autospace_population`;
- the supernet ``sum_k (alpha_k / sum_j alpha_j) d_k(x)``, the corrected gradient
  ``dL/da_i = sum_k dL/dp_k p_k (delta_ik - p_i) n(d_i)/n'(d_i)`` (``a = log alpha``), weight
  sharing across rebuilds and ``E[MAdds]``: :mod:`._autospace_supernet`;
- the loop (rebuild every f iterations, loss ``CE + lambda * E[MAdds]``): :mod:`._autospace_search`.

Generation reads only the request's train split (and the validation split for one diagnostic
figure), seeds everything from the cell seed, and runs on the request's device.

Defaults are sized for a quick benchmark, not for the paper (on 8x8 digits with one CPU thread:
4 s on ``nb201 --nb201-cells 1``, 11 s on the default ``mbcell``): P=8 cells
per population, K=4 (the paper's example), tournament 3, T=0.3 (at most 3 of a 4-node cell's 6
edges differ from the reference), eps=0.5, f=5, lambda=0.01 per million MAdds, 60 iterations of
batch 32, 10 warm-up iterations. The paper's ImageNet run is far larger
(11 layers x 9 candidate cells in the released space, many epochs); its P, tournament size, T,
eps, f and lambda are not published, so every one is an option and recorded in the details.
"""
from __future__ import annotations

import argparse
import time
from typing import Any

from harness import hookimpl
from harness.components import (
    GeneratedSpaceState,
    GenerationRequest,
    GeneratorSpec,
    Options,
    SearchSpace,
    SpaceGenerator,
    TabularBenchmark,
)
from harness.errors import UsageError

__all__ = ["AutoSpaceGenerator"]

_DEFAULTS: dict[str, Any] = {
    "population": 8, "k": 4, "tournament": 3, "threshold": 0.3, "eps": 0.5, "rebuild_every": 5,
    "madds_lambda": 0.01, "iterations": 60, "warmup": 10, "mutation_prob": 0.5, "batch_size": 32,
    "weight_lr": 0.05, "alpha_lr": 2.0,
}
#: config field -> CLI option
_OPTIONS = {
    "population": "population", "k": "k", "tournament": "tournament", "threshold": "threshold", "eps": "eps",
    "rebuild_every": "rebuild-every", "madds_lambda": "lambda", "iterations": "iterations", "warmup": "warmup",
    "mutation_prob": "mutation-prob", "batch_size": "batch-size", "weight_lr": "weight-lr", "alpha_lr": "alpha-lr",
}


class AutoSpaceGenerator(SpaceGenerator):
    """See the module docstring."""

    def __init__(self, settings: dict[str, Any], reference: str | None = None, ops: tuple[str, ...] | None = None,
                 shared_cell: bool = False, generator_data: str | None = None) -> None:
        from harness_plugins.generators._autospace_search import AutoSpaceConfig

        self.config = AutoSpaceConfig(**settings, shared_cell=shared_cell)
        self.reference = reference
        self.ops = ops
        self.generator_data = generator_data

    def incompatible(self, base: SearchSpace, dataset: Any) -> str | None:
        if "cells" not in base.capabilities or not hasattr(base, "cell_template"):
            return f"autospace needs a cell space (nb201, mbcell); {type(base).__name__} has no cells"
        self.template(base)  # bad --autospace-reference / --autospace-ops: a usage error, now
        if isinstance(dataset, TabularBenchmark):
            if not self.config.shared_cell:
                return "a layer-wise generated space is outside the table (use --autospace-shared-cell)"
            if not self.generator_data:
                return "a table has no images to generate on (name an image dataset with --generator-data)"
        return None

    def capabilities(self, base: SearchSpace) -> frozenset[str]:
        """The generated space's capabilities: :class:`LayerwiseSpace`'s, plus ``enumerate`` when
        K^(decisions) is small enough (known before generation: K cells per decision)."""
        from harness_plugins.generators._layerwise import (
            ENUMERATE_LIMIT,
            LayerwiseSpace,
        )

        if "cells" not in base.capabilities or not hasattr(base, "cell_template"):
            return frozenset()
        decisions = 1 if self.config.shared_cell else base.cell_template().positions
        small = self.config.k ** decisions <= ENUMERATE_LIMIT
        return LayerwiseSpace.capabilities | ({"enumerate"} if small else set())

    def template(self, base: SearchSpace) -> Any:
        """The base's cell template with the reference and op set of the options."""
        from dataclasses import replace

        template = base.cell_template()  # type: ignore[attr-defined]
        ops = template.ops
        if self.ops is not None:
            unknown = [op for op in self.ops if op not in template.ops]
            if unknown:
                raise UsageError(f"--autospace-ops: {', '.join(unknown)} not among {', '.join(template.ops)}")
            ops = tuple(op for op in template.ops if op == template.ops[0] or op in self.ops)
        reference = template.reference
        if self.reference is not None:
            try:
                reference = template.parse(self.reference)
            except ValueError as exc:
                raise UsageError(f"--autospace-reference: {exc}") from None
        if any(op not in ops for op in reference):
            raise UsageError(f"--autospace-ops: the reference cell {template.cell_id(reference)} uses ops outside "
                             f"{', '.join(ops)}")
        return replace(template, ops=ops, reference=reference)

    def generate(self, request: GenerationRequest) -> GeneratedSpaceState:
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
        result = run_autospace(template, backbone, request.data, self.config, request.seed, request.device)
        cells = result.pop("cells")
        details = {
            **result,
            "base": request.base_name,
            "cells": cells,
            "shared_cell": self.config.shared_cell,
            "reference": template.cell_id(template.reference),
            "ops": list(template.ops),
            "generation_seconds": time.perf_counter() - start,
            "data_shape": [request.data.shape.channels, request.data.shape.height, request.data.shape.width,
                           request.data.shape.num_classes],
        }
        return GeneratedSpaceState(space={"cells": cells, "shared": self.config.shared_cell}, details=details)

    def load(self, base: SearchSpace, state: dict[str, Any]) -> SearchSpace:
        from harness_plugins.generators._layerwise import LayerwiseSpace

        return LayerwiseSpace(base, state["cells"], bool(state["shared"]))


def _check(config: dict[str, Any]) -> None:
    bad = []
    if not 2 <= config["k"] <= config["population"]:
        bad.append("need 2 <= --autospace-k <= --autospace-population")
    for name in ("tournament", "rebuild_every", "iterations", "batch_size"):
        if config[name] < (2 if name == "batch_size" else 1):
            bad.append(f"--autospace-{_OPTIONS[name]} must be positive")
    if not 0 < config["threshold"] <= 1:
        bad.append("--autospace-threshold must be in (0, 1]")
    if not 0 < config["eps"] <= 1:
        bad.append("--autospace-eps must be in (0, 1]")
    if not 0 <= config["mutation_prob"] <= 1:
        bad.append("--autospace-mutation-prob must be in [0, 1]")
    for name in ("madds_lambda", "warmup", "weight_lr", "alpha_lr"):
        if config[name] < 0:
            bad.append(f"--autospace-{_OPTIONS[name]} must be >= 0")
    if bad:
        raise UsageError("autospace: " + "; ".join(bad))


def _factory(options: Options) -> AutoSpaceGenerator:
    settings = {field: type(default)(options.get(f"autospace_{_OPTIONS[field].replace('-', '_')}", default))
                for field, default in _DEFAULTS.items()}
    _check(settings)
    ops = options.get("autospace_ops")
    return AutoSpaceGenerator(
        settings,
        reference=options.get("autospace_reference"),
        ops=tuple(o.strip() for o in ops.split(",") if o.strip()) if ops else None,
        shared_cell=bool(options.get("autospace_shared_cell", False)),
        generator_data=options.get("generator_data"),
    )


@hookimpl
def harness_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("autospace generator (Zhou et al., ICCV 2021; defaults sized for CPU)")
    helps = {
        "population": "P, cells per population (default 8)",
        "k": "K, cells per position in the supernet and in the generated space (default 4, the paper's example)",
        "tournament": "tournament size of the selection (default 3)",
        "threshold": "T: mutations must keep r_H to the reference below T (default 0.3: <= 3 of 6 edges differ)",
        "eps": "eps of the EMA population update (default 0.5)",
        "rebuild_every": "f: rebuild the supernet (reselect cells) every f iterations (default 5)",
        "madds_lambda": "lambda of CE + lambda * E[MAdds], per million MAdds (default 0.01)",
        "iterations": "training iterations (batches) of the generation (default 60)",
        "warmup": "iterations before the EMA updates the population (default 10)",
        "mutation_prob": "probability that a tournament winner is replaced by its mutation (default 0.5)",
        "batch_size": "batch size (default 32)",
        "weight_lr": "SGD learning rate of the supernet weights (default 0.05)",
        "alpha_lr": "SGD learning rate of log alpha (default 2.0)",
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
                       help="one population for all positions: the space is one of K cells used everywhere "
                            "(for nb201: inside NAS-Bench-201, scoreable by the nb201-* tables)")


@hookimpl
def harness_generators() -> list[GeneratorSpec]:
    return [GeneratorSpec(name="autospace", factory=_factory,
                          description="AutoSpace (Zhou et al., ICCV 2021): evolve per-position top-K cells from data")]
