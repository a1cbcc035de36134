"""What the ``autospace`` generator and its control ``autospace-random`` share: the cell template
they mutate or draw from (the base's, with ``--autospace-reference`` / ``--autospace-ops``), the
generated space's format and capabilities, and how a shared-cell space of M cells is assembled.

**The stored space** (``GeneratedSpaceState.space``): ``{"cells": [[id, ...] per decision],
"shared": bool}``, loaded as :class:`harness_plugins.generators._layerwise.LayerwiseSpace`; both
generators write it, so one ``load`` serves both and every algorithm runs on either identically.

**Space size.** Layer-wise: K cells per position, ``K^positions`` architectures. Shared-cell: one
list of M cells (``--autospace-space-size``), each used at every position. AutoSpace's supernet
still mixes K cells per position while it learns alpha; M only sets how many cells the space keeps
(:func:`shared_space`). The details record ``space_size`` (an ``int``) for both modes.

**Eligible cells**: those with ``r_H < T`` to the reference over the op set
(:mod:`._autospace_cells`). When fewer than M exist the space holds all of them and the details'
``space_note`` says so.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
from harness_plugins.generators._autospace_cells import draw_eligible, eligible_count
from harness_plugins.spaces._cells import Cell, CellTemplate

from harness.components import SearchSpace, SpaceGenerator, TabularBenchmark
from harness.errors import UsageError

__all__ = ["CellSpaceGenerator", "shared_space"]


class CellSpaceGenerator(SpaceGenerator):
    """A generator of :class:`LayerwiseSpace` spaces around a reference cell (see the module
    docstring); subclasses implement ``generate``."""

    #: The generator's registered name (for messages).
    name: str = "autospace"

    def __init__(self, k: int, space_size: int, threshold: float, shared_cell: bool, reference: str | None,
                 ops: tuple[str, ...] | None, generator_data: str | None) -> None:
        self.k, self.space_size, self.threshold = k, space_size, threshold
        self.shared_cell = shared_cell
        self.reference = reference
        self.ops = ops
        self.generator_data = generator_data

    def incompatible(self, base: SearchSpace, dataset: Any) -> str | None:
        if "cells" not in base.capabilities or not hasattr(base, "cell_template"):
            return f"{self.name} needs a cell space (nb201, mbcell); {type(base).__name__} has no cells"
        self.template(base)  # bad --autospace-reference / --autospace-ops: a usage error, now
        if isinstance(dataset, TabularBenchmark):
            if not self.shared_cell:
                return "a layer-wise generated space is outside the table (use --autospace-shared-cell)"
            if self.trains_on_images and not self.generator_data:
                return "a table has no images to generate on (name an image dataset with --generator-data)"
        return None

    def sizes(self, base: SearchSpace) -> tuple[int, int]:
        """(decisions, options per decision) of the space made from ``base``, known before
        generation (at most; fewer cells when fewer are eligible)."""
        template = base.cell_template()  # type: ignore[attr-defined]
        if self.shared_cell:
            return 1, self.space_size
        return template.positions, self.k

    def capabilities(self, base: SearchSpace) -> frozenset[str]:
        """:class:`LayerwiseSpace`'s capabilities, plus ``enumerate`` when the space is small
        enough (known before generation, see :meth:`sizes`)."""
        from harness_plugins.generators._layerwise import ENUMERATE_LIMIT, LayerwiseSpace

        if "cells" not in base.capabilities or not hasattr(base, "cell_template"):
            return frozenset()
        decisions, options = self.sizes(base)
        small = options ** decisions <= ENUMERATE_LIMIT
        return LayerwiseSpace.capabilities | ({"enumerate"} if small else set())

    def template(self, base: SearchSpace) -> CellTemplate:
        """The base's cell template with the reference and op set of the options."""
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

    def space_details(self, template: CellTemplate, cells: list[list[str]]) -> dict[str, Any]:
        """The details both generators record about the space they made."""
        eligible = eligible_count(template, self.threshold)
        details: dict[str, Any] = {
            "space_size": int(math.prod(len(ids) for ids in cells)),
            "eligible_cells": eligible,
            "shared_cell": self.shared_cell,
            "threshold": self.threshold,
            "reference": template.cell_id(template.reference),
            "ops": list(template.ops),
        }
        wanted = self.space_size if self.shared_cell else self.k
        if eligible < wanted:
            details["space_note"] = (f"only {eligible} cells have r_H < T = {self.threshold}: "
                                     f"{'the space holds' if self.shared_cell else 'each position offers'} all of "
                                     f"them ({wanted} asked)")
        return details

    def load(self, base: SearchSpace, state: dict[str, Any]) -> SearchSpace:
        from harness_plugins.generators._layerwise import LayerwiseSpace

        return LayerwiseSpace(base, state["cells"], bool(state["shared"]))


def shared_space(template: CellTemplate, ranking: list[Cell], threshold: float, m: int,
                 rng: np.random.Generator) -> tuple[list[Cell], int]:
    """The first ``m`` cells of ``ranking`` (best first, every one eligible), then, if fewer, cells
    drawn uniformly among the other eligible ones; returns (cells, how many were drawn)."""
    kept = list(dict.fromkeys(ranking))[:m]
    drawn = draw_eligible(template, threshold, m - len(kept), rng, exclude=set(kept)) if len(kept) < m else []
    return kept + drawn, len(drawn)
